package store

import (
	"context"
	"fmt"

	"ib/internal/block"
	"ib/internal/manifest"
	"ib/internal/metadb"
)

// parentScan reads the parent's entries in walk order, a page at a time (no
// cursor stays open across the commit's writes).
type parentScan struct {
	meta  Committer
	id    int64
	page  []metadb.ParentEntry
	at    int
	after int64 // seq of the last entry read
	done  bool
}

const parentPage = 2048

// peek returns the parent's next entry, or nil after its last.
func (p *parentScan) peek(ctx context.Context) (*metadb.ParentEntry, error) {
	if p.at < len(p.page) {
		return &p.page[p.at], nil
	}
	if p.done {
		return nil, nil
	}
	page, err := p.meta.ParentEntries(ctx, p.id, p.after, parentPage)
	if err != nil {
		return nil, err
	}
	p.page, p.at = page, 0
	if len(page) < parentPage {
		p.done = true
	}
	if len(page) == 0 {
		return nil, nil
	}
	p.after = page[len(page)-1].Seq
	return &p.page[0], nil
}

// match advances the scan to path and returns the parent's entry there, or
// nil. Every entry passed over (the parent had it; the new backup does not)
// is handed to gone.
func (p *parentScan) match(ctx context.Context, path string, gone func([]byte) error) (*metadb.ParentEntry, error) {
	for {
		pe, err := p.peek(ctx)
		if err != nil || pe == nil {
			return nil, err
		}
		c := manifest.Compare(pe.Path, path)
		if c > 0 {
			return nil, nil
		}
		p.at++
		if c == 0 {
			return pe, nil
		}
		if err := gone(pe.Blocks); err != nil {
			return nil, err
		}
	}
}

// drain hands every entry left in the parent to gone.
func (p *parentScan) drain(ctx context.Context, gone func([]byte) error) error {
	for {
		pe, err := p.peek(ctx)
		if err != nil || pe == nil {
			return err
		}
		p.at++
		if err := gone(pe.Blocks); err != nil {
			return err
		}
	}
}

// goneBlocks gathers the CIDs of the parent's entries that the new
// backup dropped or changed: the references copied from the parent that may
// have to be taken out again. Past maxGone it gives up (nil set), and the
// commit looks up every reused block instead.
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
		bin, _, rest, err := metadb.NextBlock(p)
		if err != nil {
			return fmt.Errorf("commit parent: %w", err)
		}
		c, err := block.CIDFromBytes(bin)
		if err != nil {
			return fmt.Errorf("commit parent: %w", err)
		}
		p = rest
		text := c.String()
		if block.IsInline(text) {
			continue // no reference to take out
		}
		if g.set == nil {
			g.set = map[string]struct{}{}
		}
		g.set[text] = struct{}{}
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

// TestingSetMaxGone lowers the dropped blocks a commit tracks (tests of
// the overflow path) and returns the undo.
func TestingSetMaxGone(n int) (undo func()) {
	old := maxGone
	maxGone = n
	return func() { maxGone = old }
}
