package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"ib/internal/manifest"
	"ib/internal/metadb"
)

// BeginStage adds a staged backup's row (hidden) and its tags in one short
// transaction, then copies the references of its parent (copyParentRefs).
// If a backup with h.Key exists, it returns that backup's id as existed
// and no stage.
func (db *DB) BeginStage(ctx context.Context, h metadb.Head) (st metadb.Stage, existed int64, err error) {
	if st, existed, err = db.addStage(ctx, h); err != nil || existed != 0 || st.Parent == 0 {
		return st, existed, err
	}
	if st.Parent, err = db.copyParentRefs(ctx, st.ID, st.Parent); err != nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		db.DropStage(dctx, st.ID) // else reaped once idle
		return metadb.Stage{}, 0, err
	}
	return st, 0, nil
}

// copyParentRefs gives stage id the references of its parent and returns
// the parent, or 0 if the parent was deleted before they could be copied
// (the stage then has none: the match with a parent only ever saves work).
// The copy is one statement in a transaction of its own: inside a larger
// one SQLite keeps a statement journal of every page it changes (each
// reference lands beside its block's older ones, so that is every leaf
// page of the table), and freeing that journal cost more than the copy
// (with 50 backups kept: 163 ms against 400-470 ms). Whether the parent is
// live is checked in the same statement; a backup once deleted is never
// live again, so a parent live after the copy was live during it.
func (db *DB) copyParentRefs(ctx context.Context, id, parent int64) (int64, error) {
	res, err := db.w.ExecContext(ctx, `INSERT INTO refs (block_id, backup_id) SELECT block_id, ? FROM refs
WHERE backup_id = ? AND EXISTS (SELECT 1 FROM backups WHERE id = ? AND deleting = 0)`, id, parent, parent)
	if err != nil {
		return 0, fmt.Errorf("sqlite: stage refs: %w", err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return parent, nil
	}
	var live bool
	err = db.w.QueryRowContext(ctx, "SELECT deleting = 0 FROM backups WHERE id = ?", parent).Scan(&live)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !live {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlite: stage parent: %w", err)
	}
	return parent, nil // live, and without references (its blocks are all inline)
}

// addStage adds the staged backup's row and tags and picks its parent.
func (db *DB) addStage(ctx context.Context, h metadb.Head) (st metadb.Stage, existed int64, err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return st, 0, fmt.Errorf("sqlite: stage: %w", err)
	}
	defer tx.Rollback() // a no-op after Commit
	if h.Key != "" {
		err = tx.QueryRowContext(ctx, "SELECT id FROM backups WHERE idempotency_key = ?", h.Key).Scan(&existed)
		if err == nil {
			return st, existed, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return st, 0, fmt.Errorf("sqlite: stage: %w", err)
		}
	}
	now := db.now().UnixNano()
	if err = tx.QueryRowContext(ctx, `INSERT INTO backups (created_at, tagset, files, dirs, symlinks, bytes, blocks, entries, deleting, staged_at)
VALUES (?, ?, 0, 0, 0, 0, 0, 0, 1, ?) RETURNING id`, now, h.Tags.Canonical(), now).Scan(&st.ID); err != nil {
		return st, 0, fmt.Errorf("sqlite: stage: %w", err)
	}
	for k, v := range h.Tags {
		if _, err = tx.ExecContext(ctx, "INSERT INTO backup_tags (backup_id, key, value) VALUES (?, ?, ?)", st.ID, k, v); err != nil {
			return st, 0, fmt.Errorf("sqlite: stage tags: %w", err)
		}
	}
	// With a block marked corrupt, every block is looked up (and the
	// corrupt ones reported missing): no parent.
	err = tx.QueryRowContext(ctx, `SELECT id FROM backups WHERE tagset = ? AND deleting = 0
AND NOT EXISTS (SELECT 1 FROM blocks WHERE corrupt = 1)
ORDER BY created_at DESC, id DESC LIMIT 1`, h.Tags.Canonical()).Scan(&st.Parent)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return st, 0, fmt.Errorf("sqlite: stage parent: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return st, 0, fmt.Errorf("sqlite: stage: %w", err)
	}
	return st, 0, nil
}

// StageTx starts a transaction of staged backup id on the writer
// connection (held until Save, Finish or Rollback); it notes the stage as
// alive. ErrStageGone if it was dropped.
func (db *DB) StageTx(ctx context.Context, id int64) (_ metadb.CommitTx, err error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stage: %w", err)
	}
	res, err := tx.ExecContext(ctx, "UPDATE backups SET staged_at = ? WHERE id = ? AND staged_at IS NOT NULL", db.now().UnixNano(), id)
	if err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("sqlite: stage: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		tx.Rollback()
		return nil, fmt.Errorf("sqlite: backup %d: %w", id, metadb.ErrStageGone)
	}
	return &commitTx{db: db, tx: tx, id: id, pending: map[string]int64{}, namesAfter: -1}, nil
}

// DropStage turns a staged backup into a deleted one: the next purge
// removes its rows.
func (db *DB) DropStage(ctx context.Context, id int64) error {
	if _, err := db.w.ExecContext(ctx, "UPDATE backups SET staged_at = NULL WHERE id = ? AND staged_at IS NOT NULL", id); err != nil {
		return fmt.Errorf("sqlite: drop stage %d: %w", id, err)
	}
	return nil
}

// ReapStages drops the staged backups not written to since before.
func (db *DB) ReapStages(ctx context.Context, before time.Time) (int, error) {
	res, err := db.w.ExecContext(ctx, "UPDATE backups SET staged_at = NULL WHERE staged_at < ?", before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("sqlite: reap stages: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// commitTx is one transaction of a staged backup. Its batch statements are
// prepared once per transaction and padded to a few sizes: parsing a
// statement of hundreds of placeholders cost as much as running it, and
// statements, not rows, are what cost in SQLite.
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
	// namesAfter is the largest name id before this transaction added
	// names (-1 until it does): the names above it go into the trigram
	// index before it commits.
	namesAfter int64
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

// ParentEntries returns up to limit entries of backup id with seq > after,
// in walk order.
func (db *DB) ParentEntries(ctx context.Context, id, after int64, limit int) ([]metadb.ParentEntry, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT seq, path, blocks, name_id FROM entries WHERE backup_id = ? AND seq > ? ORDER BY seq LIMIT ?`, id, after, limit)
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
	if id, ok := c.db.cachedName(name); ok {
		return id, true
	}
	id, ok := c.pending[name]
	return id, ok
}

// maxPendingNames bounds the names a commit remembers: a commit of a
// million distinct names would otherwise hold them all.
const maxPendingNames = 50_000

// resolveNames records new names (taking them out of names) and fills in their
// ids: one statement per name cost more than the entries.
func (c *commitTx) resolveNames(ctx context.Context, names map[string][]int, args []any) error {
	if len(names) == 0 {
		return nil
	}
	if c.namesAfter < 0 {
		var err error
		if c.namesAfter, err = lastName(ctx, c.tx); err != nil {
			return err
		}
	}
	list := make([]any, 0, len(names))
	for name := range names {
		list = append(list, name)
	}
	// The insert returns the ids of the names it added (most of them: a
	// name already stored is usually in c.pending); only the others are
	// looked up, which saved a second probe of the name index per new name
	// (a million tiny files of distinct names: 3.4 of 12.4 CPU-s).
	if err := c.takeNames(ctx, names, args, "INSERT OR IGNORE INTO names (name) VALUES "+
		strings.TrimSuffix(strings.Repeat("(?),", len(list)), ",")+" RETURNING id, name", list); err != nil {
		return err
	}
	if len(names) > 0 {
		old := make([]any, 0, len(names))
		for name := range names {
			old = append(old, name)
		}
		if err := c.takeNames(ctx, names, args, "SELECT id, name FROM names WHERE name IN ("+placeholders(len(old))+")", old); err != nil {
			return err
		}
	}
	if len(names) > 0 {
		return fmt.Errorf("sqlite: names: %d names not found after their insert", len(names))
	}
	return nil
}

// takeNames runs a query of (id, name) rows and gives each name's id to
// the arguments in names that wait for it, taking the name out.
func (c *commitTx) takeNames(ctx context.Context, names map[string][]int, args []any, q string, list []any) error {
	rows, err := c.tx.QueryContext(ctx, q, list...)
	if err != nil {
		return fmt.Errorf("sqlite: names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("sqlite: names: %w", err)
		}
		for _, at := range names[name] {
			args[at] = id
		}
		delete(names, name)
		if len(c.pending) >= maxPendingNames {
			clear(c.pending) // only a cache: a name missing is looked up again
		}
		c.pending[name] = id
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: names: %w", err)
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

func (c *commitTx) ClearRefs(ctx context.Context) error {
	if _, err := c.tx.ExecContext(ctx, "DELETE FROM refs WHERE backup_id = ?", c.id); err != nil {
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

// indexNames adds the names this transaction added to the trigram index.
func (c *commitTx) indexNames(ctx context.Context) error {
	if c.namesAfter < 0 {
		return nil
	}
	return indexNames(ctx, c.tx, c.namesAfter)
}

func (c *commitTx) Save(ctx context.Context) error {
	defer c.Rollback() // closes the statements; a no-op on the committed transaction
	if err := c.indexNames(ctx); err != nil {
		return err
	}
	if err := c.tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: stage: %w", err)
	}
	c.db.cacheNames(c.pending)
	return nil
}

func (c *commitTx) Finish(ctx context.Context, n metadb.Counts, h metadb.Head) (existed int64, err error) {
	defer c.Rollback() // closes the statements; a no-op on the committed transaction
	var key, labels any
	if h.Key != "" {
		err := c.tx.QueryRowContext(ctx, "SELECT id FROM backups WHERE idempotency_key = ?", h.Key).Scan(&existed)
		if err == nil {
			return existed, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("sqlite: commit: %w", err)
		}
		key = h.Key
	}
	if len(h.Labels) > 0 {
		labels = h.Labels.Canonical()
	}
	var blocks int64
	if err := c.tx.QueryRowContext(ctx, "SELECT count(*) FROM refs WHERE backup_id = ?", c.id).Scan(&blocks); err != nil {
		return 0, fmt.Errorf("sqlite: commit: %w", err)
	}
	if _, err := c.tx.ExecContext(ctx, `UPDATE backups SET files=?, dirs=?, symlinks=?, bytes=?, blocks=?, entries=?,
labels=?, idempotency_key=?, created_at=?, deleting=0, staged_at=NULL WHERE id=?`,
		n.Files, n.Dirs, n.Symlinks, n.Bytes, blocks, n.Entries, labels, key, c.db.now().UnixNano(), c.id); err != nil {
		return 0, fmt.Errorf("sqlite: commit: %w", err)
	}
	if err := c.indexNames(ctx); err != nil {
		return 0, err
	}
	if err := c.tx.Commit(); err != nil {
		return 0, fmt.Errorf("sqlite: commit: %w", err)
	}
	c.db.cacheNames(c.pending)
	return 0, nil
}
