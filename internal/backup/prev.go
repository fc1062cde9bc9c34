package backup

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"ib/internal/apiclient"
	"ib/internal/manifest"
	"ib/internal/scan"
)

// prevManifest is the previous backup's manifest, spooled to a temporary
// file and read forward in step with the walk.
type prevManifest struct {
	f *os.File
	c *manifest.Cursor
	// inodes finds the files of a cached manifest by inode (renames).
	inodes *inodeIndex
	// est, if set, is told of every entry the cursor reads.
	est *estimate
	// stop ends the reader goroutine; done is closed when it has.
	stop, done chan struct{}
}

// prevBatch is how many entries the reader goroutine decodes at a time.
const prevBatch = 256

// prevRead is a batch of decoded entries, and the error that ended the
// manifest after them (io.EOF at its end), if any.
type prevRead struct {
	entries []*manifest.Entry
	err     error
}

// newPrev reads the entries of r. A manifest from the server is checked,
// and none of its entries past the first invalid one is trusted (a damaged
// manifest: nothing more is reused); one from the cache was written by
// this machine, checked by the server when committed, and its SHA-256 was
// checked when opened, so it is only decoded. A goroutine does that ahead
// of the walk (a fifth of a no-change backup's client CPU, which the walk
// waited for).
func newPrev(f *os.File, r *manifest.Reader, check bool) *prevManifest {
	p := &prevManifest{f: f, stop: make(chan struct{}), done: make(chan struct{})}
	reads := make(chan prevRead, 4)
	next := r.Next
	if check {
		next = manifest.Checked(r)
	}
	go p.read(next, reads)
	var cur prevRead
	p.c = manifest.NewCursor(func() (*manifest.Entry, error) {
		for len(cur.entries) == 0 {
			if cur.err != nil {
				return nil, cur.err
			}
			var ok bool
			if cur, ok = <-reads; !ok {
				return nil, io.EOF
			}
		}
		e := cur.entries[0]
		cur.entries = cur.entries[1:]
		p.est.read(e)
		return e, nil
	})
	return p
}

// read decodes the manifest into batches until it ends, fails, or close
// stops it.
func (p *prevManifest) read(next func() (*manifest.Entry, error), out chan<- prevRead) {
	defer close(p.done)
	defer close(out)
	for {
		b := prevRead{entries: make([]*manifest.Entry, 0, prevBatch)}
		for len(b.entries) < prevBatch && b.err == nil {
			e, err := next()
			if err != nil {
				b.err = err
			} else {
				b.entries = append(b.entries, e)
			}
		}
		select {
		case out <- b:
		case <-p.stop:
			return
		}
		if b.err != nil {
			return
		}
	}
}

// previous fetches the newest manifest with the same tags, or nil.
func (r *run) previous(ctx context.Context) (*prevManifest, error) {
	var s manifest.Summary
	var err error
	if r.opts.Latest != nil {
		s, err = r.opts.Latest(ctx)
	} else {
		s, err = r.api.Latest(ctx, r.opts.Tags)
	}
	if r.opts.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("previous backup: %w", err)
	}
	r.prevSummary = &s
	if r.opts.Full {
		return nil, nil
	}
	if f := r.opts.Cache.open(r.opts.Tags, s); f != nil {
		r.res.ParentID = s.ID
		body := io.MultiReader(strings.NewReader(`{"entries":[`), f, strings.NewReader(`]}`))
		p := newPrev(f, manifest.NewReader(bufReader(body), nil), false)
		p.inodes = loadInodes(f)
		return p, nil
	}
	f, err := os.CreateTemp("", "ib-previous-*")
	if err != nil {
		return nil, fmt.Errorf("previous backup: %w", err)
	}
	os.Remove(f.Name()) // unlinked: gone with the process
	if err := apiclient.SpoolManifest(ctx, r.api, s.ID, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("previous backup %d: %w", s.ID, err)
	}
	r.res.ParentID = s.ID
	return newPrev(f, manifest.NewReader(bufReader(f), nil), true), nil
}

// find returns the previous entry for path, if any. Paths must be asked
// in walk order.
func (p *prevManifest) find(path string) *manifest.Entry {
	if p == nil {
		return nil
	}
	e, _ := p.c.Find(path) // after an error: nothing more to reuse
	return e
}

func (p *prevManifest) close() {
	close(p.stop)
	<-p.done
	p.f.Close()
}

// renamed returns the blocks of a file of the previous backup with the
// item's inode, size and mtime, when the manifest cache knows them.
func (p *prevManifest) renamed(it *scan.Item, e *manifest.Entry) []manifest.Block {
	if p == nil {
		return nil
	}
	return p.inodes.find(it, e)
}
