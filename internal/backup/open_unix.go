//go:build unix

package backup

import (
	"errors"
	"os"
	"syscall"
)

// errSymlink is an open refused because the path's last name is a symlink.
var errSymlink = errors.New("is a symlink")

// openFlags open a walked file for reading without following a symlink
// in its last name, and without waiting for a writer if a FIFO now stands
// there (O_NONBLOCK; the caller's fstat refuses anything not a regular
// file before it is read).
const openFlags = syscall.O_RDONLY | syscall.O_CLOEXEC | syscall.O_NOFOLLOW | syscall.O_NONBLOCK

// openFD opens abs with openFlags, and without updating its access time
// where the system lets this process (its owner, or root). Its errors
// are errSymlink or an *os.PathError.
//
// A system call, not os.Open: os.Open sets the descriptor non-blocking,
// tries to register it with the network poller (which refuses regular
// files) and clears the flag again, three system calls that cost more
// than reading a file of a few hundred bytes (1,000 tiny files: 24 ms
// with os.Open and a second lstat, 15 ms this way).
func openFD(abs string) (int, error) {
	fd, err := open(abs, openFlags|oNoAtime)
	if err == syscall.EPERM && oNoAtime != 0 {
		fd, err = open(abs, openFlags) // not the file's owner: atime it is
	}
	if err == syscall.ELOOP {
		return -1, errSymlink
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: abs, Err: err}
	}
	return fd, nil
}

func open(abs string, flags int) (int, error) {
	for {
		fd, err := syscall.Open(abs, flags, 0)
		if err != syscall.EINTR {
			return fd, err
		}
	}
}
