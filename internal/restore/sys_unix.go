//go:build unix

package restore

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// lutimesAt sets the mtime of the symlink name in the folder of root,
// through a descriptor of that folder opened by the root (os.Root has no
// call for a link's own times).
func lutimesAt(root *os.Root, name string, mtime time.Time) error {
	dir, err := root.Open(".")
	if err != nil {
		return err
	}
	defer dir.Close()
	ts := unix.NsecToTimespec(mtime.UnixNano())
	return unix.UtimesNanoAt(int(dir.Fd()), name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// readUmask reads the mask from /proc (Linux), else sets and restores it
// (racy only for files created at that instant by other goroutines).
var readUmask = sync.OnceValue(func() uint32 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(m)
				}
			}
		}
	}
	m := unix.Umask(0)
	unix.Umask(m)
	return uint32(m)
})

// umask is the process's file mode creation mask.
func umask() uint32 { return readUmask() }

// localName accepts every manifest path: Unix names hold any byte but '/'
// and NUL, which manifests never contain.
func localName(string) error { return nil }
