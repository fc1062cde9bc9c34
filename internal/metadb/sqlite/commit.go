package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"ib/internal/manifest"
	"ib/internal/metadb"
)

// BeginCommit starts a commit's transaction on the writer connection (which
// it holds until Finish or Rollback) and adds the backup's row.
func (db *DB) BeginCommit(ctx context.Context, h metadb.Head) (_ metadb.CommitTx, id int64, existed bool, err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, false, fmt.Errorf("sqlite: commit: %w", err)
	}
	defer func() {
		if err != nil || existed {
			tx.Rollback()
		}
	}()
	var keyArg any
	if h.Key != "" {
		err = tx.QueryRowContext(ctx, "SELECT id FROM backups WHERE idempotency_key = ?", h.Key).Scan(&id)
		if err == nil {
			return nil, id, true, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, 0, false, fmt.Errorf("sqlite: commit: %w", err)
		}
		keyArg = h.Key
	}
	var labels any
	if len(h.Labels) > 0 {
		labels = h.Labels.Canonical()
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO backups (created_at, tagset, files, dirs, symlinks, bytes, blocks, entries, idempotency_key, labels)
VALUES (?, ?, 0, 0, 0, 0, 0, 0, ?, ?) RETURNING id`, db.now().UnixNano(), h.Tags.Canonical(), keyArg, labels).Scan(&id)
	if err != nil {
		return nil, 0, false, fmt.Errorf("sqlite: commit: %w", err)
	}
	for k, v := range h.Tags {
		if _, err = tx.ExecContext(ctx, "INSERT INTO backup_tags (backup_id, key, value) VALUES (?, ?, ?)", id, k, v); err != nil {
			return nil, 0, false, fmt.Errorf("sqlite: commit tags: %w", err)
		}
	}
	return &commitTx{db: db, tx: tx, id: id, pending: map[string]int64{}}, id, false, nil
}

// commitTx is one commit's transaction. Its batch statements are prepared
// once per commit and padded to a few sizes: parsing a statement of
// hundreds of placeholders cost as much as running it, and statements, not
// rows, are what cost in SQLite.
type commitTx struct {
	db    *DB
	tx    *sql.Tx
	id    int64
	stmts map[string]*sql.Stmt
	done  bool
	// pending holds the name ids given in this transaction; they reach
	// the DB's cache only once it commits: a rolled-back insert must not
	// leave an id behind that another name may get later.
	pending map[string]int64
}

// stmt returns a statement of the transaction, prepared on first use.
func (c *commitTx) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := c.stmts[q]; ok {
		return st, nil
	}
	st, err := c.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[q] = st
	return st, nil
}

func (c *commitTx) Rollback() {
	if c.done {
		return
	}
	c.done = true
	for _, st := range c.stmts {
		st.Close()
	}
	c.tx.Rollback()
}

func (c *commitTx) AnyCorrupt(ctx context.Context) (bool, error) {
	var n int
	err := c.tx.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM blocks WHERE corrupt = 1 LIMIT 1)").Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlite: commit: %w", err)
	}
	return n > 0, nil
}

func (c *commitTx) Parent(ctx context.Context, tags manifest.Tags) (int64, error) {
	var id int64
	err := c.tx.QueryRowContext(ctx, `SELECT id FROM backups WHERE tagset = ? AND deleting = 0 AND id != ?
ORDER BY created_at DESC, id DESC LIMIT 1`, tags.Canonical(), c.id).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: commit parent: %w", err)
	}
	return id, nil
}

func (c *commitTx) ParentEntries(ctx context.Context, id, after int64, limit int) ([]metadb.ParentEntry, error) {
	st, err := c.stmt(ctx, `SELECT seq, path, blocks, name_id FROM entries WHERE backup_id = ? AND seq > ? ORDER BY seq LIMIT ?`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: commit parent: %w", err)
	}
	rows, err := st.QueryContext(ctx, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: commit parent: %w", err)
	}
	defer rows.Close()
	out := make([]metadb.ParentEntry, 0, limit)
	for rows.Next() {
		var e metadb.ParentEntry
		var nameID sql.NullInt64
		if err := rows.Scan(&e.Seq, &e.Path, &e.Blocks, &nameID); err != nil {
			return nil, fmt.Errorf("sqlite: commit parent: %w", err)
		}
		e.NameID = nameID.Int64
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: commit parent: %w", err)
	}
	return out, nil
}

// padded rounds n up to a multiple of 64.
func padded(n int) int { return (n + 63) &^ 63 }

func (c *commitTx) LookupBlocks(ctx context.Context, cids [][]byte) ([]metadb.BlockRef, error) {
	out := make([]metadb.BlockRef, 0, len(cids))
	for start := 0; start < len(cids); start += queryBatch {
		batch := cids[start:min(start+queryBatch, len(cids))]
		// The list is padded with its first CID to a multiple of 64, so
		// that a few prepared statements serve every batch.
		args := make([]any, padded(len(batch)))
		for i := range args {
			args[i] = batch[0]
		}
		for i, cid := range batch {
			args[i] = cid
		}
		st, err := c.stmt(ctx, "SELECT id, cid, size, corrupt FROM blocks WHERE cid IN ("+placeholders(len(args))+")")
		if err != nil {
			return nil, fmt.Errorf("sqlite: commit: %w", err)
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: commit: %w", err)
		}
		for rows.Next() {
			var r metadb.BlockRef
			if err := rows.Scan(&r.ID, &r.CID, &r.Size, &r.Corrupt); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: commit: %w", err)
			}
			out = append(out, r)
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("sqlite: commit: %w", err)
		}
	}
	return out, nil
}

const (
	entryCols     = 16
	entryBatch    = 256
	entriesInsert = "INSERT INTO entries (backup_id, seq, path, type, mode, mtime_s, mtime_ns, size, uid, gid, target, blocks, parent_seq, flags, plain_size, name_id) VALUES "
)

// nullParent stores the root's parent (-1) as NULL.
func nullParent(p int64) any {
	if p < 0 {
		return nil
	}
	return p
}

func (c *commitTx) AddEntries(ctx context.Context, rows []metadb.EntryRow) error {
	for start := 0; start < len(rows); start += entryBatch {
		if err := c.addEntries(ctx, rows[start:min(start+entryBatch, len(rows))]); err != nil {
			return err
		}
	}
	return nil
}

func (c *commitTx) addEntries(ctx context.Context, rows []metadb.EntryRow) error {
	args := make([]any, 0, len(rows)*entryCols)
	newNames := map[string][]int{} // name → the args index of its name_id
	for _, r := range rows {
		e := r.Entry
		var target any
		if e.Type == manifest.TypeSymlink || e.Type == manifest.TypeHardlink {
			target = e.Target
		}
		var blocks any
		if len(r.Blocks) > 0 {
			blocks = r.Blocks
		}
		args = append(args, c.id, r.Seq, e.Path, metadb.TypeCode(e.Type), e.Mode, e.MTime.Unix(), e.MTime.Nanosecond(),
			e.Size, e.UID, e.GID, target, blocks, nullParent(r.Parent), metadb.Flags(e), metadb.PlainSize(e), r.NameID)
		if r.NameID == 0 {
			name := metadb.BaseName(e.Path)
			if id, ok := c.knownName(name); ok {
				args[len(args)-1] = id
			} else {
				newNames[name] = append(newNames[name], len(args)-1)
			}
		}
	}
	if err := c.resolveNames(ctx, newNames, args); err != nil {
		return err
	}
	q := entriesInsert + strings.TrimSuffix(strings.Repeat("("+placeholders(entryCols)+"),", len(rows)), ",")
	var err error
	if len(rows) == entryBatch {
		var st *sql.Stmt
		if st, err = c.stmt(ctx, q); err == nil {
			_, err = st.ExecContext(ctx, args...)
		}
	} else {
		_, err = c.tx.ExecContext(ctx, q, args...)
	}
	if err != nil {
		return fmt.Errorf("sqlite: commit entries: %w", err)
	}
	return nil
}

func (c *commitTx) knownName(name string) (int64, bool) {
	if id, ok := c.db.names[name]; ok {
		return id, true
	}
	id, ok := c.pending[name]
	return id, ok
}

// maxPendingNames bounds the names a commit remembers: a commit of a
// million distinct names would otherwise hold them all.
const maxPendingNames = 50_000

// resolveNames records new names with two statements and fills in their
// ids: one statement per name cost more than the entries.
func (c *commitTx) resolveNames(ctx context.Context, names map[string][]int, args []any) error {
	if len(names) == 0 {
		return nil
	}
	list := make([]any, 0, len(names))
	for name := range names {
		list = append(list, name)
	}
	if _, err := c.tx.ExecContext(ctx, "INSERT OR IGNORE INTO names (name) VALUES "+
		strings.TrimSuffix(strings.Repeat("(?),", len(list)), ","), list...); err != nil {
		return fmt.Errorf("sqlite: names: %w", err)
	}
	rows, err := c.tx.QueryContext(ctx, "SELECT id, name FROM names WHERE name IN ("+placeholders(len(list))+")", list...)
	if err != nil {
		return fmt.Errorf("sqlite: names: %w", err)
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("sqlite: names: %w", err)
		}
		for _, at := range names[name] {
			args[at] = id
		}
		if len(c.pending) >= maxPendingNames {
			clear(c.pending) // only a cache: a name missing is looked up again
		}
		c.pending[name] = id
		found++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: names: %w", err)
	}
	if found != len(names) {
		return fmt.Errorf("sqlite: names: %d names not found after their insert", len(names)-found)
	}
	return nil
}

func (c *commitTx) AddRefs(ctx context.Context, ids []int64) error {
	for start := 0; start < len(ids); start += queryBatch {
		batch := ids[start:min(start+queryBatch, len(ids))]
		// Padded like the lookup: repeated pairs are ignored.
		args := make([]any, 0, 2*padded(len(batch)))
		for _, id := range batch {
			args = append(args, id, c.id)
		}
		for len(args) < cap(args) {
			args = append(args, batch[0], c.id)
		}
		q := "INSERT OR IGNORE INTO refs (block_id, backup_id) VALUES " + strings.TrimSuffix(strings.Repeat("(?,?),", len(args)/2), ",")
		st, err := c.stmt(ctx, q)
		if err == nil {
			_, err = st.ExecContext(ctx, args...)
		}
		if err != nil {
			return fmt.Errorf("sqlite: commit refs: %w", err)
		}
	}
	return nil
}

func (c *commitTx) CopyRefs(ctx context.Context, from int64) error {
	if _, err := c.tx.ExecContext(ctx, `INSERT OR IGNORE INTO refs (block_id, backup_id)
SELECT block_id, ? FROM refs WHERE backup_id = ?`, c.id, from); err != nil {
		return fmt.Errorf("sqlite: commit refs: %w", err)
	}
	return nil
}

func (c *commitTx) DropRefs(ctx context.Context, cids [][]byte) error {
	for start := 0; start < len(cids); start += queryBatch {
		batch := cids[start:min(start+queryBatch, len(cids))]
		args := make([]any, 0, len(batch)+1)
		args = append(args, c.id)
		for _, cid := range batch {
			args = append(args, cid)
		}
		if _, err := c.tx.ExecContext(ctx, `DELETE FROM refs WHERE backup_id = ? AND block_id IN
(SELECT id FROM blocks WHERE cid IN (`+placeholders(len(batch))+`))`, args...); err != nil {
			return fmt.Errorf("sqlite: commit refs: %w", err)
		}
	}
	return nil
}

func (c *commitTx) Finish(ctx context.Context, n metadb.Counts) error {
	defer c.Rollback() // closes the statements; a no-op on the committed transaction
	var blocks int64
	if err := c.tx.QueryRowContext(ctx, "SELECT count(*) FROM refs WHERE backup_id = ?", c.id).Scan(&blocks); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	if _, err := c.tx.ExecContext(ctx, "UPDATE backups SET files=?, dirs=?, symlinks=?, bytes=?, blocks=?, entries=? WHERE id=?",
		n.Files, n.Dirs, n.Symlinks, n.Bytes, blocks, n.Entries, c.id); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	if err := c.tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	c.db.cacheNames(c.pending)
	return nil
}
