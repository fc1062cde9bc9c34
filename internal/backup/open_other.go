//go:build !unix

package backup

import (
	"errors"
	"os"
)

// errSymlink is a path whose last name is a symlink.
var errSymlink = errors.New("is a symlink")

// openNoFollow opens a file for reading, refusing a symlink in its last
// name (checked after the open, which follows it).
func openNoFollow(abs string) (regularFile, error) {
	f, err := os.Open(abs)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if lfi, err := os.Lstat(abs); err == nil && !os.SameFile(fi, lfi) {
		f.Close()
		return nil, errSymlink
	}
	return f, nil
}
