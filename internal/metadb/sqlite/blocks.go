package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"ib/internal/metadb"
)

// queryBatch bounds the number of parameters of one statement.
const queryBatch = 500

// Present returns which of cids are stored and not corrupt. It reads on a
// reader connection, so a missing-query never waits for the writer; only
// rows last seen before staleBefore (unix ns) are refreshed, in one write,
// and of those only the rows still there count as present (GC may have
// removed one between the read and the write).
func (db *DB) Present(ctx context.Context, cids [][]byte, staleBefore int64) (map[string]bool, error) {
	present := make(map[string]bool, len(cids))
	if len(cids) == 0 {
		return present, nil
	}
	// One reader connection for the whole query: a statement prepared on
	// the pool is prepared again on each connection it runs on, and its
	// Close waits for every one of them to finish what it is running (50
	// clients at once: missing-queries waited seconds on each other).
	conn, err := db.r.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: blocks present: %w", err)
	}
	defer conn.Close()
	var stale [][]byte
	err = eachBatch(ctx, conn.PrepareContext, "SELECT cid, seen_at FROM blocks WHERE corrupt = 0 AND cid IN (%s)", nil, cids, func(rows *sql.Rows) error {
		var c []byte
		var seen int64
		if err := rows.Scan(&c, &seen); err != nil {
			return err
		}
		if seen < staleBefore {
			stale = append(stale, c)
		} else {
			present[string(c)] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: blocks present: %w", err)
	}
	if len(stale) == 0 {
		return present, nil
	}
	if err := db.refreshSeen(ctx, stale, present); err != nil {
		return nil, fmt.Errorf("sqlite: blocks seen: %w", err)
	}
	return present, nil
}

// refreshSeen sets the last-seen time of the rows of cids (not corrupt) in
// one transaction, and marks those it found in present.
func (db *DB) refreshSeen(ctx context.Context, cids [][]byte, present map[string]bool) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	err = eachBatch(ctx, tx.PrepareContext, "UPDATE blocks SET seen_at = ? WHERE corrupt = 0 AND cid IN (%s) RETURNING cid", []any{db.now().UnixNano()}, cids, func(rows *sql.Rows) error {
		var c []byte
		if err := rows.Scan(&c); err != nil {
			return err
		}
		present[string(c)] = true
		return nil
	})
	if err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// eachBatch runs query (whose %s becomes placeholders, after the lead
// arguments: as many as cids rounded up to a power of two, at most
// queryBatch) over cids a batch at a time, with one prepared statement for
// all the batches: the last batch is padded with a repeated CID (an IN
// list ignores it), since a parse per batch was most of the time of a
// missing-query. scan reads each row.
func eachBatch(ctx context.Context, prepare func(context.Context, string) (*sql.Stmt, error), query string, lead []any, cids [][]byte, scan func(*sql.Rows) error) error {
	// Preparing a statement of 500 placeholders cost a two-CID question
	// 0.33 ms of its 0.37 (BenchmarkMissing/small).
	width := min(queryBatch, 8)
	for width < min(len(cids), queryBatch) {
		width = min(2*width, queryBatch)
	}
	st, err := prepare(ctx, fmt.Sprintf(query, placeholders(width)))
	if err != nil {
		return err
	}
	defer st.Close()
	args := make([]any, 0, len(lead)+width)
	for start := 0; start < len(cids); start += width {
		batch := cids[start:min(start+width, len(cids))]
		args = append(args[:0], lead...)
		for _, c := range batch {
			args = append(args, c)
		}
		for len(args) < len(lead)+width {
			args = append(args, batch[0])
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			if err := scan(rows); err != nil {
				rows.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// PutBlock records a block whose bytes are stored (inline in b.Inline, or
// already durable in the block store) and reports whether the row is new.
// Recording it again only refreshes its last-seen time (and gives a block
// marked corrupt its bytes back).
func (db *DB) PutBlock(ctx context.Context, b metadb.Block) (bool, error) {
	added, err := db.PutBlocks(ctx, []metadb.Block{b})
	if err != nil {
		return false, err
	}
	return added[0], nil
}

// PutBlocks records many blocks (see PutBlock) and reports which rows are
// new. Calls made while the writer is busy are grouped into one
// transaction by the writer goroutine: uploads of many small blocks, or
// packs of them from several clients, cost one commit per group, and a
// page of the CID index that several of them touch is written once.
func (db *DB) PutBlocks(ctx context.Context, batch []metadb.Block) ([]bool, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	req := putReq{bs: batch, done: make(chan putRes, 1)}
	select {
	case db.puts <- req:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-db.closed:
		return nil, errors.New("sqlite: closed")
	}
	// Once queued the rows are written whatever happens to the request:
	// the bytes are stored, and a row for them is harmless.
	select {
	case r := <-req.done:
		return r.added, r.err
	case <-db.putsDone:
		select {
		case r := <-req.done:
			return r.added, r.err
		default:
			return nil, errors.New("sqlite: closed")
		}
	}
}

type putReq struct {
	bs   []metadb.Block
	done chan putRes
}

type putRes struct {
	added []bool
	err   error
}

// maxPutGroup bounds the rows of one grouped transaction.
const maxPutGroup = 32768

// putLoop writes queued block rows, as many per transaction as are waiting
// (up to maxPutGroup rows, or one request's rows if it has more).
func (db *DB) putLoop() {
	defer close(db.putsDone)
	for {
		var first putReq
		select {
		case first = <-db.puts:
		case <-db.closed:
			return
		}
		group := []putReq{first}
		rows := len(first.bs)
	drain:
		for rows < maxPutGroup {
			select {
			case r := <-db.puts:
				group = append(group, r)
				rows += len(r.bs)
			default:
				break drain
			}
		}
		blocks := first.bs
		if len(group) > 1 {
			blocks = make([]metadb.Block, 0, rows)
			for _, r := range group {
				blocks = append(blocks, r.bs...)
			}
		}
		added, err := db.putTx(context.Background(), blocks)
		for _, r := range group {
			if err != nil {
				r.done <- putRes{err: err}
				continue
			}
			r.done <- putRes{added: added[:len(r.bs):len(r.bs)]}
			added = added[len(r.bs):]
		}
	}
}

// putTx records blocks in one transaction.
func (db *DB) putTx(ctx context.Context, batch []metadb.Block) ([]bool, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: put block: %w", err)
	}
	defer tx.Rollback()
	now := db.now().UnixNano()
	added := make([]bool, len(batch))
	// Prepared once per transaction: parsing the statement again for each
	// row cost as much as inserting it.
	ins, err := tx.PrepareContext(ctx, `INSERT OR IGNORE INTO blocks (cid, size, wire_size, data, created_at, seen_at)
VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: put block: %w", err)
	}
	defer ins.Close()
	for i, b := range batch {
		res, err := ins.ExecContext(ctx, b.CID, b.Size, b.WireSize, b.Inline, now, now)
		if err != nil {
			return nil, fmt.Errorf("sqlite: put block: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			added[i] = true
			continue
		}
		// A block marked corrupt gets its bytes back: the caller stored
		// them (inline here, or in the block store before this call).
		if _, err := tx.ExecContext(ctx, `UPDATE blocks SET seen_at = ?,
data = CASE WHEN corrupt = 1 THEN ? ELSE data END, corrupt = 0 WHERE cid = ?`, now, b.Inline, b.CID); err != nil {
			return nil, fmt.Errorf("sqlite: put block: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: put block: %w", err)
	}
	return added, nil
}

// metadb.Block returns one block's record, with its inline bytes if it has them.
func (db *DB) Block(ctx context.Context, cid []byte) (metadb.Block, error) {
	b := metadb.Block{CID: cid}
	err := db.r.QueryRowContext(ctx, "SELECT size, wire_size, data FROM blocks WHERE cid = ?", cid).
		Scan(&b.Size, &b.WireSize, &b.Inline)
	if errors.Is(err, sql.ErrNoRows) {
		return metadb.Block{}, metadb.ErrNotFound
	}
	if err != nil {
		return metadb.Block{}, fmt.Errorf("sqlite: block: %w", err)
	}
	return b, nil
}

// InlineBlocks returns the rows of those of cids that exist, by binary CID,
// with the wire form of the inline ones.
func (db *DB) InlineBlocks(ctx context.Context, cids [][]byte) (map[string]metadb.Block, error) {
	out := make(map[string]metadb.Block, len(cids))
	if len(cids) == 0 {
		return out, nil
	}
	args := make([]any, len(cids))
	for i, c := range cids {
		args[i] = c
	}
	rows, err := db.r.QueryContext(ctx, "SELECT cid, size, wire_size, data FROM blocks WHERE cid IN ("+placeholders(len(cids))+")", args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: blocks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var b metadb.Block
		if err := rows.Scan(&b.CID, &b.Size, &b.WireSize, &b.Inline); err != nil {
			return nil, fmt.Errorf("sqlite: blocks: %w", err)
		}
		out[string(b.CID)] = b
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: blocks: %w", err)
	}
	return out, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// ScanTotals counts backups and blocks: a full scan, run once at start.
func (db *DB) ScanTotals(ctx context.Context) (metadb.Totals, error) {
	var t metadb.Totals
	err := db.r.QueryRowContext(ctx, `SELECT
 (SELECT count(*) FROM backups WHERE deleting = 0),
 (SELECT coalesce(sum(bytes), 0) FROM backups WHERE deleting = 0),
 count(*),
 coalesce(sum(data IS NOT NULL), 0),
 coalesce(sum(CASE WHEN data IS NOT NULL THEN wire_size END), 0),
 coalesce(sum(CASE WHEN data IS NULL THEN wire_size END), 0),
 coalesce(sum(size), 0)
FROM blocks`).Scan(&t.Backups, &t.LogicalBytes, &t.Blocks, &t.InlineBlocks, &t.InlineBytes, &t.OffloadedBytes, &t.UniqueBytes)
	if err != nil {
		return metadb.Totals{}, fmt.Errorf("sqlite: totals: %w", err)
	}
	t.LastBackup, err = db.LastBackups(ctx)
	return t, err
}

// LastBackups returns the time of the newest live backup of each tag set.
func (db *DB) LastBackups(ctx context.Context) (map[string]time.Time, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT tagset, max(created_at) FROM backups WHERE deleting = 0 GROUP BY tagset")
	if err != nil {
		return nil, fmt.Errorf("sqlite: last backups: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var ts string
		var ns int64
		if err := rows.Scan(&ts, &ns); err != nil {
			return nil, fmt.Errorf("sqlite: last backups: %w", err)
		}
		out[ts] = time.Unix(0, ns).UTC()
	}
	return out, rows.Err()
}

// ScrubPage returns up to limit blocks with id > after, by id.
func (db *DB) ScrubPage(ctx context.Context, after int64, limit int) ([]metadb.ScrubBlock, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT id, cid, data FROM blocks WHERE id > ? AND corrupt = 0 ORDER BY id LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: scrub: %w", err)
	}
	defer rows.Close()
	var out []metadb.ScrubBlock
	for rows.Next() {
		var b metadb.ScrubBlock
		if err := rows.Scan(&b.ID, &b.CID, &b.Inline); err != nil {
			return nil, fmt.Errorf("sqlite: scrub: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// MarkCorrupt flags a block whose bytes do not match its CID.
func (db *DB) MarkCorrupt(ctx context.Context, cid []byte) error {
	if _, err := db.w.ExecContext(ctx, "UPDATE blocks SET corrupt = 1 WHERE cid = ?", cid); err != nil {
		return fmt.Errorf("sqlite: mark corrupt: %w", err)
	}
	return nil
}
