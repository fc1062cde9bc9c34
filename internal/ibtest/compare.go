//go:build unix

package ibtest

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// node is what a tree comparison looks at.
type node struct {
	mode   fs.FileMode
	mtime  int64 // ns
	size   int64
	target string
}

// Snapshot records every path under root (lstat, no following), except
// the paths for which skip returns true.
func snapshot(t testing.TB, root string, skip func(rel string, d fs.DirEntry) bool) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if skip != nil && skip(rel, d) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		n := node{mode: fi.Mode(), mtime: st.Mtim.Nano(), size: fi.Size()}
		if fi.Mode()&fs.ModeSymlink != 0 {
			n.target, _ = os.Readlink(p)
		}
		out[rel] = n
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return out
}

// SkipSpecial leaves out sockets, devices and named pipes.
func SkipSpecial(rel string, d fs.DirEntry) bool {
	return d.Type()&(fs.ModeNamedPipe|fs.ModeSocket|fs.ModeDevice|fs.ModeCharDevice) != 0
}

// TreesEqual fails the test unless the trees under a and b hold the same
// paths with the same type, mode, mtime (ns), size, content and link
// targets. skip filters paths of a (for example special files).
func TreesEqual(t testing.TB, a, b string, skip func(rel string, d fs.DirEntry) bool) {
	t.Helper()
	sa, sb := snapshot(t, a, skip), snapshot(t, b, nil)
	var diffs []string
	for p, na := range sa {
		nb, ok := sb[p]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing in restore", p))
			continue
		}
		if na.mode != nb.mode {
			diffs = append(diffs, fmt.Sprintf("%s: mode %v, restored %v", p, na.mode, nb.mode))
		}
		if na.mtime != nb.mtime {
			diffs = append(diffs, fmt.Sprintf("%s: mtime %d, restored %d", p, na.mtime, nb.mtime))
		}
		if na.target != nb.target {
			diffs = append(diffs, fmt.Sprintf("%s: target %q, restored %q", p, na.target, nb.target))
		}
		if na.mode.IsRegular() {
			ca, _ := os.ReadFile(filepath.Join(a, p))
			cb, _ := os.ReadFile(filepath.Join(b, p))
			if !bytes.Equal(ca, cb) {
				diffs = append(diffs, fmt.Sprintf("%s: content differs (%d vs %d bytes)", p, len(ca), len(cb)))
			}
		}
	}
	for p := range sb {
		if _, ok := sa[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: extra in restore", p))
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		t.Fatalf("trees %s and %s differ:\n%s", a, b, strings.Join(diffs, "\n"))
	}
}
