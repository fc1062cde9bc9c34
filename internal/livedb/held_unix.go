//go:build unix

package livedb

import (
	"os"

	"golang.org/x/sys/unix"
)

func held(abs string) bool {
	f, err := os.Open(abs)
	if err != nil {
		return false
	}
	defer f.Close()
	fd := int(f.Fd())
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_GETLK, &lk); err == nil && lk.Type != unix.F_UNLCK {
		return true
	}
	switch err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err {
	case nil:
		unix.Flock(fd, unix.LOCK_UN)
		return false
	case unix.EWOULDBLOCK:
		return true
	}
	return false
}
