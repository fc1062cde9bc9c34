package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"ib/internal/metadb"
)

// Present returns which of cids are stored and not corrupt: one `= ANY`
// SELECT over the CIDs in order, which writes nothing; only rows last seen
// before staleBefore (unix ns) are refreshed, in one UPDATE, and of those
// only the rows still there count as present. (The UPDATE of every row
// asked about made a 10,000-CID query 134 ms instead of 49 ms.)
func (db *DB) Present(ctx context.Context, cids [][]byte, staleBefore int64) (map[string]bool, error) {
	present := make(map[string]bool, len(cids))
	if len(cids) == 0 {
		return present, nil
	}
	sorted := slices.Clone(cids)
	slices.SortFunc(sorted, bytes.Compare)
	rows, err := db.pool.Query(ctx, "SELECT cid, seen_at FROM blocks WHERE cid = ANY($1) AND NOT corrupt", sorted)
	if err != nil {
		return nil, fmt.Errorf("postgres: blocks present: %w", err)
	}
	type seenRow struct {
		CID  []byte
		Seen int64
	}
	found, err := pgx.CollectRows(rows, pgx.RowToStructByPos[seenRow])
	if err != nil {
		return nil, fmt.Errorf("postgres: blocks present: %w", err)
	}
	var stale [][]byte
	for _, r := range found {
		if r.Seen < staleBefore {
			stale = append(stale, r.CID)
		} else {
			present[string(r.CID)] = true
		}
	}
	if len(stale) == 0 {
		return present, nil
	}
	rows, err = db.pool.Query(ctx, "UPDATE blocks SET seen_at = $1 WHERE cid = ANY($2) AND NOT corrupt RETURNING cid", db.now().UnixNano(), stale)
	if err != nil {
		return nil, fmt.Errorf("postgres: blocks present: %w", err)
	}
	refreshed, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("postgres: blocks present: %w", err)
	}
	for _, c := range refreshed {
		present[string(c)] = true
	}
	return present, nil
}

// PutBlocks records blocks in one statement. The rows go in CID order and
// once each, so that two servers recording overlapping packs lock rows in
// the same order (no deadlock) and no row is touched twice.
func (db *DB) PutBlocks(ctx context.Context, batch []metadb.Block) ([]bool, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	order := make([]int, len(batch))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return bytes.Compare(batch[a].CID, batch[b].CID) })
	var cids, data [][]byte
	var sizes, wire []int64
	for k, i := range order {
		if k > 0 && bytes.Equal(batch[i].CID, batch[order[k-1]].CID) {
			continue
		}
		b := batch[i]
		cids, data = append(cids, b.CID), append(data, b.Inline)
		sizes, wire = append(sizes, b.Size), append(wire, b.WireSize)
	}
	now := db.now().UnixNano()
	// xmax = 0 tells a row inserted by this statement from one updated.
	rows, err := db.pool.Query(ctx, `INSERT INTO blocks (cid, size, wire_size, data, created_at, seen_at)
SELECT c, s, w, d, $5, $5 FROM unnest($1::bytea[], $2::bigint[], $3::bigint[], $4::bytea[]) AS t(c, s, w, d)
ON CONFLICT (cid) DO UPDATE SET seen_at = EXCLUDED.seen_at,
	data = CASE WHEN blocks.corrupt THEN EXCLUDED.data ELSE blocks.data END, corrupt = false
RETURNING cid, xmax = 0`, cids, sizes, wire, data, now)
	if err != nil {
		return nil, fmt.Errorf("postgres: put blocks: %w", err)
	}
	defer rows.Close()
	inserted := make(map[string]bool, len(cids))
	for rows.Next() {
		var c []byte
		var ins bool
		if err := rows.Scan(&c, &ins); err != nil {
			return nil, fmt.Errorf("postgres: put blocks: %w", err)
		}
		inserted[string(c)] = ins
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: put blocks: %w", err)
	}
	added := make([]bool, len(batch))
	for i, b := range batch {
		if inserted[string(b.CID)] {
			added[i] = true
			delete(inserted, string(b.CID)) // a repeated block is new once
		}
	}
	return added, nil
}

// Block returns one block's row, with its inline bytes if it has them.
func (db *DB) Block(ctx context.Context, cid []byte) (metadb.Block, error) {
	b := metadb.Block{CID: cid}
	err := db.pool.QueryRow(ctx, "SELECT size, wire_size, data FROM blocks WHERE cid = $1", cid).Scan(&b.Size, &b.WireSize, &b.Inline)
	if errors.Is(err, pgx.ErrNoRows) {
		return metadb.Block{}, metadb.ErrNotFound
	}
	if err != nil {
		return metadb.Block{}, fmt.Errorf("postgres: block: %w", err)
	}
	return b, nil
}

// InlineBlocks returns the rows of those of cids that exist.
func (db *DB) InlineBlocks(ctx context.Context, cids [][]byte) (map[string]metadb.Block, error) {
	out := make(map[string]metadb.Block, len(cids))
	if len(cids) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, "SELECT cid, size, wire_size, data FROM blocks WHERE cid = ANY($1)", cids)
	if err != nil {
		return nil, fmt.Errorf("postgres: blocks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b metadb.Block
		if err := rows.Scan(&b.CID, &b.Size, &b.WireSize, &b.Inline); err != nil {
			return nil, fmt.Errorf("postgres: blocks: %w", err)
		}
		out[string(b.CID)] = b
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: blocks: %w", err)
	}
	return out, nil
}

// Known returns which of cids have a row.
func (db *DB) Known(ctx context.Context, cids [][]byte) (map[string]bool, error) {
	known := map[string]bool{}
	if len(cids) == 0 {
		return known, nil
	}
	rows, err := db.pool.Query(ctx, "SELECT cid FROM blocks WHERE cid = ANY($1)", cids)
	if err != nil {
		return nil, fmt.Errorf("postgres: known blocks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c []byte
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("postgres: known blocks: %w", err)
		}
		known[string(c)] = true
	}
	return known, rows.Err()
}

// MarkCorrupt flags a block whose bytes do not match its CID.
func (db *DB) MarkCorrupt(ctx context.Context, cid []byte) error {
	if _, err := db.pool.Exec(ctx, "UPDATE blocks SET corrupt = true WHERE cid = $1", cid); err != nil {
		return fmt.Errorf("postgres: mark corrupt: %w", err)
	}
	return nil
}

// ScrubPage returns up to limit blocks with id > after, by id.
func (db *DB) ScrubPage(ctx context.Context, after int64, limit int) ([]metadb.ScrubBlock, error) {
	rows, err := db.pool.Query(ctx, "SELECT id, cid, data FROM blocks WHERE id > $1 AND NOT corrupt ORDER BY id LIMIT $2", after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: scrub: %w", err)
	}
	defer rows.Close()
	var out []metadb.ScrubBlock
	for rows.Next() {
		var b metadb.ScrubBlock
		if err := rows.Scan(&b.ID, &b.CID, &b.Inline); err != nil {
			return nil, fmt.Errorf("postgres: scrub: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// ScanTotals counts backups and blocks: a full scan.
func (db *DB) ScanTotals(ctx context.Context) (metadb.Totals, error) {
	var t metadb.Totals
	err := db.pool.QueryRow(ctx, `SELECT
 (SELECT count(*) FROM backups WHERE NOT deleting),
 (SELECT coalesce(sum(bytes), 0) FROM backups WHERE NOT deleting)::bigint,
 count(*),
 count(data),
 coalesce(sum(wire_size) FILTER (WHERE data IS NOT NULL), 0)::bigint,
 coalesce(sum(wire_size) FILTER (WHERE data IS NULL), 0)::bigint,
 coalesce(sum(size), 0)::bigint
FROM blocks`).Scan(&t.Backups, &t.LogicalBytes, &t.Blocks, &t.InlineBlocks, &t.InlineBytes, &t.OffloadedBytes, &t.UniqueBytes)
	if err != nil {
		return metadb.Totals{}, fmt.Errorf("postgres: totals: %w", err)
	}
	t.LastBackup, err = db.LastBackups(ctx)
	return t, err
}

// LastBackups returns the time of the newest live backup of each tag set.
func (db *DB) LastBackups(ctx context.Context) (map[string]time.Time, error) {
	rows, err := db.pool.Query(ctx, "SELECT tagset, max(created_at) FROM backups WHERE NOT deleting GROUP BY tagset")
	if err != nil {
		return nil, fmt.Errorf("postgres: last backups: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var ts string
		var ns int64
		if err := rows.Scan(&ts, &ns); err != nil {
			return nil, fmt.Errorf("postgres: last backups: %w", err)
		}
		out[ts] = time.Unix(0, ns).UTC()
	}
	return out, rows.Err()
}
