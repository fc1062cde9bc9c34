package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"ib/internal/manifest"
	"ib/internal/metadb"
)

// nameID returns the id of a file name, adding it to the names table the
// first time (its transaction adds it to the trigram index: indexNames).
// Names new in this transaction go to pending, and reach the cache only
// once it commits: a rolled-back insert must not leave an id behind that
// another name may get later.
func (db *DB) nameID(ctx context.Context, tx *sql.Tx, name string, pending map[string]int64) (int64, error) {
	if id, ok := db.cachedName(name); ok {
		return id, nil
	}
	if id, ok := pending[name]; ok {
		return id, nil
	}
	if _, err := tx.ExecContext(ctx, "INSERT OR IGNORE INTO names (name) VALUES (?)", name); err != nil {
		return 0, fmt.Errorf("sqlite: name: %w", err)
	}
	var id int64
	if err := tx.QueryRowContext(ctx, "SELECT id FROM names WHERE name = ?", name).Scan(&id); err != nil {
		return 0, fmt.Errorf("sqlite: name: %w", err)
	}
	pending[name] = id
	return id, nil
}

// lastName returns the largest name id so far (0 for none). A name
// inserted after it, in the same transaction, gets a larger one.
func lastName(ctx context.Context, tx *sql.Tx) (int64, error) {
	var id int64
	if err := tx.QueryRowContext(ctx, "SELECT coalesce(max(id), 0) FROM names").Scan(&id); err != nil {
		return 0, fmt.Errorf("sqlite: names: %w", err)
	}
	return id, nil
}

// indexNames adds the names of ids above after to the trigram index, in
// one statement: every transaction that adds names calls it before it
// commits (one FTS5 segment per transaction, not one per statement).
func indexNames(ctx context.Context, tx *sql.Tx, after int64) error {
	if _, err := tx.ExecContext(ctx, "INSERT INTO names_fts (rowid, name) SELECT id, name FROM names WHERE id > ?", after); err != nil {
		return fmt.Errorf("sqlite: name index: %w", err)
	}
	return nil
}

// cachedName returns a name's id if cached.
func (db *DB) cachedName(name string) (int64, bool) {
	db.namesMu.Lock()
	defer db.namesMu.Unlock()
	id, ok := db.names[name]
	return id, ok
}

// cacheNames keeps the names of a committed transaction.
func (db *DB) cacheNames(pending map[string]int64) {
	db.namesMu.Lock()
	defer db.namesMu.Unlock()
	if len(db.names)+len(pending) > 200_000 { // bounded memory
		clear(db.names)
	}
	for k, v := range pending {
		db.names[k] = v
	}
}

const nodeCols = "seq, path, type, mode, mtime_s, mtime_ns, size, uid, gid, target, blocks, flags, plain_size"

func scanNode(sc interface{ Scan(...any) error }) (metadb.Node, error) {
	var n metadb.Node
	var typ int
	var ms, mns int64
	var target sql.NullString
	var packed []byte
	var flags int
	var plain sql.NullInt64
	if err := sc.Scan(&n.Seq, &n.Entry.Path, &typ, &n.Entry.Mode, &ms, &mns, &n.Entry.Size, &n.Entry.UID, &n.Entry.GID, &target, &packed, &flags, &plain); err != nil {
		return metadb.Node{}, err
	}
	n.Entry.Type = metadb.TypeName(typ)
	metadb.SetFlags(&n.Entry, flags, plain.Int64)
	n.Entry.MTime = metadb.UnixTime(ms, mns)
	n.Entry.Target = target.String
	var err error
	n.Entry.Blocks, err = metadb.UnpackBlocks(packed)
	return n, err
}

// Lookup finds the entry at path in a live backup, walking down from the
// root one name at a time on the (backup, parent, name) index.
func (db *DB) Lookup(ctx context.Context, id int64, path string) (metadb.Node, error) {
	if _, err := db.Get(ctx, id); err != nil {
		return metadb.Node{}, err
	}
	node, err := scanNode(db.r.QueryRowContext(ctx, "SELECT "+nodeCols+" FROM entries WHERE backup_id = ? AND seq = 0", id))
	if err != nil {
		return metadb.Node{}, wrapNoRows(err, "entry")
	}
	if path == "." {
		return node, nil
	}
	for part := range strings.SplitSeq(path, "/") {
		if node.Entry.Type != manifest.TypeDir {
			return metadb.Node{}, metadb.ErrNotFound
		}
		node, err = scanNode(db.r.QueryRowContext(ctx, "SELECT "+nodeCols+` FROM entries
WHERE backup_id = ? AND parent_seq = ? AND name_id = (SELECT id FROM names WHERE name = ?)`, id, node.Seq, part))
		if err != nil {
			return metadb.Node{}, wrapNoRows(err, "entry")
		}
	}
	return node, nil
}

// Children returns up to limit entries of the directory dirSeq with seq >
// after, in walk order (names sorted bytewise).
func (db *DB) Children(ctx context.Context, id, dirSeq, after int64, limit int) ([]metadb.Node, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+nodeCols+` FROM entries
WHERE backup_id = ? AND parent_seq = ? AND seq > ? ORDER BY seq LIMIT ?`, id, dirSeq, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: children: %w", err)
	}
	defer rows.Close()
	var out []metadb.Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: children: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// Search finds entries of live backups whose name contains q (case
// insensitive), newest backups first. Names of three characters or more
// use the trigram index.
func (db *DB) Search(ctx context.Context, q string, filter manifest.Tags, limit int) ([]metadb.Hit, error) {
	names, arg := nameQuery(q)
	args := []any{arg}
	var tagged strings.Builder
	for _, k := range slices.Sorted(maps.Keys(filter)) {
		tagged.WriteString("\nAND EXISTS (SELECT 1 FROM backup_tags t WHERE t.backup_id = b.id AND t.key = ? AND t.value = ?)")
		args = append(args, k, filter[k])
	}
	args = append(args, limit)
	rows, err := db.r.QueryContext(ctx, `SELECT b.id, e.`+strings.ReplaceAll(nodeCols, ", ", ", e.")+`
FROM entries e JOIN backups b ON b.id = e.backup_id
WHERE e.name_id IN (`+names+`)
AND b.deleting = 0`+tagged.String()+`
ORDER BY b.created_at DESC, b.id DESC, e.seq LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: search: %w", err)
	}
	return db.backupNodes(ctx, rows, "search")
}

// nameQuery returns a query of the ids of up to 1,000 names containing q,
// and its argument. Three characters or more are a phrase of the trigram
// index (a LIKE with an ESCAPE clause is not offered to the index: SQLite
// scanned every name); shorter ones have no trigram and scan the names.
func nameQuery(q string) (string, any) {
	if utf8.RuneCountInString(q) >= 3 {
		return "SELECT rowid FROM names_fts WHERE names_fts MATCH ? LIMIT 1000", `"` + strings.ReplaceAll(q, `"`, `""`) + `"`
	}
	return `SELECT id FROM names WHERE name LIKE ? ESCAPE '\' LIMIT 1000`, "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(q) + "%"
}

// backupNodes reads rows of a backup id and nodeCols, and pairs each node
// with its backup (a backup deleted meanwhile drops out).
func (db *DB) backupNodes(ctx context.Context, rows *sql.Rows, what string) ([]metadb.Hit, error) {
	type found struct {
		id   int64
		node metadb.Node
	}
	var fs []found
	for rows.Next() {
		var f found
		var err error
		if f.node, err = scanNode(prefixed{rows, &f.id}); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		fs = append(fs, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	backups := map[int64]metadb.Backup{}
	out := make([]metadb.Hit, 0, len(fs))
	for _, f := range fs {
		b, ok := backups[f.id]
		if !ok {
			var err error
			b, err = db.Get(ctx, f.id)
			if errors.Is(err, metadb.ErrNotFound) {
				continue // deleted meanwhile
			}
			if err != nil {
				return nil, err
			}
			backups[f.id] = b
		}
		out = append(out, metadb.Hit{Backup: b, Entry: f.node.Entry})
	}
	return out, nil
}

// prefixed scans a row whose first column (the backup id) comes before
// the columns a scan function reads.
type prefixed struct {
	rows *sql.Rows
	id   *int64
}

func (p prefixed) Scan(dest ...any) error { return p.rows.Scan(append([]any{p.id}, dest...)...) }

func wrapNoRows(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return metadb.ErrNotFound
	}
	return fmt.Errorf("sqlite: %s: %w", what, err)
}

// History returns the entries at path in every live backup of the tag set
// of backup id, oldest first: one query on the name index, no manifest
// scan.
func (db *DB) History(ctx context.Context, id int64, path string, limit int) ([]metadb.Hit, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT b.id, e.`+strings.ReplaceAll(nodeCols, ", ", ", e.")+`
FROM entries e JOIN backups b ON b.id = e.backup_id
WHERE e.name_id = (SELECT id FROM names WHERE name = ?) AND e.path = ?
AND b.deleting = 0 AND b.tagset = (SELECT tagset FROM backups WHERE id = ?)
ORDER BY b.created_at, b.id LIMIT ?`, metadb.BaseName(path), path, id, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	return db.backupNodes(ctx, rows, "history")
}
