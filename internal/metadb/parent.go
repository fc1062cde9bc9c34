package metadb

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"

	"ib/internal/block"
	"ib/internal/manifest"
)

// A commit is matched, entry by entry, against its parent: the newest live
// backup with the same tags, which is almost always the one the client
// compared the folder with. An entry at a path the parent has reuses the
// parent's name id, and a file whose block list is the parent's needs no
// block lookup: the parent's references keep its blocks stored. Those
// references are then copied whole, and the few that no entry of the new
// backup uses any more are taken out again. A backup of a million files of
// which a few changed thus looks up the blocks of the few, not of the
// million. Any backup would give the same result, only slower; the match
// only ever saves work.

// parentScan reads the parent's entries in walk order, a page at a time (no
// cursor stays open across the commit's writes).
type parentScan struct {
	st    *sql.Stmt
	id    int64
	page  []parentEntry
	at    int
	after int64 // seq of the last entry read
	done  bool
}

type parentEntry struct {
	path   string
	blocks []byte // packed, as in entries.blocks
	nameID int64  // 0 if unknown
}

const parentPage = 2048

// findParent returns the scan of the newest live backup with these tags but
// the one being committed, or nil if there is none.
func findParent(ctx context.Context, tx *sql.Tx, tags manifest.Tags, self int64, stmt func(string) (*sql.Stmt, error)) (*parentScan, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT id FROM backups WHERE tagset = ? AND deleting = 0 AND id != ?
ORDER BY created_at DESC, id DESC LIMIT 1`, tags.Canonical(), self).Scan(&id)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: commit parent: %w", err)
	}
	st, err := stmt(`SELECT seq, path, blocks, name_id FROM entries WHERE backup_id = ? AND seq > ? ORDER BY seq LIMIT ` + fmt.Sprint(parentPage))
	if err != nil {
		return nil, fmt.Errorf("sqlite: commit parent: %w", err)
	}
	return &parentScan{st: st, id: id, after: -1}, nil
}

// peek returns the parent's next entry, or nil after its last.
func (p *parentScan) peek(ctx context.Context) (*parentEntry, error) {
	if p.at < len(p.page) {
		return &p.page[p.at], nil
	}
	if p.done {
		return nil, nil
	}
	rows, err := p.st.QueryContext(ctx, p.id, p.after)
	if err != nil {
		return nil, fmt.Errorf("sqlite: commit parent: %w", err)
	}
	defer rows.Close()
	p.page, p.at = p.page[:0], 0
	for rows.Next() {
		var e parentEntry
		var nameID sql.NullInt64
		if err := rows.Scan(&p.after, &e.path, &e.blocks, &nameID); err != nil {
			return nil, fmt.Errorf("sqlite: commit parent: %w", err)
		}
		e.nameID = nameID.Int64
		p.page = append(p.page, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: commit parent: %w", err)
	}
	if len(p.page) < parentPage {
		p.done = true
	}
	if len(p.page) == 0 {
		return nil, nil
	}
	return &p.page[0], nil
}

// match advances the scan to path and returns the parent's entry there, or
// nil. Every entry passed over (the parent had it; the new backup does not)
// is handed to gone.
func (p *parentScan) match(ctx context.Context, path string, gone func(*parentEntry)) (*parentEntry, error) {
	for {
		pe, err := p.peek(ctx)
		if err != nil || pe == nil {
			return nil, err
		}
		c := manifest.Compare(pe.path, path)
		if c > 0 {
			return nil, nil
		}
		p.at++
		if c == 0 {
			return pe, nil
		}
		gone(pe)
	}
}

// goneBlocks gathers the CIDs of the parent's entries that the new
// backup dropped or changed: the references copied from the parent that may
// have to be taken out again. Past maxGone it gives up (nil set), and the
// commit looks up every block instead.
type goneBlocks struct {
	// set holds the CIDs' text: a manifest's CIDs are checked to be in the
	// one canonical text form (block.ParseCID), so text and binary forms
	// name the same blocks.
	set      map[string]struct{}
	overflow bool
}

var maxGone = 200_000 // a variable for tests

func (g *goneBlocks) add(packed []byte) error {
	if g.overflow {
		return nil
	}
	for p := packed; len(p) > 0; {
		n, k := binary.Uvarint(p)
		if k <= 0 || uint64(len(p)-k) < n {
			return fmt.Errorf("sqlite: commit parent: corrupt block list")
		}
		c, err := block.CIDFromBytes(p[k : k+int(n)])
		if err != nil {
			return fmt.Errorf("sqlite: commit parent: %w", err)
		}
		p = p[k+int(n):]
		if _, k = binary.Uvarint(p); k <= 0 {
			return fmt.Errorf("sqlite: commit parent: corrupt block list")
		}
		p = p[k:]
		if g.set == nil {
			g.set = map[string]struct{}{}
		}
		g.set[c.String()] = struct{}{}
		if len(g.set) > maxGone {
			g.set, g.overflow = nil, true
			return nil
		}
	}
	return nil
}

// seqSet is a set of entry numbers.
type seqSet []uint64

func (s *seqSet) add(seq int64) {
	for int(seq>>6) >= len(*s) {
		*s = append(*s, 0)
	}
	(*s)[seq>>6] |= 1 << (seq & 63)
}

func (s seqSet) has(seq int64) bool {
	return int(seq>>6) < len(s) && s[seq>>6]&(1<<(seq&63)) != 0
}

// drain hands every entry left in the parent to gone.
func (p *parentScan) drain(ctx context.Context, gone func(*parentEntry)) error {
	for {
		pe, err := p.peek(ctx)
		if err != nil || pe == nil {
			return err
		}
		p.at++
		gone(pe)
	}
}

// refReused records the references of the entries whose blocks are their
// parent entry's. Normally it copies the parent's references and takes out
// those of blocks that only dropped or changed entries used; when too many
// entries went for that, it looks up the reused blocks one by one.
func (b *commitBatch) refReused(ctx context.Context, parent int64, open func() (func() (*manifest.Entry, error), error), reused seqSet, gone *goneBlocks) error {
	next, err := open()
	if err != nil {
		return err
	}
	if gone.overflow {
		for seq := int64(0); ; seq++ {
			e, err := next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if !reused.has(seq) {
				continue
			}
			for _, bl := range e.Blocks {
				c, err := block.ParseCID(bl.CID)
				if err != nil {
					return err
				}
				if err := b.addCID(c.Bytes(), bl.CID, bl.Size); err != nil {
					return err
				}
			}
			if b.full() {
				if err := b.flushRefs(ctx); err != nil {
					return err
				}
			}
		}
		return b.flushRefs(ctx)
	}
	if _, err := b.tx.ExecContext(ctx, `INSERT OR IGNORE INTO refs (block_id, backup_id)
SELECT block_id, ? FROM refs WHERE backup_id = ?`, b.backup, parent); err != nil {
		return fmt.Errorf("sqlite: commit refs: %w", err)
	}
	// A block of a dropped entry stays referenced if any entry of the new
	// backup has it.
	for len(gone.set) > 0 {
		e, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		for _, bl := range e.Blocks {
			delete(gone.set, bl.CID)
		}
	}
	var unused []any
	for c := range gone.set {
		bin, err := block.ParseCID(c)
		if err != nil {
			return err
		}
		unused = append(unused, bin.Bytes())
		if len(unused) == batchCIDs {
			if err := b.unref(ctx, unused); err != nil {
				return err
			}
			unused = unused[:0]
		}
	}
	return b.unref(ctx, unused)
}

// flushRefs writes the references of the batch's blocks, which must all be
// stored.
func (b *commitBatch) flushRefs(ctx context.Context) error {
	missing, err := b.flush(ctx, nil, map[string]bool{})
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("sqlite: commit refs: block %s of the parent backup is not stored", missing[0])
	}
	return nil
}

// unref takes the references of the new backup to the blocks cids out.
func (b *commitBatch) unref(ctx context.Context, cids []any) error {
	if len(cids) == 0 {
		return nil
	}
	if _, err := b.tx.ExecContext(ctx, `DELETE FROM refs WHERE backup_id = ? AND block_id IN
(SELECT id FROM blocks WHERE cid IN (`+placeholders(len(cids))+`))`, append([]any{b.backup}, cids...)...); err != nil {
		return fmt.Errorf("sqlite: commit refs: %w", err)
	}
	return nil
}
