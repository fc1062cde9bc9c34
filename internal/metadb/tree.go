package metadb

import "ib/internal/manifest"

// Tree finds each entry's parent folder while entries arrive in
// walk order: the open folders form a stack.
type Tree struct {
	dirs []struct {
		path string
		seq  int64
	}
}

// Parent returns the parent's seq of path (-1 for the root) and, for a
// folder, pushes it.
func (t *Tree) Parent(path string, seq int64, isDir bool) int64 {
	parent := int64(-1)
	if path != "." {
		want := manifest.Parent(path)
		for len(t.dirs) > 0 && t.dirs[len(t.dirs)-1].path != want {
			t.dirs = t.dirs[:len(t.dirs)-1]
		}
		if len(t.dirs) > 0 {
			parent = t.dirs[len(t.dirs)-1].seq
		}
	}
	if isDir {
		t.dirs = append(t.dirs, struct {
			path string
			seq  int64
		}{path, seq})
	}
	return parent
}
