// Package scan walks a folder as a stream, in ib's walk order: the folder
// itself first as ".", then depth-first, siblings sorted by name bytewise.
// It never holds more than the entries of the directories on the current
// path. It reports directories, regular files and symlinks (not followed),
// skips sockets, devices and named pipes (counting them), and asks an
// Ignorer which paths to leave out; an ignored directory is not read.
package scan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"ib/internal/manifest"
)

// Item is one path met by the walk.
type Item struct {
	Path   string // manifest path: slash-separated, relative, "." for the root
	Abs    string // path on this machine
	Type   manifest.Type
	Info   fs.FileInfo // from lstat
	Target string      // symlink target
}

// Entry returns the manifest entry for the item, without blocks.
func (it *Item) Entry() manifest.Entry {
	e := manifest.Entry{
		Path:  it.Path,
		Type:  it.Type,
		Mode:  manifest.ModeFromFS(it.Info.Mode()),
		MTime: it.Info.ModTime().UTC(),
	}
	e.UID, e.GID = owner(it.Info)
	switch it.Type {
	case manifest.TypeFile:
		e.Size = it.Info.Size()
	case manifest.TypeSymlink:
		e.Target = it.Target
	}
	return e
}

// Ignorer decides which paths the walk leaves out. The walk calls
// EnterDir for each directory it reads (before Ignored is asked about its
// children) and LeaveDir when done with it.
type Ignorer interface {
	EnterDir(path, abs string) error
	LeaveDir(path string)
	Ignored(path string, isDir bool) bool
}

// NoIgnore keeps everything.
type NoIgnore struct{}

func (NoIgnore) EnterDir(string, string) error { return nil }
func (NoIgnore) LeaveDir(string)               {}
func (NoIgnore) Ignored(string, bool) bool     { return false }

// Stats counts what the walk left out.
type Stats struct {
	Special    int64    // sockets, devices, named pipes
	Ignored    int64    // paths left out by the Ignorer
	Unstorable []string // names a manifest cannot hold (e.g. with a backslash)
	// OtherFS are the mount points not descended into (OneFileSystem).
	OtherFS []string
}

// Options of a walk.
type Options struct {
	Ignore Ignorer // nil keeps everything
	Stats  *Stats  // may be nil
	// OneFileSystem keeps the walk on the root's filesystem: a directory
	// on another one (a mount point) is reported, empty.
	OneFileSystem bool
	// TypesOnly walks names and types only, from the directory listing:
	// Items carry no Info and no Target (what --delete needs, without a
	// stat per file).
	TypesOnly bool
}

// Walk calls fn for every item under root in walk order. An error from fn
// stops the walk and is returned.
func Walk(ctx context.Context, root string, o Options, fn func(*Item) error) error {
	if o.Ignore == nil {
		o.Ignore = NoIgnore{}
	}
	if o.Stats == nil {
		o.Stats = &Stats{}
	}
	info, err := os.Stat(root) // the root may be a symlink the user named
	if err != nil {
		return fmt.Errorf("walk: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("walk: %s is not a directory", root)
	}
	w := &walker{ctx: ctx, ign: o.Ignore, st: o.Stats, fn: fn, oneFS: o.OneFileSystem, typesOnly: o.TypesOnly, dev: StampOf(info).Dev}
	return w.dir(&Item{Path: ".", Abs: root, Type: manifest.TypeDir, Info: info})
}

type walker struct {
	ctx       context.Context
	ign       Ignorer
	st        *Stats
	fn        func(*Item) error
	oneFS     bool
	dev       uint64 // the root's filesystem
	typesOnly bool
}

func (w *walker) dir(it *Item) error {
	if err := w.fn(it); err != nil {
		return err
	}
	if err := w.ign.EnterDir(it.Path, it.Abs); err != nil {
		return err
	}
	defer w.ign.LeaveDir(it.Path)
	ents, err := os.ReadDir(it.Abs) // sorted by name, bytewise
	if err != nil {
		return fmt.Errorf("walk: %w", err)
	}
	for _, de := range ents {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		name := de.Name()
		p := manifest.Join(it.Path, name)
		if manifest.CheckPath(p) != nil {
			w.st.Unstorable = append(w.st.Unstorable, filepath.Join(it.Abs, name))
			continue
		}
		isDir := de.IsDir()
		if w.ign.Ignored(p, isDir) {
			w.st.Ignored++
			continue
		}
		child := &Item{Path: p, Abs: filepath.Join(it.Abs, name)}
		m := de.Type()
		if !w.typesOnly || (isDir && w.oneFS) {
			info, err := de.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed since the directory was read
			}
			if err != nil {
				return fmt.Errorf("walk: %w", err)
			}
			child.Info, m = info, info.Mode()
		}
		switch {
		case m.IsDir():
			child.Type = manifest.TypeDir
			if w.oneFS && StampOf(child.Info).Dev != w.dev {
				w.st.OtherFS = append(w.st.OtherFS, child.Abs)
				if err := w.fn(child); err != nil {
					return err
				}
				continue
			}
			if err := w.dir(child); err != nil {
				return err
			}
			continue
		case m.IsRegular():
			child.Type = manifest.TypeFile
		case m&fs.ModeSymlink != 0:
			child.Type = manifest.TypeSymlink
			if w.typesOnly {
				break
			}
			var err error
			if child.Target, err = os.Readlink(child.Abs); err != nil {
				return fmt.Errorf("walk: %w", err)
			}
		default:
			w.st.Special++
			continue
		}
		if err := w.fn(child); err != nil {
			return err
		}
	}
	return nil
}
