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
}

// newPrev reads the entries of r, trusting none past the first invalid
// one (a damaged manifest: nothing more is reused).
func newPrev(f *os.File, r *manifest.Reader) *prevManifest {
	p := &prevManifest{f: f}
	next := manifest.Checked(r)
	p.c = manifest.NewCursor(func() (*manifest.Entry, error) {
		e, err := next()
		if err == nil {
			p.est.read(e)
		}
		return e, err
	})
	return p
}

// previous fetches the newest manifest with the same tags, or nil.
func (r *run) previous(ctx context.Context) (*prevManifest, error) {
	s, err := r.api.Latest(ctx, r.opts.Tags)
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
		p := newPrev(f, manifest.NewReader(bufReader(body), nil))
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
	return newPrev(f, manifest.NewReader(bufReader(f), nil)), nil
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

func (p *prevManifest) close() { p.f.Close() }

// renamed returns the blocks of a file of the previous backup with the
// item's inode, size and mtime, when the manifest cache knows them.
func (p *prevManifest) renamed(it *scan.Item, e *manifest.Entry) []manifest.Block {
	if p == nil {
		return nil
	}
	return p.inodes.find(it, e)
}
