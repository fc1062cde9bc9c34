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
	f   *os.File
	r   *manifest.Reader
	v   manifest.Validator
	cur *manifest.Entry
	eof bool
	// inodes finds the files of a cached manifest by inode (renames).
	inodes *inodeIndex
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
		return &prevManifest{f: f, r: manifest.NewReader(bufReader(body), nil), inodes: loadInodes(f)}, nil
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
	return &prevManifest{f: f, r: manifest.NewReader(bufReader(f), nil)}, nil
}

// find returns the previous entry for path, if any. Paths must be asked
// in walk order.
func (p *prevManifest) find(path string) *manifest.Entry {
	if p == nil {
		return nil
	}
	for !p.eof {
		if p.cur == nil {
			e, err := p.r.Next()
			if err != nil {
				p.eof = true // io.EOF, or a damaged manifest: reuse nothing more
				return nil
			}
			if p.v.Add(e) != nil {
				p.eof = true // not trusted past the first invalid entry
				return nil
			}
			p.cur = e
		}
		switch c := manifest.Compare(p.cur.Path, path); {
		case c < 0:
			p.cur = nil
		case c == 0:
			e := p.cur
			p.cur = nil
			return e
		default:
			return nil
		}
	}
	return nil
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
