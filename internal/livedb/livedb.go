// Package livedb tells whether a database in a folder is open by a running
// process, from its lock file: LevelDB, RocksDB and Pebble hold a lock on
// their LOCK file, LMDB on lock.mdb, MDBX on mdbx.lck. A copy of such a
// database taken while it runs may not open (MANIFEST and CURRENT out of
// step after a compaction; an MDBX file mid-transaction).
//
// The test never takes a lock the database could miss: it asks the kernel
// whether a lock is held (fcntl F_GETLK), and tries a shared flock that it
// drops at once when granted (goleveldb locks with flock).
package livedb

import "path"

// Kind names the database a lock file belongs to, "" for a name that is
// not a known lock file.
func Kind(name string) string {
	switch path.Base(name) {
	case "LOCK":
		return "LevelDB/RocksDB/Pebble"
	case "mdbx.lck":
		return "MDBX"
	case "lock.mdb":
		return "LMDB"
	}
	return ""
}

// Held reports whether a running process holds a lock on the file at abs.
// Errors (a file that vanished, a system that cannot tell) report false.
func Held(abs string) bool { return held(abs) }
