package backup

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// openNoFollow opens a walked file for reading (openFD) as an fdFile.
//
// Not an os.File: os.NewFile asks the descriptor's flags, and making it
// blocking again took two more system calls, three of the nine a file of a
// few hundred bytes cost (open, fstat, read, fstat, close are left). A
// million tiny files: 3.5 of the client's ~44 CPU-s were those fcntl calls.
func openNoFollow(abs string) (regularFile, error) {
	fd, err := openFD(abs)
	if err != nil {
		return nil, err
	}
	return &fdFile{fd: fd, name: abs}, nil
}

// fdFile is a file read with system calls on its descriptor. It is opened
// O_NONBLOCK (a FIFO swapped in must not block the open); local file
// systems ignore the flag for regular files, and where one answers EAGAIN
// (some network and FUSE ones pass it on) the descriptor is made blocking
// and the read tried again.
type fdFile struct {
	fd       int
	name     string
	blocking bool
}

func (f *fdFile) Name() string { return f.name }

func (f *fdFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := f.retry(func() (int, error) { return syscall.Read(f.fd, p) })
	if err == nil && n == 0 {
		return 0, io.EOF
	}
	return n, err
}

func (f *fdFile) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := f.retry(func() (int, error) { return syscall.Pread(f.fd, p[done:], off+int64(done)) })
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, io.EOF
		}
		done += n
	}
	return done, nil
}

// retry runs a read until it is not interrupted, making the descriptor
// blocking once if the file system answers EAGAIN.
func (f *fdFile) retry(read func() (int, error)) (int, error) {
	for {
		n, err := read()
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN && !f.blocking:
			if err := syscall.SetNonblock(f.fd, false); err != nil {
				return 0, &os.PathError{Op: "read", Path: f.name, Err: err}
			}
			f.blocking = true
			continue
		case err != nil:
			return 0, &os.PathError{Op: "read", Path: f.name, Err: err}
		}
		return n, nil
	}
}

func (f *fdFile) Stat() (fs.FileInfo, error) {
	fi := &statInfo{name: filepath.Base(f.name)}
	for {
		err := syscall.Fstat(f.fd, &fi.st)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "stat", Path: f.name, Err: err}
		}
		return fi, nil
	}
}

func (f *fdFile) Close() error {
	if f.fd < 0 {
		return os.ErrClosed
	}
	err := syscall.Close(f.fd)
	f.fd = -1
	if err != nil {
		return &os.PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}

// statInfo is an fstat's answer as fs.FileInfo, with the mode bits as
// os.Stat gives them and the syscall.Stat_t as Sys.
type statInfo struct {
	name string
	st   syscall.Stat_t
}

func (fi *statInfo) Name() string       { return fi.name }
func (fi *statInfo) Size() int64        { return fi.st.Size }
func (fi *statInfo) ModTime() time.Time { return time.Unix(fi.st.Mtim.Unix()) }
func (fi *statInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *statInfo) Sys() any           { return &fi.st }

func (fi *statInfo) Mode() fs.FileMode {
	m := fs.FileMode(fi.st.Mode & 0o777)
	switch fi.st.Mode & syscall.S_IFMT {
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	}
	if fi.st.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if fi.st.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if fi.st.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
