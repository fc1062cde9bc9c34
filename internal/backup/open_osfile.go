//go:build unix && !linux

package backup

import (
	"os"
	"syscall"
)

// openNoFollow opens a walked file for reading (openFD), blocking again
// before the first read: some network and FUSE file systems pass
// O_NONBLOCK on and may answer a read with EAGAIN.
func openNoFollow(abs string) (regularFile, error) {
	fd, err := openFD(abs)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "open", Path: abs, Err: err}
	}
	return os.NewFile(uintptr(fd), abs), nil
}
