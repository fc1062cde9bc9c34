// Package blockstore keeps the bytes of large blocks, keyed by CID, behind a
// small interface. The local directory store is the embedded default; an S3
// store implements the same interface. Stores know nothing of SQLite: the
// server's store package writes here first and records the block second, so
// a crash leaves at worst an orphan object, never a row without bytes.
package blockstore

import (
	"context"
	"errors"
	"io"
	"os"
	"time"
)

// ErrNotFound is returned by Get and Stat for a key the store does not hold.
var ErrNotFound = errors.New("block not found in store")

// Info describes one stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store holds opaque objects by key.
type Store interface {
	// Put stores size bytes read from r under key, durably and atomically:
	// a reader sees the old object, the new one, or none, never a part.
	// Putting a key again is harmless (content-addressed keys hold the same
	// bytes), and concurrent puts of one key are safe.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the object. ErrNotFound when absent.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat describes the object. ErrNotFound when absent.
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes the object; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object, in no particular order.
	List(ctx context.Context, fn func(Info) error) error
	// Check reports whether the store is reachable and writable.
	Check(ctx context.Context) error
	// String names the store in messages ("local /srv/ib/blocks").
	String() string
}

// FilePutter is implemented by stores that can take a finished temporary
// file on the same file system without copying it.
type FilePutter interface {
	// PutFile moves the file f, open and written, into the store under
	// key, and closes it (whatever the outcome).
	PutFile(ctx context.Context, key string, f *os.File) error
}

// shard returns the folder of a key: two characters of a CID's digest
// (the first seven characters of ib's CIDs are the same for all), or "_"
// for other keys.
func shard(key string) string {
	if len(key) >= 10 {
		return key[8:10]
	}
	return "_"
}
