package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"ib/internal/ignore"
	"ib/internal/manifest"
)

// A hard link entry is made a link to its target when the target is
// restored too (it comes earlier in walk order): after every file is
// written, so the link shares the finished file. A link whose target is
// outside --path (or cannot be restored here) is written as a file of its
// own from its entry's blocks.

// hardLink is a link to make once every file is written.
type hardLink struct{ path, target string }

// linkable reports whether a hard link entry can be made a link here.
func (r *run) linkable(e *manifest.Entry) bool {
	return manifest.Within(e.Target, r.opts.Sub) && localName(e.Target) == nil
}

// makeLinks makes the hard links, each to its restored target. A name
// that is already a link to the target (an interrupted run) is kept.
func (r *run) makeLinks() error {
	for _, l := range r.links {
		tfi, err := r.root.Lstat(l.target)
		if err != nil {
			return fmt.Errorf("restore %s: link to %s: %w", l.path, l.target, err)
		}
		if !tfi.Mode().IsRegular() {
			return fmt.Errorf("restore %s: link to %s: not a restored file", l.path, l.target)
		}
		fi, err := r.root.Lstat(l.path)
		switch {
		case err == nil && os.SameFile(fi, tfi):
			r.res.Files++
			continue
		case err == nil:
			if err := r.clear(l.path); err != nil {
				return err
			}
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("restore %s: %w", l.path, err)
		}
		if err := r.root.Link(l.target, l.path); err != nil {
			return fmt.Errorf("restore %s: link to %s: %w", l.path, l.target, err)
		}
		r.res.Files++
	}
	return nil
}

// keep reports whether DEST keeps what it has at e's path: a protected
// path that exists there.
func (r *run) keep(e *manifest.Entry) bool {
	if r.fresh || !protected(r.opts.Protected, e.Path) {
		return false
	}
	if _, err := r.root.Lstat(e.Path); err != nil {
		return false // nothing there to protect
	}
	if r.res.ProtectedCount++; len(r.res.Protected) < 100 {
		r.res.Protected = append(r.res.Protected, e.Path)
	}
	r.opts.Log.Warn("protected file kept as it is in DEST (--overwrite-protected replaces it)", "path", e.Path)
	return true
}

// protected reports whether path or a folder above it matches one of pats.
func protected(pats []*ignore.Pattern, path string) bool {
	if len(pats) == 0 {
		return false // the common case: no preset, nothing to match per entry
	}
	isDir := false
	for p := path; p != "."; p, isDir = manifest.Parent(p), true {
		if m := ignore.MatchAny(pats, p, isDir); m != nil {
			return !m.Negative()
		}
	}
	return false
}
