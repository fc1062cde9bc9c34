//go:build !linux && !darwin

package scan

import "io/fs"

// Elsewhere the stamp is size and mtime alone, and hard links are not
// recognised (each name is stored as a file of its own).
func sysStamp(fs.FileInfo, *Stamp) {}

func sysLinks(fs.FileInfo) (dev, ino, nlink uint64) { return 0, 0, 0 }
