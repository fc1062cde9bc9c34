//go:build linux || darwin

package scan

import (
	"io/fs"
	"syscall"
)

func sysStamp(fi fs.FileInfo, s *Stamp) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.CTime = ctime(st)
		s.Ino, s.Dev = st.Ino, uint64(st.Dev)
	}
}

func sysLinks(fi fs.FileInfo) (dev, ino, nlink uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino, uint64(st.Nlink)
	}
	return 0, 0, 0
}
