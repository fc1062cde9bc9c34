//go:build unix

package restore

import (
	"time"

	"golang.org/x/sys/unix"
)

// lutimes sets a symlink's own mtime.
func lutimes(path string, mtime time.Time) error {
	ts := unix.NsecToTimespec(mtime.UnixNano())
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

// localName accepts every manifest path: Unix names hold any byte but '/'
// and NUL, which manifests never contain.
func localName(string) error { return nil }
