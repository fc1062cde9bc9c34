package restore

import (
	"os"
	"path"
	"sync"
)

// dirRoots keeps an os.Root open on the folders being written to, so that
// creating, renaming and stamping a file is one system call relative to
// its folder instead of a walk from DEST for each (a tree of small files
// is mostly such calls). A folder's root stays open while files in it are
// in progress and, idle, until more than maxIdleDirs are open.
type dirRoots struct {
	parent *os.Root
	mu     sync.Mutex
	m      map[string]*dirRoot
}

type dirRoot struct {
	root *os.Root
	refs int
}

const maxIdleDirs = 64

// at returns the root of p's folder and p's last element; release it when
// done.
func (d *dirRoots) at(p string) (*os.Root, string, func(), error) {
	dir, name := path.Split(p)
	if dir == "" {
		return d.parent, name, func() {}, nil
	}
	dir = dir[:len(dir)-1]
	d.mu.Lock()
	defer d.mu.Unlock()
	dr, ok := d.m[dir]
	if !ok {
		root, err := d.parent.OpenRoot(dir)
		if err != nil {
			return nil, "", nil, err
		}
		if len(d.m) >= maxIdleDirs {
			for k, v := range d.m {
				if v.refs == 0 {
					v.root.Close()
					delete(d.m, k)
				}
			}
		}
		if d.m == nil {
			d.m = map[string]*dirRoot{}
		}
		dr = &dirRoot{root: root}
		d.m[dir] = dr
	}
	dr.refs++
	return dr.root, name, func() {
		d.mu.Lock()
		dr.refs--
		d.mu.Unlock()
	}, nil
}

func (d *dirRoots) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, v := range d.m {
		v.root.Close()
		delete(d.m, k)
	}
}

// lstat is Lstat of p through its folder's root: one system call for the
// files of a folder instead of a walk from DEST for each (a refresh stats
// every file the backup has).
func (d *dirRoots) lstat(p string) (os.FileInfo, error) {
	root, name, release, err := d.at(p)
	if err != nil {
		return nil, err
	}
	defer release()
	return root.Lstat(name)
}

// open opens p for reading through its folder's root.
func (d *dirRoots) open(p string) (*os.File, error) {
	root, name, release, err := d.at(p)
	if err != nil {
		return nil, err
	}
	defer release()
	return root.Open(name)
}
