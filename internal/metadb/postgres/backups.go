package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"ib/internal/manifest"
	"ib/internal/metadb"
)

func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return metadb.ErrNotFound
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

// Get returns one backup.
func (db *DB) Get(ctx context.Context, id int64) (metadb.Backup, error) {
	b, err := metadb.ScanBackup(db.pool.QueryRow(ctx, "SELECT "+metadb.BackupColumns+" FROM backups WHERE id = $1 AND NOT deleting", id))
	if err != nil {
		return metadb.Backup{}, notFound(err, fmt.Sprintf("backup %d", id))
	}
	return b, nil
}

// Latest returns the newest backup whose tags equal tags exactly.
func (db *DB) Latest(ctx context.Context, tags manifest.Tags) (metadb.Backup, error) {
	b, err := metadb.ScanBackup(db.pool.QueryRow(ctx, "SELECT "+metadb.BackupColumns+
		" FROM backups WHERE tagset = $1 AND NOT deleting ORDER BY created_at DESC, id DESC LIMIT 1", tags.Canonical()))
	if err != nil {
		return metadb.Backup{}, notFound(err, "latest backup")
	}
	return b, nil
}

// tagFilter is the condition "backup b's tags include filter", from
// argument n on.
func tagFilter(filter manifest.Tags, n int) (string, []any) {
	var sb strings.Builder
	var args []any
	for _, k := range slices.Sorted(maps.Keys(filter)) {
		fmt.Fprintf(&sb, "\nAND EXISTS (SELECT 1 FROM backup_tags t WHERE t.backup_id = b.id AND t.key = $%d AND t.value = $%d)", n, n+1)
		args = append(args, k, filter[k])
		n += 2
	}
	return sb.String(), args
}

// List returns the backups whose tags include every pair of filter, newest
// first.
func (db *DB) List(ctx context.Context, filter manifest.Tags) ([]metadb.Backup, error) {
	cond, args := tagFilter(filter, 1)
	rows, err := db.pool.Query(ctx, "SELECT "+metadb.BackupColumns+" FROM backups b WHERE NOT deleting"+cond+" ORDER BY created_at DESC, id DESC", args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list backups: %w", err)
	}
	defer rows.Close()
	var out []metadb.Backup
	for rows.Next() {
		b, err := metadb.ScanBackup(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list backups: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

const nodeCols = "seq, path, type, mode, mtime_s, mtime_ns, size, uid, gid, target, blocks, flags, plain_size"

func scanNode(sc pgx.Row, prefix ...any) (metadb.Node, error) {
	var n metadb.Node
	var typ int16
	var mode, uid, gid int64
	var ms int64
	var mns, flags int32
	var target *string
	var packed []byte
	var plain *int64
	dest := append(prefix, &n.Seq, &n.Entry.Path, &typ, &mode, &ms, &mns, &n.Entry.Size, &uid, &gid, &target, &packed, &flags, &plain)
	if err := sc.Scan(dest...); err != nil {
		return metadb.Node{}, err
	}
	e := &n.Entry
	e.Type, e.Mode, e.UID, e.GID = metadb.TypeName(int(typ)), uint32(mode), uint32(uid), uint32(gid)
	e.MTime = metadb.UnixTime(ms, int64(mns))
	if plain != nil {
		metadb.SetFlags(e, int(flags), *plain)
	} else {
		metadb.SetFlags(e, int(flags), 0)
	}
	if target != nil {
		e.Target = *target
	}
	var err error
	e.Blocks, err = metadb.UnpackBlocks(packed)
	return n, err
}

// Entries returns up to limit entries of a backup with seq > after.
func (db *DB) Entries(ctx context.Context, id, after int64, limit int) ([]manifest.Entry, int64, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+nodeCols+" FROM entries WHERE backup_id = $1 AND seq > $2 ORDER BY seq LIMIT $3", id, after, limit)
	if err != nil {
		return nil, after, fmt.Errorf("postgres: entries of %d: %w", id, err)
	}
	defer rows.Close()
	out := make([]manifest.Entry, 0, limit)
	last := after
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, after, fmt.Errorf("postgres: entries of %d: %w", id, err)
		}
		out, last = append(out, n.Entry), n.Seq
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("postgres: entries of %d: %w", id, err)
	}
	return out, last, nil
}

// Lookup finds the entry at path, one name at a time down from the root.
func (db *DB) Lookup(ctx context.Context, id int64, path string) (metadb.Node, error) {
	if _, err := db.Get(ctx, id); err != nil {
		return metadb.Node{}, err
	}
	node, err := scanNode(db.pool.QueryRow(ctx, "SELECT "+nodeCols+" FROM entries WHERE backup_id = $1 AND seq = 0", id))
	if err != nil {
		return metadb.Node{}, notFound(err, "entry")
	}
	if path == "." {
		return node, nil
	}
	for part := range strings.SplitSeq(path, "/") {
		if node.Entry.Type != manifest.TypeDir {
			return metadb.Node{}, metadb.ErrNotFound
		}
		node, err = scanNode(db.pool.QueryRow(ctx, "SELECT "+nodeCols+` FROM entries
WHERE backup_id = $1 AND parent_seq = $2 AND name_id = (SELECT id FROM names WHERE name = $3)`, id, node.Seq, part))
		if err != nil {
			return metadb.Node{}, notFound(err, "entry")
		}
	}
	return node, nil
}

// Children returns up to limit entries of the folder dirSeq with seq >
// after, in walk order.
func (db *DB) Children(ctx context.Context, id, dirSeq, after int64, limit int) ([]metadb.Node, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+nodeCols+` FROM entries
WHERE backup_id = $1 AND parent_seq = $2 AND seq > $3 ORDER BY seq LIMIT $4`, id, dirSeq, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: children: %w", err)
	}
	defer rows.Close()
	var out []metadb.Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: children: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

var eCols = "e." + strings.ReplaceAll(nodeCols, ", ", ", e.")

// Search finds entries of live backups whose name contains q (case
// insensitive), newest backups first, with the trigram index on names.
func (db *DB) Search(ctx context.Context, q string, filter manifest.Tags, limit int) ([]metadb.Hit, error) {
	like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(q) + "%"
	cond, args := tagFilter(filter, 2)
	args = append([]any{like}, args...)
	args = append(args, limit)
	rows, err := db.pool.Query(ctx, `SELECT b.id, `+eCols+`
FROM entries e JOIN backups b ON b.id = e.backup_id
WHERE e.name_id IN (SELECT id FROM names WHERE lower(name) LIKE lower($1) LIMIT 1000)
AND NOT b.deleting`+cond+fmt.Sprintf(`
ORDER BY b.created_at DESC, b.id DESC, e.seq LIMIT $%d`, len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: search: %w", err)
	}
	return db.backupNodes(ctx, rows, "search")
}

// History returns the entries at path in every live backup of the tag set
// of backup id, oldest first.
func (db *DB) History(ctx context.Context, id int64, path string, limit int) ([]metadb.Hit, error) {
	rows, err := db.pool.Query(ctx, `SELECT b.id, `+eCols+`
FROM entries e JOIN backups b ON b.id = e.backup_id
WHERE e.name_id = (SELECT id FROM names WHERE name = $1) AND e.path = $2
AND NOT b.deleting AND b.tagset = (SELECT tagset FROM backups WHERE id = $3)
ORDER BY b.created_at, b.id LIMIT $4`, metadb.BaseName(path), path, id, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: history: %w", err)
	}
	return db.backupNodes(ctx, rows, "history")
}

// backupNodes reads rows of a backup id and nodeCols, and pairs each node
// with its backup (a backup deleted meanwhile drops out).
func (db *DB) backupNodes(ctx context.Context, rows pgx.Rows, what string) ([]metadb.Hit, error) {
	type found struct {
		id   int64
		node metadb.Node
	}
	var fs []found
	for rows.Next() {
		var f found
		var err error
		if f.node, err = scanNode(rows, &f.id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: %s: %w", what, err)
		}
		fs = append(fs, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, err)
	}
	backups := map[int64]metadb.Backup{}
	out := make([]metadb.Hit, 0, len(fs))
	for _, f := range fs {
		b, ok := backups[f.id]
		if !ok {
			var err error
			b, err = db.Get(ctx, f.id)
			if errors.Is(err, metadb.ErrNotFound) {
				continue
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

// FillAdded records what backup id added.
func (db *DB) FillAdded(ctx context.Context, id int64) (int64, error) {
	var added int64
	err := db.pool.QueryRow(ctx, `UPDATE backups SET added_bytes = (SELECT COALESCE(sum(b.size), 0) FROM refs r JOIN blocks b ON b.id = r.block_id
	WHERE r.backup_id = $1 AND NOT EXISTS (SELECT 1 FROM refs o WHERE o.block_id = r.block_id AND o.backup_id != $1))
WHERE id = $1 RETURNING added_bytes`, id).Scan(&added)
	if err != nil {
		return 0, notFound(err, fmt.Sprintf("added bytes of backup %d", id))
	}
	return added, nil
}

// PolicyRows returns every live backup.
func (db *DB) PolicyRows(ctx context.Context) ([]metadb.PolicyRow, error) {
	rows, err := db.pool.Query(ctx, "SELECT id, created_at, tagset, files, bytes FROM backups WHERE NOT deleting")
	if err != nil {
		return nil, fmt.Errorf("postgres: backups: %w", err)
	}
	defer rows.Close()
	var out []metadb.PolicyRow
	for rows.Next() {
		var r metadb.PolicyRow
		var ns int64
		if err := rows.Scan(&r.ID, &ns, &r.TagSet, &r.Files, &r.Bytes); err != nil {
			return nil, fmt.Errorf("postgres: backups: %w", err)
		}
		r.CreatedAt = time.Unix(0, ns).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
