package metadb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Block is one stored block.
type Block struct {
	CID      []byte // binary CID
	Size     int64  // uncompressed
	WireSize int64
	Inline   []byte // the wire form when kept in SQLite; nil when in the block store
}

// queryBatch bounds the number of parameters of one statement.
const queryBatch = 500

// Present returns which of cids are stored, and refreshes their last-seen
// time so that garbage collection spares a block a client was just told
// it need not upload.
func (db *DB) Present(ctx context.Context, cids [][]byte) (map[string]bool, error) {
	present := make(map[string]bool, len(cids))
	now := db.now().UnixNano()
	for start := 0; start < len(cids); start += queryBatch {
		batch := cids[start:min(start+queryBatch, len(cids))]
		args := make([]any, 0, len(batch)+1)
		args = append(args, now)
		for _, c := range batch {
			args = append(args, c)
		}
		q := "UPDATE blocks SET seen_at = ? WHERE cid IN (" + placeholders(len(batch)) + ") RETURNING cid"
		rows, err := db.w.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("sqlite: blocks present: %w", err)
		}
		for rows.Next() {
			var c []byte
			if err := rows.Scan(&c); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlite: blocks present: %w", err)
			}
			present[string(c)] = true
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("sqlite: blocks present: %w", err)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlite: blocks present: %w", err)
		}
	}
	return present, nil
}

// PutBlock records a block whose bytes are stored (inline in b.Inline, or
// already durable in the block store). Recording it again only refreshes its
// last-seen time.
func (db *DB) PutBlock(ctx context.Context, b Block) error {
	now := db.now().UnixNano()
	_, err := db.w.ExecContext(ctx, `
INSERT INTO blocks (cid, size, wire_size, data, created_at, seen_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (cid) DO UPDATE SET seen_at = excluded.seen_at`,
		b.CID, b.Size, b.WireSize, b.Inline, now, now)
	if err != nil {
		return fmt.Errorf("sqlite: put block: %w", err)
	}
	return nil
}

// Block returns one block's record, with its inline bytes if it has them.
func (db *DB) Block(ctx context.Context, cid []byte) (Block, error) {
	b := Block{CID: cid}
	err := db.r.QueryRowContext(ctx, "SELECT size, wire_size, data FROM blocks WHERE cid = ?", cid).
		Scan(&b.Size, &b.WireSize, &b.Inline)
	if errors.Is(err, sql.ErrNoRows) {
		return Block{}, ErrNotFound
	}
	if err != nil {
		return Block{}, fmt.Errorf("sqlite: block: %w", err)
	}
	return b, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// Stats are the server's counts and sizes.
type Stats struct {
	Backups      int64 `json:"backups"`
	Blocks       int64 `json:"blocks"`
	InlineBlocks int64 `json:"inline_blocks"`
	InlineBytes  int64 `json:"inline_bytes"`  // wire bytes kept in SQLite
	StoredBytes  int64 `json:"stored_bytes"`  // wire bytes in the block store
	LogicalBytes int64 `json:"logical_bytes"` // uncompressed bytes of all blocks
}

// Stats counts backups and blocks.
func (db *DB) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := db.r.QueryRowContext(ctx, `SELECT
 (SELECT count(*) FROM backups WHERE deleting = 0),
 count(*),
 coalesce(sum(data IS NOT NULL), 0),
 coalesce(sum(CASE WHEN data IS NOT NULL THEN wire_size END), 0),
 coalesce(sum(CASE WHEN data IS NULL THEN wire_size END), 0),
 coalesce(sum(size), 0)
FROM blocks`).Scan(&s.Backups, &s.Blocks, &s.InlineBlocks, &s.InlineBytes, &s.StoredBytes, &s.LogicalBytes)
	if err != nil {
		return Stats{}, fmt.Errorf("sqlite: stats: %w", err)
	}
	return s, nil
}
