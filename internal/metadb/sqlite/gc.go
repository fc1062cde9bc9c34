package sqlite

import (
	"context"
	"fmt"
	"time"

	"ib/internal/metadb"
)

// deleteBatch bounds the rows one deleting transaction touches, so that the
// writer lock is held for milliseconds, not seconds.
const deleteBatch = 5000

// MarkDeleting hides a backup at once (it is no longer listed, shown or
// restorable). Its rows are removed by Purge. metadb.ErrNotFound if absent.
func (db *DB) MarkDeleting(ctx context.Context, id int64) error {
	res, err := db.w.ExecContext(ctx, "UPDATE backups SET deleting = 1 WHERE id = ? AND deleting = 0", id)
	if err != nil {
		return fmt.Errorf("sqlite: delete backup %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return metadb.ErrNotFound
	}
	return nil
}

// Purge removes the rows of every backup marked deleting, a few thousand
// rows per transaction. It resumes after a crash. It returns how many
// backups it removed and the longest it held the write lock.
func (db *DB) Purge(ctx context.Context) (int, time.Duration, error) {
	var longest time.Duration
	rows, err := db.r.QueryContext(ctx, "SELECT id FROM backups WHERE deleting = 1 AND staged_at IS NULL")
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: purge: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("sqlite: purge: %w", err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		for _, q := range []string{
			"DELETE FROM entries WHERE backup_id = ?1 AND seq IN (SELECT seq FROM entries WHERE backup_id = ?1 LIMIT ?2)",
			"DELETE FROM refs WHERE backup_id = ?1 AND block_id IN (SELECT block_id FROM refs WHERE backup_id = ?1 LIMIT ?2)",
		} {
			for {
				start := time.Now()
				res, err := db.w.ExecContext(ctx, q, id, deleteBatch)
				longest = max(longest, time.Since(start))
				if err != nil {
					return 0, longest, fmt.Errorf("sqlite: purge backup %d: %w", id, err)
				}
				if n, _ := res.RowsAffected(); n < deleteBatch {
					break
				}
			}
		}
		start := time.Now()
		if _, err := db.w.ExecContext(ctx, "DELETE FROM backups WHERE id = ? AND deleting = 1 AND staged_at IS NULL", id); err != nil {
			return 0, longest, fmt.Errorf("sqlite: purge backup %d: %w", id, err)
		}
		longest = max(longest, time.Since(start))
	}
	return len(ids), longest, nil
}

// GCCandidates returns up to limit blocks with id > after that no backup
// references and that were last seen before cutoff, by id. It only reads:
// DeleteBlocks checks again under the write lock.
func (db *DB) GCCandidates(ctx context.Context, after int64, cutoff time.Time, limit int) ([]metadb.Candidate, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, cid FROM blocks b
WHERE id > ? AND seen_at < ? AND NOT EXISTS (SELECT 1 FROM refs r WHERE r.block_id = b.id)
ORDER BY id LIMIT ?`, after, cutoff.UnixNano(), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: gc candidates: %w", err)
	}
	defer rows.Close()
	var out []metadb.Candidate
	for rows.Next() {
		var c metadb.Candidate
		if err := rows.Scan(&c.ID, &c.CID); err != nil {
			return nil, fmt.Errorf("sqlite: gc candidates: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// DeleteBlocks deletes those of ids that are still unreferenced and not
// seen since cutoff, in one short transaction, and returns them.
func (db *DB) DeleteBlocks(ctx context.Context, ids []int64, cutoff time.Time) ([]metadb.Deleted, time.Duration, error) {
	if len(ids) == 0 {
		return nil, 0, nil
	}
	args := make([]any, 0, len(ids)+1)
	args = append(args, cutoff.UnixNano())
	for _, id := range ids {
		args = append(args, id)
	}
	start := time.Now()
	rows, err := db.w.QueryContext(ctx, `DELETE FROM blocks
WHERE seen_at < ? AND id IN (`+placeholders(len(ids))+`)
AND NOT EXISTS (SELECT 1 FROM refs r WHERE r.block_id = blocks.id)
RETURNING cid, data IS NULL, size, wire_size`, args...)
	if err != nil {
		return nil, time.Since(start), fmt.Errorf("sqlite: gc delete: %w", err)
	}
	var out []metadb.Deleted
	for rows.Next() {
		var d metadb.Deleted
		if err := rows.Scan(&d.CID, &d.Offloaded, &d.Size, &d.WireSize); err != nil {
			rows.Close()
			return nil, time.Since(start), fmt.Errorf("sqlite: gc delete: %w", err)
		}
		out = append(out, d)
	}
	err = rows.Close()
	held := time.Since(start)
	if err != nil {
		return nil, held, fmt.Errorf("sqlite: gc delete: %w", err)
	}
	return out, held, nil
}

// Known returns which of cids have a block row.
func (db *DB) Known(ctx context.Context, cids [][]byte) (map[string]bool, error) {
	known := map[string]bool{}
	for start := 0; start < len(cids); start += queryBatch {
		batch := cids[start:min(start+queryBatch, len(cids))]
		args := make([]any, len(batch))
		for i, c := range batch {
			args[i] = c
		}
		rows, err := db.r.QueryContext(ctx, "SELECT cid FROM blocks WHERE cid IN ("+placeholders(len(batch))+")", args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: known blocks: %w", err)
		}
		for rows.Next() {
			var c []byte
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: known blocks: %w", err)
			}
			known[string(c)] = true
		}
		rows.Close()
	}
	return known, nil
}

// PolicyRows returns every live backup.
func (db *DB) PolicyRows(ctx context.Context) ([]metadb.PolicyRow, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT id, created_at, tagset, files, bytes FROM backups WHERE deleting = 0")
	if err != nil {
		return nil, fmt.Errorf("sqlite: backups: %w", err)
	}
	defer rows.Close()
	var out []metadb.PolicyRow
	for rows.Next() {
		var r metadb.PolicyRow
		var ns int64
		if err := rows.Scan(&r.ID, &ns, &r.TagSet, &r.Files, &r.Bytes); err != nil {
			return nil, fmt.Errorf("sqlite: backups: %w", err)
		}
		r.CreatedAt = time.Unix(0, ns).UTC()
		out = append(out, r)
	}
	return out, rows.Err()
}
