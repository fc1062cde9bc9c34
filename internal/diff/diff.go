// Package diff compares two trees in ib's walk order: two manifests (no
// block is read), or a live folder and a manifest. Both sides are read as
// streams and merged, so memory stays flat but for the files added and
// removed, which are held to pair renames (the same blocks at another
// path) and reported at the end.
package diff

import (
	"cmp"
	"io"
	"slices"
	"strings"

	"ib/internal/manifest"
)

// Op is the kind of a change, as diff prints it.
type Op string

// The changes.
const (
	Added    Op = "+"
	Removed  Op = "-"
	Modified Op = "M" // content
	Meta     Op = "m" // mode, mtime or owner only
	Retyped  Op = "T"
	Renamed  Op = "R" // the same blocks at another path
)

// Change is one line of a diff.
type Change struct {
	Op   Op            `json:"op"`
	Path string        `json:"path"`
	From string        `json:"from,omitempty"` // a rename's old path
	Type manifest.Type `json:"type"`
	Size int64         `json:"size,omitempty"`
}

// String is the change as a line: "+ path", "R old -> new".
func (c Change) String() string {
	p := c.Path
	if c.Type == manifest.TypeDir {
		p += "/"
	}
	if c.Op == Renamed {
		return string(c.Op) + " " + c.From + " -> " + p
	}
	return string(c.Op) + " " + p
}

// Source is one side of a diff: entries in walk order until io.EOF.
type Source interface {
	Next() (*manifest.Entry, error)
}

// Options of a comparison.
type Options struct {
	// Content compares two files whose size and mtime match by their
	// blocks too (a live side hashes them: see Live).
	Content func(old, cur *manifest.Entry) (same bool, err error)
}

// Compare merges old and cur and calls fn for each change, in walk order
// for changes in place, then the renames, removals and additions.
func Compare(old, cur Source, o Options, fn func(Change) error) error {
	var added, removed []*manifest.Entry
	a, err := next(old)
	if err != nil {
		return err
	}
	b, err := next(cur)
	if err != nil {
		return err
	}
	for a != nil || b != nil {
		var c int
		switch {
		case a == nil:
			c = 1
		case b == nil:
			c = -1
		default:
			c = manifest.Compare(a.Path, b.Path)
		}
		switch {
		case c < 0:
			removed = append(removed, a)
			if a, err = next(old); err != nil {
				return err
			}
		case c > 0:
			added = append(added, b)
			if b, err = next(cur); err != nil {
				return err
			}
		default:
			if ch, ok, err := change(a, b, o); err != nil {
				return err
			} else if ok {
				if err := fn(ch); err != nil {
					return err
				}
			}
			if a, err = next(old); err != nil {
				return err
			}
			if b, err = next(cur); err != nil {
				return err
			}
		}
	}
	return pairs(removed, added, fn)
}

func next(s Source) (*manifest.Entry, error) {
	e, err := s.Next()
	if err == io.EOF {
		return nil, nil
	}
	return e, err
}

// kind folds a hard link into a file: the same content under a name.
func kind(t manifest.Type) manifest.Type {
	if t == manifest.TypeHardlink {
		return manifest.TypeFile
	}
	return t
}

// change compares the entries of one path.
func change(a, b *manifest.Entry, o Options) (Change, bool, error) {
	ch := Change{Path: b.Path, Type: b.Type, Size: b.FileSize()}
	if kind(a.Type) != kind(b.Type) {
		ch.Op = Retyped
		return ch, true, nil
	}
	switch kind(b.Type) {
	case manifest.TypeSymlink:
		if a.Target != b.Target {
			ch.Op = Modified
			return ch, true, nil
		}
	case manifest.TypeFile:
		changed, err := contentChanged(a, b, o)
		if err != nil {
			return ch, false, err
		}
		if changed {
			ch.Op = Modified
			return ch, true, nil
		}
	}
	meta := a.Mode != b.Mode || a.UID != b.UID || a.GID != b.GID
	if b.Type != manifest.TypeDir && !a.MTime.Equal(b.MTime) {
		meta = true // a folder's mtime moves with every file made in it: not reported
	}
	if meta {
		ch.Op = Meta
		return ch, true, nil
	}
	return ch, false, nil
}

// contentChanged compares two files' content: by their blocks when both
// sides have them (two manifests), else (a live file, not read) by size
// and mtime, and by Options.Content when those match.
func contentChanged(a, b *manifest.Entry, o Options) (bool, error) {
	switch {
	case a.FileSize() != b.FileSize():
		return true, nil
	case a.FileSize() == 0:
		return false, nil
	case len(a.Blocks) > 0 && len(b.Blocks) > 0:
		return !slices.Equal(a.Blocks, b.Blocks), nil
	case !a.MTime.Equal(b.MTime):
		return true, nil
	case o.Content != nil:
		same, err := o.Content(a, b)
		return !same, err
	}
	return false, nil
}

// blockKey names a file's content by its block list.
func blockKey(e *manifest.Entry) string {
	var sb strings.Builder
	for _, b := range e.Blocks {
		sb.WriteString(b.CID)
		sb.WriteByte(',')
	}
	return sb.String()
}

// pairs reports removed and added paths, pairing files of the same
// non-empty content as renames.
func pairs(removed, added []*manifest.Entry, fn func(Change) error) error {
	gone := map[string][]*manifest.Entry{}
	for _, e := range removed {
		if kind(e.Type) == manifest.TypeFile && len(e.Blocks) > 0 {
			gone[blockKey(e)] = append(gone[blockKey(e)], e)
		}
	}
	renamed := map[*manifest.Entry]bool{}
	var out []Change
	for _, e := range added {
		if kind(e.Type) == manifest.TypeFile && len(e.Blocks) > 0 {
			if olds := gone[blockKey(e)]; len(olds) > 0 {
				gone[blockKey(e)] = olds[1:]
				renamed[olds[0]] = true
				out = append(out, Change{Op: Renamed, Path: e.Path, From: olds[0].Path, Type: e.Type, Size: e.FileSize()})
				continue
			}
		}
		out = append(out, Change{Op: Added, Path: e.Path, Type: e.Type, Size: e.FileSize()})
	}
	for _, e := range removed {
		if !renamed[e] {
			out = append(out, Change{Op: Removed, Path: e.Path, Type: e.Type, Size: e.FileSize()})
		}
	}
	slices.SortStableFunc(out, func(x, y Change) int {
		return cmp.Or(manifest.Compare(x.Path, y.Path), strings.Compare(string(x.Op), string(y.Op)))
	})
	for _, c := range out {
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}
