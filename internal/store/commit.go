package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"ib/internal/block"
	"ib/internal/manifest"
	"ib/internal/metadb"
)

// MaxMissingReported bounds the CIDs a refused commit reports; the client
// uploads them and commits again, learning of any others then.
const MaxMissingReported = 100_000

// errSizeMismatch is a manifest that gives a block another size than the
// stored block's: downloads of its file would break.
var errSizeMismatch = errors.New("block size does not match the stored block")

// Batch sizes of a commit: entries and CIDs per round trip to the
// metadata store (statements, not rows, are what cost).
const (
	batchEntries = 256
	batchCIDs    = 500
)

// entryOpener returns a reader of a manifest's entries, already validated,
// from the first until io.EOF; a commit may open it more than once.
type entryOpener func() (func() (*manifest.Entry, error), error)

// commitResult is what record found.
type commitResult struct {
	id      int64
	existed bool
	missing []string
	reused  int64 // entries whose blocks were the parent's
}

// record writes a backup in one transaction of the metadata store. Every
// block an entry names must be stored and not marked corrupt: if some are
// not, nothing is recorded and their CIDs are returned.
//
// A commit is matched, entry by entry, against its parent: the newest live
// backup with the same tags, which is almost always the one the client
// compared the folder with. An entry at a path the parent has reuses the
// parent's name id, and a file whose block list is the parent's needs no
// block lookup: the parent's references keep its blocks stored. Those
// references are then copied whole, and the few that no entry of the new
// backup uses any more are taken out again. A backup of a million files of
// which a few changed thus looks up the blocks of the few, not of the
// million. Any backup would give the same result, only slower; the match
// only ever saves work. With blocks marked corrupt, every block is looked up
// (and the corrupt ones are reported missing, so the client's upload heals
// them).
func record(ctx context.Context, meta Committer, h metadb.Head, open entryOpener) (res commitResult, err error) {
	tx, id, existed, err := meta.BeginCommit(ctx, h)
	if err != nil || existed {
		return commitResult{id: id, existed: existed}, err
	}
	defer tx.Rollback() // a no-op after Finish
	c := &committer{tx: tx, batch: batch{tx: tx, seen: map[string]bool{}}}
	corrupt, err := tx.AnyCorrupt(ctx)
	if err != nil {
		return res, err
	}
	if !corrupt {
		parent, err := tx.Parent(ctx, h.Tags)
		if err != nil {
			return res, err
		}
		if parent != 0 {
			c.parent = &parentScan{tx: tx, id: parent, after: -1}
		}
	}
	counts, err := c.entries(ctx, open)
	if err != nil || len(c.missing) > 0 {
		return commitResult{missing: c.missing}, err
	}
	if c.anyReused {
		if err := c.refReused(ctx, open); err != nil {
			return res, err
		}
	}
	if err := tx.Finish(ctx, counts); err != nil {
		return res, err
	}
	return commitResult{id: id, reused: c.reused}, nil
}

// committer is one commit's pass over its entries.
type committer struct {
	tx        metadb.CommitTx
	batch     batch
	parent    *parentScan // nil: no parent to match
	gone      goneBlocks  // blocks of parent entries dropped or changed
	reusedSeq seqSet      // entries whose blocks are the parent's
	anyReused bool
	reused    int64
	missing   []string
}

// entries passes over the manifest once: it counts, matches each entry with
// the parent's, and writes entries and references in batches while no block
// is missing (after the first missing one it only looks up blocks).
func (c *committer) entries(ctx context.Context, open entryOpener) (metadb.Counts, error) {
	var n metadb.Counts
	var tree metadb.Tree
	next, err := open()
	if err != nil {
		return n, err
	}
	var cids []cidPair
	for seq := int64(0); ; seq++ {
		e, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		countEntry(&n, e)
		var packed []byte
		if packed, cids, err = packEntry(e, cids[:0]); err != nil {
			return n, err
		}
		pe, err := c.match(ctx, e.Path)
		if err != nil {
			return n, err
		}
		if pe != nil && len(packed) > 0 && bytes.Equal(pe.Blocks, packed) {
			c.reusedSeq.add(seq)
			c.anyReused = true
			c.reused++
		} else {
			if pe != nil {
				if err := c.gone.add(pe.Blocks); err != nil {
					return n, err
				}
			}
			for _, p := range cids {
				if err := c.batch.addCID(p); err != nil {
					return n, err
				}
			}
		}
		if len(c.missing) == 0 {
			row := metadb.EntryRow{Seq: seq, Parent: tree.Parent(e.Path, seq, e.Type == manifest.TypeDir), Entry: e, Blocks: packed}
			if pe != nil {
				row.NameID = pe.NameID // same path, same name
			}
			c.batch.rows = append(c.batch.rows, row)
		}
		if c.batch.full() {
			if err := c.flush(ctx); err != nil {
				return n, err
			}
		}
	}
	if c.parent != nil {
		// What the parent has past the new backup's last entry was dropped.
		if err := c.parent.drain(ctx, c.gone.add); err != nil {
			return n, err
		}
	}
	return n, c.flush(ctx)
}

// match returns the parent's entry at path, or nil.
func (c *committer) match(ctx context.Context, path string) (*metadb.ParentEntry, error) {
	if c.parent == nil {
		return nil, nil
	}
	return c.parent.match(ctx, path, c.gone.add)
}

func (c *committer) flush(ctx context.Context) (err error) {
	c.missing, err = c.batch.flush(ctx, c.missing)
	return err
}

func countEntry(n *metadb.Counts, e *manifest.Entry) {
	n.Entries++
	switch e.Type {
	case manifest.TypeDir:
		n.Dirs++
	case manifest.TypeSymlink:
		n.Symlinks++
	case manifest.TypeFile, manifest.TypeHardlink:
		n.Files++
		n.Bytes += e.Size
	}
}

// cidPair is a block of an entry in both its forms.
type cidPair struct {
	bin  []byte
	text string
	size int64
}

// packEntry returns an entry's packed block list and its blocks.
func packEntry(e *manifest.Entry, cids []cidPair) ([]byte, []cidPair, error) {
	var packed []byte
	for _, bl := range e.Blocks {
		c, err := block.ParseCID(bl.CID)
		if err != nil {
			return nil, nil, err
		}
		cb := c.Bytes()
		packed = metadb.AppendBlock(packed, cb, bl.Size)
		cids = append(cids, cidPair{cb, bl.CID, bl.Size})
	}
	return packed, cids, nil
}

// batch gathers a few hundred entries of a commit and their blocks.
type batch struct {
	tx    metadb.CommitTx
	rows  []metadb.EntryRow
	cids  [][]byte
	names map[string]string // binary CID → its text
	sizes map[string]int64  // binary CID → the size the manifest gives it
	seen  map[string]bool   // CIDs already reported missing
}

func (b *batch) addCID(p cidPair) error {
	if b.names == nil {
		b.names, b.sizes = map[string]string{}, map[string]int64{}
	}
	if _, dup := b.names[string(p.bin)]; dup {
		if b.sizes[string(p.bin)] != p.size {
			return fmt.Errorf("%w: block %s given as %d and %d bytes", errSizeMismatch, p.text, b.sizes[string(p.bin)], p.size)
		}
		return nil
	}
	b.names[string(p.bin)] = p.text
	b.sizes[string(p.bin)] = p.size
	b.cids = append(b.cids, p.bin)
	return nil
}

func (b *batch) full() bool {
	return len(b.rows) >= batchEntries || len(b.cids) >= batchCIDs
}

// flush checks the batch's blocks and, while none is missing, writes its
// entries and references. It returns the missing CIDs so far.
func (b *batch) flush(ctx context.Context, missing []string) ([]string, error) {
	defer func() { b.rows, b.cids, b.names, b.sizes = b.rows[:0], b.cids[:0], nil, nil }()
	var ids []int64
	if len(b.cids) > 0 {
		found, err := b.tx.LookupBlocks(ctx, b.cids)
		if err != nil {
			return missing, err
		}
		ok := make(map[string]bool, len(found))
		ids = make([]int64, 0, len(found))
		for _, r := range found {
			if r.Corrupt {
				continue // reported missing: the client's upload heals it
			}
			if want := b.sizes[string(r.CID)]; want != r.Size {
				return missing, fmt.Errorf("%w: block %s is %d bytes, the manifest says %d", errSizeMismatch, b.names[string(r.CID)], r.Size, want)
			}
			ok[string(r.CID)] = true
			ids = append(ids, r.ID)
		}
		for _, c := range b.cids {
			text := b.names[string(c)]
			if !ok[string(c)] && !b.seen[text] && len(missing) < MaxMissingReported {
				b.seen[text] = true
				missing = append(missing, text)
			}
		}
	}
	if len(missing) > 0 {
		return missing, nil // the transaction will be rolled back
	}
	if len(b.rows) > 0 {
		if err := b.tx.AddEntries(ctx, b.rows); err != nil {
			return missing, err
		}
	}
	if len(ids) > 0 {
		if err := b.tx.AddRefs(ctx, ids); err != nil {
			return missing, err
		}
	}
	return missing, nil
}

// refReused records the references of the entries whose blocks are their
// parent entry's. Normally it copies the parent's references and takes out
// those of blocks that only dropped or changed entries used; when too many
// entries went for that, it looks up the reused blocks again.
func (c *committer) refReused(ctx context.Context, open entryOpener) error {
	next, err := open()
	if err != nil {
		return err
	}
	if c.gone.overflow {
		return c.lookUpReused(ctx, next)
	}
	if err := c.tx.CopyRefs(ctx, c.parent.id); err != nil {
		return err
	}
	// A block of a dropped entry stays referenced if any entry of the new
	// backup has it.
	for len(c.gone.set) > 0 {
		e, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		for _, bl := range e.Blocks {
			delete(c.gone.set, bl.CID)
		}
	}
	unused := make([][]byte, 0, min(len(c.gone.set), batchCIDs))
	for text := range c.gone.set {
		bin, err := block.ParseCID(text)
		if err != nil {
			return err
		}
		unused = append(unused, bin.Bytes())
		if len(unused) == batchCIDs {
			if err := c.tx.DropRefs(ctx, unused); err != nil {
				return err
			}
			unused = unused[:0]
		}
	}
	if len(unused) == 0 {
		return nil
	}
	return c.tx.DropRefs(ctx, unused)
}

// lookUpReused references the blocks of the reused entries by looking
// each up: the way when too many parent entries were dropped to track.
func (c *committer) lookUpReused(ctx context.Context, next func() (*manifest.Entry, error)) error {
	for seq := int64(0); ; seq++ {
		e, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if !c.reusedSeq.has(seq) {
			continue
		}
		_, cids, err := packEntry(e, nil)
		if err != nil {
			return err
		}
		for _, p := range cids {
			if err := c.batch.addCID(p); err != nil {
				return err
			}
		}
		if c.batch.full() {
			if err := c.flushRefs(ctx); err != nil {
				return err
			}
		}
	}
	return c.flushRefs(ctx)
}

// flushRefs writes the references of the batch's blocks, which must all be
// stored.
func (c *committer) flushRefs(ctx context.Context) error {
	missing, err := c.batch.flush(ctx, nil)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("commit refs: block %s of the parent backup is not stored", missing[0])
	}
	return nil
}
