package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"ib/internal/manifest"
	"ib/internal/metadb"
)

// gcLock is the advisory lock between commits and garbage collection on
// every server of the database: a commit holds it shared from its first
// block lookup to its end, a GC batch exclusively while it deletes. So a
// block a commit found cannot be deleted before the commit's references to
// it are visible, which is what SQLite's one writer gives for free.
const gcLock = 0x1b_0002

// BeginStage adds a staged backup's row (hidden) and its tags, and copies
// the references of its parent, in one short transaction. If a backup
// with h.Key exists, it returns that backup's id as existed and no stage.
func (db *DB) BeginStage(ctx context.Context, h metadb.Head) (st metadb.Stage, existed int64, err error) {
	err = pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if h.Key != "" {
			err := tx.QueryRow(ctx, "SELECT id FROM backups WHERE idempotency_key = $1", h.Key).Scan(&existed)
			if err == nil || !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		now := db.now().UnixNano()
		if err := tx.QueryRow(ctx, `INSERT INTO backups (created_at, tagset, files, dirs, symlinks, bytes, blocks, entries, deleting, staged_at)
VALUES ($1, $2, 0, 0, 0, 0, 0, 0, true, $1) RETURNING id`, now, h.Tags.Canonical()).Scan(&st.ID); err != nil {
			return err
		}
		var keys, values []string
		for k, v := range h.Tags {
			keys, values = append(keys, k), append(values, v)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO backup_tags (backup_id, key, value) SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)",
			st.ID, keys, values); err != nil {
			return err
		}
		// With a block marked corrupt, every block is looked up (and
		// the corrupt ones reported missing): no parent.
		err := tx.QueryRow(ctx, `SELECT id FROM backups WHERE tagset = $1 AND NOT deleting
AND NOT EXISTS (SELECT 1 FROM blocks WHERE corrupt)
ORDER BY created_at DESC, id DESC LIMIT 1`, h.Tags.Canonical()).Scan(&st.Parent)
		if errors.Is(err, pgx.ErrNoRows) || st.Parent == 0 {
			return nil
		}
		if err != nil {
			return err
		}
		// The parent's references hold its blocks against garbage
		// collection, so copying them needs no lock.
		_, err = tx.Exec(ctx, "INSERT INTO refs (block_id, backup_id) SELECT block_id, $1 FROM refs WHERE backup_id = $2", st.ID, st.Parent)
		return err
	})
	if err != nil {
		return metadb.Stage{}, 0, fmt.Errorf("postgres: stage: %w", err)
	}
	if existed != 0 {
		return metadb.Stage{}, existed, nil
	}
	return st, 0, nil
}

// StageTx starts a transaction of staged backup id and notes the stage as
// alive; ErrStageGone if it was dropped. The transaction holds the
// garbage collection lock shared: a block it looks up cannot be deleted
// before its references to it are visible.
func (db *DB) StageTx(ctx context.Context, id int64) (_ metadb.CommitTx, err error) {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: stage: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.Background())
		}
	}()
	if _, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock_shared($1)", gcLock); err != nil {
		return nil, fmt.Errorf("postgres: stage: %w", err)
	}
	// Every lookup of a commit is by key. The planner's statistics cannot
	// know the rows this stage adds (a first backup of a million files
	// into an empty database): it took the names table for empty and
	// scanned it whole for each batch of names, a commit that grew with
	// the square of its entries.
	if _, err = tx.Exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
		return nil, fmt.Errorf("postgres: stage: %w", err)
	}
	tag, err := tx.Exec(ctx, "UPDATE backups SET staged_at = $1 WHERE id = $2 AND staged_at IS NOT NULL", db.now().UnixNano(), id)
	if err != nil {
		return nil, fmt.Errorf("postgres: stage: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil, fmt.Errorf("postgres: backup %d: %w", id, metadb.ErrStageGone)
	}
	return &commitTx{db: db, tx: tx, id: id, pending: map[string]int64{}}, nil
}

// DropStage turns a staged backup into a deleted one: the next purge
// removes its rows.
func (db *DB) DropStage(ctx context.Context, id int64) error {
	if _, err := db.pool.Exec(ctx, "UPDATE backups SET staged_at = NULL WHERE id = $1 AND staged_at IS NOT NULL", id); err != nil {
		return fmt.Errorf("postgres: drop stage %d: %w", id, err)
	}
	return nil
}

// ReapStages drops the staged backups not written to since before (a
// stage's own transactions update staged_at; one waits for the other).
func (db *DB) ReapStages(ctx context.Context, before time.Time) (int, error) {
	tag, err := db.pool.Exec(ctx, "UPDATE backups SET staged_at = NULL WHERE staged_at < $1", before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("postgres: reap stages: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ParentEntries returns up to limit entries of backup id with seq > after,
// in walk order.
func (db *DB) ParentEntries(ctx context.Context, id, after int64, limit int) ([]metadb.ParentEntry, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, path, blocks, coalesce(name_id, 0) FROM entries
WHERE backup_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`, id, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: commit parent: %w", err)
	}
	defer rows.Close()
	out := make([]metadb.ParentEntry, 0, limit)
	for rows.Next() {
		var e metadb.ParentEntry
		if err := rows.Scan(&e.Seq, &e.Path, &e.Blocks, &e.NameID); err != nil {
			return nil, fmt.Errorf("postgres: commit parent: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// commitTx is one commit's transaction. Entries and references are
// buffered and written a few thousand at a time (COPY, unnest): each
// statement is a round trip to the database.
type commitTx struct {
	db      *DB
	tx      pgx.Tx
	id      int64
	done    bool
	entries [][]any
	refs    []int64
	pending map[string]int64 // names given in this transaction
}

const (
	copyRows = 8192
	refRows  = 16384
)

func (c *commitTx) Rollback() {
	if !c.done {
		c.done = true
		c.tx.Rollback(context.Background())
	}
}

func (c *commitTx) LookupBlocks(ctx context.Context, cids [][]byte) ([]metadb.BlockRef, error) {
	rows, err := c.tx.Query(ctx, "SELECT id, cid, size, corrupt FROM blocks WHERE cid = ANY($1)", cids)
	if err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", err)
	}
	defer rows.Close()
	out := make([]metadb.BlockRef, 0, len(cids))
	for rows.Next() {
		var r metadb.BlockRef
		if err := rows.Scan(&r.ID, &r.CID, &r.Size, &r.Corrupt); err != nil {
			return nil, fmt.Errorf("postgres: commit: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

var entryColumns = []string{"backup_id", "seq", "path", "type", "mode", "mtime_s", "mtime_ns", "size", "uid", "gid", "target", "blocks", "parent_seq", "flags", "plain_size", "name_id"}

func (c *commitTx) AddEntries(ctx context.Context, rows []metadb.EntryRow) error {
	newNames := map[string][]int{} // name → the buffered rows that need its id
	for _, r := range rows {
		e := r.Entry
		var target *string
		if e.Type == manifest.TypeSymlink || e.Type == manifest.TypeHardlink {
			target = &e.Target
		}
		var blocks []byte
		if len(r.Blocks) > 0 {
			blocks = r.Blocks
		}
		var parent *int64
		if r.Parent >= 0 {
			parent = &r.Parent
		}
		row := []any{c.id, r.Seq, e.Path, int16(metadb.TypeCode(e.Type)), int64(e.Mode), e.MTime.Unix(), int32(e.MTime.Nanosecond()),
			e.Size, int64(e.UID), int64(e.GID), target, blocks, parent, int32(metadb.Flags(e)), metadb.PlainSize(e), r.NameID}
		c.entries = append(c.entries, row)
		if r.NameID == 0 {
			name := metadb.BaseName(e.Path)
			if id, ok := c.knownName(name); ok {
				row[len(row)-1] = id
			} else {
				newNames[name] = append(newNames[name], len(c.entries)-1)
			}
		}
	}
	if err := c.resolveNames(ctx, newNames); err != nil {
		return err
	}
	if len(c.entries) >= copyRows {
		return c.flushEntries(ctx)
	}
	return nil
}

func (c *commitTx) knownName(name string) (int64, bool) {
	if id, ok := c.pending[name]; ok {
		return id, true
	}
	return c.db.cachedName(name)
}

// resolveNames adds new names (in order, so that two commits adding the
// same names lock them in the same order) and fills in their ids.
func (c *commitTx) resolveNames(ctx context.Context, names map[string][]int) error {
	if len(names) == 0 {
		return nil
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	slices.Sort(list)
	if _, err := c.tx.Exec(ctx, "INSERT INTO names (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING", list); err != nil {
		return fmt.Errorf("postgres: names: %w", err)
	}
	rows, err := c.tx.Query(ctx, "SELECT id, name FROM names WHERE name = ANY($1)", list)
	if err != nil {
		return fmt.Errorf("postgres: names: %w", err)
	}
	defer rows.Close()
	found := 0
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("postgres: names: %w", err)
		}
		for _, at := range names[name] {
			c.entries[at][len(c.entries[at])-1] = id
		}
		if len(c.pending) >= 50_000 {
			clear(c.pending) // only a cache
		}
		c.pending[name] = id
		found++
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: names: %w", err)
	}
	if found != len(names) {
		return fmt.Errorf("postgres: names: %d names not found after their insert", len(names)-found)
	}
	return nil
}

func (c *commitTx) flushEntries(ctx context.Context) error {
	if len(c.entries) == 0 {
		return nil
	}
	if _, err := c.tx.CopyFrom(ctx, pgx.Identifier{"entries"}, entryColumns, pgx.CopyFromRows(c.entries)); err != nil {
		return fmt.Errorf("postgres: commit entries: %w", err)
	}
	c.entries = c.entries[:0]
	return nil
}

func (c *commitTx) AddRefs(ctx context.Context, ids []int64) error {
	c.refs = append(c.refs, ids...)
	if len(c.refs) >= refRows {
		return c.flushRefs(ctx)
	}
	return nil
}

func (c *commitTx) flushRefs(ctx context.Context) error {
	if len(c.refs) == 0 {
		return nil
	}
	slices.Sort(c.refs)
	c.refs = slices.Compact(c.refs)
	if _, err := c.tx.Exec(ctx, `INSERT INTO refs (block_id, backup_id) SELECT unnest($1::bigint[]), $2
ON CONFLICT DO NOTHING`, c.refs, c.id); err != nil {
		return fmt.Errorf("postgres: commit refs: %w", err)
	}
	c.refs = c.refs[:0]
	return nil
}

func (c *commitTx) ClearRefs(ctx context.Context) error {
	c.refs = c.refs[:0]
	if _, err := c.tx.Exec(ctx, "DELETE FROM refs WHERE backup_id = $1", c.id); err != nil {
		return fmt.Errorf("postgres: commit refs: %w", err)
	}
	return nil
}

func (c *commitTx) DropRefs(ctx context.Context, cids [][]byte) error {
	if err := c.flushRefs(ctx); err != nil {
		return err
	}
	if _, err := c.tx.Exec(ctx, `DELETE FROM refs WHERE backup_id = $1 AND block_id IN (SELECT id FROM blocks WHERE cid = ANY($2))`,
		c.id, cids); err != nil {
		return fmt.Errorf("postgres: commit refs: %w", err)
	}
	return nil
}

// flush writes the buffered entries and references.
func (c *commitTx) flush(ctx context.Context) error {
	if err := c.flushEntries(ctx); err != nil {
		return err
	}
	return c.flushRefs(ctx)
}

func (c *commitTx) Save(ctx context.Context) error {
	defer c.Rollback()
	if err := c.flush(ctx); err != nil {
		return err
	}
	if err := c.tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: stage: %w", err)
	}
	c.done = true
	c.db.cacheNames(c.pending)
	return nil
}

func (c *commitTx) Finish(ctx context.Context, n metadb.Counts, h metadb.Head) (existed int64, err error) {
	defer c.Rollback()
	if err := c.flush(ctx); err != nil {
		return 0, err
	}
	var key, labels *string
	if h.Key != "" {
		key = &h.Key
	}
	if len(h.Labels) > 0 {
		l := h.Labels.Canonical()
		labels = &l
	}
	// Two servers finishing one key at once: the second waits on the
	// unique index and then fails; it is told of the first.
	_, err = c.tx.Exec(ctx, `UPDATE backups SET files = $1, dirs = $2, symlinks = $3, bytes = $4, entries = $5,
blocks = (SELECT count(*) FROM refs WHERE backup_id = $6), labels = $7, idempotency_key = $8, created_at = $9,
deleting = false, staged_at = NULL WHERE id = $6`,
		n.Files, n.Dirs, n.Symlinks, n.Bytes, n.Entries, c.id, labels, key, c.db.now().UnixNano())
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "23505" && h.Key != "" {
		c.Rollback()
		if qerr := c.db.pool.QueryRow(ctx, "SELECT id FROM backups WHERE idempotency_key = $1", h.Key).Scan(&existed); qerr == nil {
			return existed, nil
		}
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: commit: %w", err)
	}
	if err := c.tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("postgres: commit: %w", err)
	}
	c.done = true
	c.db.cacheNames(c.pending)
	return 0, nil
}
