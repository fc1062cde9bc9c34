//go:build unix

package alerts

import "golang.org/x/sys/unix"

// freeSpace is the space an unprivileged user may still write, and the
// size, of dir's file system.
func freeSpace(dir string) (free, total uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, err
	}
	return st.Bavail * uint64(st.Bsize), st.Blocks * uint64(st.Bsize), nil
}
