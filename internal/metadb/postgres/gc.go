package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"ib/internal/metadb"
)

// deleteBatch bounds the rows one deleting transaction touches.
const deleteBatch = 5000

// MarkDeleting hides a backup at once; metadb.ErrNotFound if absent.
func (db *DB) MarkDeleting(ctx context.Context, id int64) error {
	tag, err := db.pool.Exec(ctx, "UPDATE backups SET deleting = true WHERE id = $1 AND NOT deleting", id)
	if err != nil {
		return fmt.Errorf("postgres: delete backup %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return metadb.ErrNotFound
	}
	return nil
}

// Purge removes the rows of every backup marked deleting, a few thousand
// rows per transaction.
func (db *DB) Purge(ctx context.Context) (int, time.Duration, error) {
	var longest time.Duration
	rows, err := db.pool.Query(ctx, "SELECT id FROM backups WHERE deleting AND staged_at IS NULL")
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: purge: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: purge: %w", err)
	}
	for _, id := range ids {
		for _, q := range []string{
			"DELETE FROM entries WHERE backup_id = $1 AND seq IN (SELECT seq FROM entries WHERE backup_id = $1 LIMIT $2)",
			"DELETE FROM refs WHERE backup_id = $1 AND block_id IN (SELECT block_id FROM refs WHERE backup_id = $1 LIMIT $2)",
		} {
			for {
				start := time.Now()
				tag, err := db.pool.Exec(ctx, q, id, deleteBatch)
				longest = max(longest, time.Since(start))
				if err != nil {
					return 0, longest, fmt.Errorf("postgres: purge backup %d: %w", id, err)
				}
				if tag.RowsAffected() < deleteBatch {
					break
				}
			}
		}
		start := time.Now()
		if _, err := db.pool.Exec(ctx, "DELETE FROM backups WHERE id = $1 AND deleting AND staged_at IS NULL", id); err != nil {
			return 0, longest, fmt.Errorf("postgres: purge backup %d: %w", id, err)
		}
		longest = max(longest, time.Since(start))
	}
	return len(ids), longest, nil
}

// GCCandidates returns up to limit unreferenced blocks with id > after last
// seen before cutoff, by id. It only reads: DeleteBlocks checks again.
func (db *DB) GCCandidates(ctx context.Context, after int64, cutoff time.Time, limit int) ([]metadb.Candidate, error) {
	rows, err := db.pool.Query(ctx, `SELECT id, cid FROM blocks b
WHERE id > $1 AND seen_at < $2 AND NOT EXISTS (SELECT 1 FROM refs r WHERE r.block_id = b.id)
ORDER BY id LIMIT $3`, after, cutoff.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: gc candidates: %w", err)
	}
	defer rows.Close()
	var out []metadb.Candidate
	for rows.Next() {
		var c metadb.Candidate
		if err := rows.Scan(&c.ID, &c.CID); err != nil {
			return nil, fmt.Errorf("postgres: gc candidates: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteBlocks deletes those of ids that are still unreferenced and not
// seen since cutoff, and returns them. It holds gcLock exclusively: no
// commit is between its lookups and its end, and the delete's snapshot,
// taken once the lock is held, sees every committed reference. A
// missing-query refreshing a row meanwhile holds that row's lock; the
// delete waits for it and then finds the row seen.
func (db *DB) DeleteBlocks(ctx context.Context, ids []int64, cutoff time.Time) ([]metadb.Deleted, time.Duration, error) {
	if len(ids) == 0 {
		return nil, 0, nil
	}
	start := time.Now()
	var out []metadb.Deleted
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", gcLock); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM blocks
WHERE seen_at < $1 AND id = ANY($2)
AND NOT EXISTS (SELECT 1 FROM refs r WHERE r.block_id = blocks.id)
RETURNING cid, data IS NULL, size, wire_size`, cutoff.UnixNano(), ids)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d metadb.Deleted
			if err := rows.Scan(&d.CID, &d.Offloaded, &d.Size, &d.WireSize); err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	held := time.Since(start)
	if err != nil {
		return nil, held, fmt.Errorf("postgres: gc delete: %w", err)
	}
	return out, held, nil
}
