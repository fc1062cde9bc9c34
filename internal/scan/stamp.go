package scan

import "io/fs"

// Stamp is what tells one state of a file from another without reading
// it: a file whose stamp is the same before and after a read was not
// written meanwhile (as far as its filesystem's clock tells).
type Stamp struct {
	Size  int64
	MTime int64 // ns
	CTime int64 // ns; 0 where the system does not say
	Ino   uint64
	Dev   uint64
}

// StampOf reads the stamp of a file's lstat or fstat.
func StampOf(fi fs.FileInfo) Stamp {
	s := Stamp{Size: fi.Size(), MTime: fi.ModTime().UnixNano()}
	sysStamp(fi, &s)
	return s
}

// FileID names an inode: two paths with the same FileID are hard links
// of one file.
type FileID struct{ Dev, Ino uint64 }

// LinkID returns the inode of a regular file that has more than one name
// (ok false for a file with one name, or where the system does not say).
func LinkID(fi fs.FileInfo) (FileID, bool) {
	dev, ino, nlink := sysLinks(fi)
	if nlink < 2 || ino == 0 {
		return FileID{}, false
	}
	return FileID{dev, ino}, true
}

// Links is a file's count of names (1 where the system does not say).
func Links(fi fs.FileInfo) uint64 {
	if _, _, n := sysLinks(fi); n > 0 {
		return n
	}
	return 1
}
