package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

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

// batchCIDs are the blocks a stage looks up per round trip to the
// metadata store (statements, not rows, are what cost).
const batchCIDs = 500

// Transactions of a stage: each writes this many entries (gathered in
// memory first: no transaction is open while the stage waits for the
// client) or looks up this many blocks, then commits. Larger ones would
// hold the writer longer; smaller ones cost more than one big transaction
// (each commit writes every page it touched, in the names' and entries'
// indexes and the trigram index's new segment). Entries whose names the
// parent had (nothing to add to the names or their trigram index) are
// written once a quarter of this many are gathered: a backup that changed
// little then records most of itself while its manifest streams in, not
// after its last byte (no change, 10 pairs: 0.613 -> 0.575 s).
var stageTxRows = 16384 // a variable for tests

// TestingSetStageRows sets the rows of a stage's transactions (tests that
// watch a stage while it streams) and returns the undo.
func TestingSetStageRows(n int) (undo func()) {
	old := stageTxRows
	stageTxRows = n
	return func() { stageTxRows = old }
}

// commitResult is what a stage found.
type commitResult struct {
	id      int64
	existed bool
	missing []string
	reused  int64 // entries whose blocks were the parent's
}

// stager records a backup while its manifest streams in (a metadb.Stage),
// in two passes over the commit's spool.
//
// The first runs while the body arrives. Each entry is matched against the
// stage's parent: the newest live backup with the same tags, which is
// almost always the one the client compared the folder with. An entry at a
// path the parent has reuses the parent's name id, and a file whose block
// list is the parent's needs no block lookup: the stage copied the
// parent's references when it began. Entries are written in short
// transactions of a few thousand, none held while the client is slow to
// send more.
//
// The second runs once the body has ended and was found valid. It looks up
// the blocks of the entries that were not reused: every one must be stored
// and not marked corrupt, or the stage is dropped and their CIDs are
// returned (with blocks marked corrupt there is no parent, every block is
// looked up, and the corrupt ones are reported missing so that the
// client's upload heals them). It takes out the copied references that no
// entry uses any more, and one last transaction makes the backup visible.
// A backup of a million files of which a few changed thus looks up the
// blocks of the few, and little of its recording is left once its last
// byte arrives. The match only ever saves work: any parent, or none, gives
// the same backup.
type stager struct {
	meta      Committer
	touched   time.Time // the start of its last transaction
	feed      *feed
	id        int64
	tx        metadb.CommitTx // open transaction, or nil
	txRows    int             // rows and blocks written in tx
	parent    *parentScan     // nil: no parent to match
	gone      goneBlocks      // blocks of parent entries dropped or changed
	reusedSeq seqSet          // entries whose blocks are the parent's
	reused    int64
	// lastLookup and lastBlocks: the last entries with blocks not reused
	// and with any blocks (-1: none), where the second pass may stop.
	lastLookup, lastBlocks int64
	counts                 metadb.Counts
	tree                   metadb.Tree
	rows                   []metadb.EntryRow
	unnamed                int // rows whose name is new to the parent
	missing                []string
}

// stage records the backup that feed brings; tags and key are its head as
// far as known when the first entry came (Finish checks the key again).
// Whatever goes wrong, nothing becomes visible: the stage is dropped.
func stage(ctx context.Context, meta Committer, f *feed, tags manifest.Tags, key string) (res commitResult, err error) {
	st, existed, err := meta.BeginStage(ctx, metadb.Head{Tags: tags, Key: key})
	if err != nil || existed != 0 {
		return commitResult{id: existed, existed: existed != 0}, err
	}
	s := &stager{meta: meta, feed: f, id: st.ID, touched: time.Now(), lastLookup: -1, lastBlocks: -1}
	if st.Parent != 0 {
		s.parent = &parentScan{meta: meta, id: st.Parent, after: -1}
	}
	finished := false
	defer func() {
		if s.tx != nil {
			s.tx.Rollback()
		}
		if !finished {
			// A stage that cannot be dropped now is reaped once idle.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			meta.DropStage(dctx, s.id)
		}
	}()
	if err := s.entries(ctx); err != nil {
		return res, err
	}
	if err := s.refs(ctx); err != nil || len(s.missing) > 0 {
		return commitResult{missing: s.missing}, err
	}
	tx, err := s.txn(ctx)
	if err != nil {
		return res, err
	}
	existed, err = tx.Finish(ctx, s.counts, f.header())
	s.tx = nil
	if err != nil || existed != 0 {
		return commitResult{id: existed, existed: existed != 0}, err
	}
	finished = true
	return commitResult{id: s.id, reused: s.reused}, nil
}

// txn returns the open transaction, starting one if none is (which notes
// the stage as alive).
func (s *stager) txn(ctx context.Context) (metadb.CommitTx, error) {
	if s.tx == nil {
		tx, err := s.meta.StageTx(ctx, s.id)
		if err != nil {
			return nil, err
		}
		s.tx, s.txRows, s.touched = tx, 0, time.Now()
	}
	return s.tx, nil
}

// save commits the open transaction, if any.
func (s *stager) save(ctx context.Context) error {
	if s.tx == nil {
		return nil
	}
	tx := s.tx
	s.tx = nil
	return tx.Save(ctx)
}

// touch notes the stage as alive if it has not written for stageTouch: a
// stage waiting for its client, or taking entries that trickle in slower
// than it writes them, is not reaped.
func (s *stager) touch(ctx context.Context) error {
	if time.Since(s.touched) < stageTouch {
		return nil
	}
	if _, err := s.txn(ctx); err != nil {
		return err
	}
	return s.save(ctx)
}

// entries is the first pass: it reads the feed as it grows, counts and
// matches each entry, and writes the entries.
func (s *stager) entries(ctx context.Context) error {
	fr := &feedReader{ctx: ctx, f: s.feed, touch: func() error { return s.touch(ctx) }}
	er := &entryReader{r: bufio.NewReaderSize(fr, 256<<10)}
	var cids []cidPair
	err := er.each(func(seq int64, e *manifest.Entry) (err error) {
		countEntry(&s.counts, e)
		var packed []byte
		if packed, cids, err = packEntry(e, cids[:0]); err != nil {
			return err
		}
		pe, err := s.match(ctx, e.Path)
		if err != nil {
			return err
		}
		row := metadb.EntryRow{Seq: seq, Parent: s.tree.Parent(e.Path, seq, e.Type == manifest.TypeDir), Entry: e, Blocks: packed}
		reused := false
		if pe != nil {
			row.NameID = pe.NameID // same path, same name
			if reused = len(packed) > 0 && bytes.Equal(pe.Blocks, packed); reused {
				s.reusedSeq.add(seq)
				s.reused++
			} else if err := s.gone.add(pe.Blocks); err != nil {
				return err
			}
		}
		if len(packed) > 0 {
			s.lastBlocks = seq
			if !reused {
				s.lastLookup = seq
			}
		}
		if row.NameID == 0 {
			s.unnamed++
		}
		s.rows = append(s.rows, row)
		if len(s.rows) >= stageTxRows || s.unnamed == 0 && len(s.rows) >= stageTxRows/4 {
			return s.writeRows(ctx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.parent != nil {
		// What the parent has past the new backup's last entry was dropped.
		if err := s.parent.drain(ctx, s.gone.add); err != nil {
			return err
		}
	}
	return s.writeRows(ctx)
}

// match returns the parent's entry at path, or nil.
func (s *stager) match(ctx context.Context, path string) (*metadb.ParentEntry, error) {
	if s.parent == nil {
		return nil, nil
	}
	return s.parent.match(ctx, path, s.gone.add)
}

// writeRows writes the gathered rows; it commits them unless the body has
// ended and the transaction is still small.
func (s *stager) writeRows(ctx context.Context) error {
	if len(s.rows) == 0 {
		return nil
	}
	tx, err := s.txn(ctx)
	if err != nil {
		return err
	}
	if err := tx.AddEntries(ctx, s.rows); err != nil {
		return err
	}
	s.txRows += len(s.rows)
	s.rows, s.unnamed = s.rows[:0], 0
	if s.feed.ended() && s.txRows < stageTxRows {
		// The body has ended: the transaction goes on into the second
		// pass, and a small backup is recorded in one (a transaction per
		// phase cost 50 clients' small backups more waits for the writer).
		return nil
	}
	return s.save(ctx)
}

// refs is the second pass, over the spool: it references the blocks
// of the entries not reused (after the first missing one it only looks
// blocks up) and takes out the parent's references that no entry uses.
// When too many parent entries were dropped to track, it takes out all the
// references and looks up every block instead.
func (s *stager) refs(ctx context.Context) error {
	size, _, _, _ := s.feed.state()
	er := &entryReader{r: bufio.NewReaderSize(io.NewSectionReader(s.feed.file, 0, size), 256<<10)}
	all := s.gone.overflow
	if all {
		tx, err := s.txn(ctx)
		if err != nil {
			return err
		}
		if err := tx.ClearRefs(ctx); err != nil {
			return err
		}
	}
	// Past the last entry that needs a lookup, with no parent block left
	// to account for, the rest of the spool has nothing to do.
	last := s.lastLookup
	if all {
		last = s.lastBlocks
	}
	b := batch{seen: map[string]bool{}}
	var cids []cidPair
	err := er.each(func(seq int64, e *manifest.Entry) (err error) {
		if seq > last && len(s.gone.set) == 0 {
			return errEachDone
		}
		if len(s.gone.set) > 0 {
			// A block of a dropped entry stays referenced if any entry
			// of the new backup has it.
			for _, bl := range e.Blocks {
				delete(s.gone.set, bl.CID)
			}
		}
		if !all && s.reusedSeq.has(seq) {
			return nil
		}
		if _, cids, err = packEntry(e, cids[:0]); err != nil {
			return err
		}
		for _, p := range cids {
			if err := b.addCID(p); err != nil {
				return err
			}
		}
		if b.full() {
			return s.flush(ctx, &b)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.flush(ctx, &b); err != nil || len(s.missing) > 0 {
		return err
	}
	return s.dropGone(ctx)
}

// flush looks up the batch's blocks and, while none is missing, references
// them.
func (s *stager) flush(ctx context.Context, b *batch) error {
	if len(b.cids) == 0 {
		return nil
	}
	tx, err := s.txn(ctx)
	if err != nil {
		return err
	}
	n := len(b.cids)
	if s.missing, err = b.flush(ctx, tx, s.missing); err != nil {
		return err
	}
	if s.txRows += n; s.txRows >= stageTxRows && len(s.missing) == 0 {
		return s.save(ctx)
	}
	return nil
}

// dropGone takes out the references copied from the parent whose blocks
// no entry of the new backup has.
func (s *stager) dropGone(ctx context.Context) error {
	unused := make([][]byte, 0, min(len(s.gone.set), batchCIDs))
	left := len(s.gone.set)
	for text := range s.gone.set {
		bin, err := block.ParseCID(text)
		if err != nil {
			return err
		}
		unused = append(unused, bin.Bytes())
		if left--; len(unused) < batchCIDs && left > 0 {
			continue
		}
		tx, err := s.txn(ctx)
		if err != nil {
			return err
		}
		if err := tx.DropRefs(ctx, unused); err != nil {
			return err
		}
		unused = unused[:0]
	}
	return nil
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

// packEntry returns an entry's packed block list and its stored blocks
// (those not named by identity CIDs).
func packEntry(e *manifest.Entry, cids []cidPair) ([]byte, []cidPair, error) {
	var packed []byte
	for _, bl := range e.Blocks {
		c, err := block.ParseCID(bl.CID)
		if err != nil {
			return nil, nil, err
		}
		cb := c.Bytes()
		packed = metadb.AppendBlock(packed, cb, bl.Size)
		if !block.IsInline(bl.CID) { // no row to look up or reference
			cids = append(cids, cidPair{cb, bl.CID, bl.Size})
		}
	}
	return packed, cids, nil
}

// batch gathers a few hundred blocks of a stage's entries.
type batch struct {
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

func (b *batch) full() bool { return len(b.cids) >= batchCIDs }

// flush looks up the batch's blocks and, while none is missing, references
// them. It returns the missing CIDs so far.
func (b *batch) flush(ctx context.Context, tx metadb.CommitTx, missing []string) ([]string, error) {
	defer func() { b.cids, b.names, b.sizes = b.cids[:0], nil, nil }()
	found, err := tx.LookupBlocks(ctx, b.cids)
	if err != nil {
		return missing, err
	}
	ok := make(map[string]bool, len(found))
	ids := make([]int64, 0, len(found))
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
	if len(missing) > 0 || len(ids) == 0 {
		return missing, nil // the stage will be dropped
	}
	return missing, tx.AddRefs(ctx, ids)
}
