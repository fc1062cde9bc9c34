package manifest

import (
	"io/fs"
	"time"
)

// Type is the kind of an entry.
type Type string

// The entry types. Sockets, devices and named pipes are never stored.
const (
	TypeFile    Type = "file"
	TypeDir     Type = "dir"
	TypeSymlink Type = "symlink"
	// TypeHardlink is a later name of a file met earlier in the walk (its
	// Target, a manifest path): the same inode. It carries the file's size
	// and blocks too, so every reader can treat it as a file; restore links
	// it to the target when it restores both.
	TypeHardlink Type = "hardlink"
)

// HasContent reports whether entries of type t carry bytes (size, blocks).
func (t Type) HasContent() bool { return t == TypeFile || t == TypeHardlink }

// Block is one block of a file, in file order.
type Block struct {
	CID  string `json:"cid"`
	Size int64  `json:"size"`
}

// Entry is one directory, regular file or symlink of a backup.
type Entry struct {
	Path   string    `json:"path"`
	Type   Type      `json:"type"`
	Mode   uint32    `json:"mode"` // permission bits incl. setuid, setgid, sticky (07777)
	MTime  time.Time `json:"mtime"`
	Size   int64     `json:"size"`
	UID    uint32    `json:"uid"`
	GID    uint32    `json:"gid"`
	Target string    `json:"target,omitempty"`
	Blocks []Block   `json:"blocks,omitempty"`
	// ChangedDuringRead marks a file that kept changing while the backup
	// read it: its content is what the last read saw and may be
	// inconsistent. The next backup reads it again whatever its mtime.
	ChangedDuringRead bool `json:"changed_during_read,omitempty"`
	// Encryption names how the content was encrypted on the client
	// ("age": the blocks are an age file's bytes, Size counts them) and
	// PlainSize is then the file's own size. Names, modes, times and sizes
	// stay visible to the server; the content does not.
	Encryption string `json:"encryption,omitempty"`
	PlainSize  int64  `json:"plain_size,omitempty"`
}

// EncryptionAge is the one encryption there is: the content is an age
// file (age-encryption.org/v1).
const EncryptionAge = "age"

// DownloadName is the name (the entry's own, or its hard link target)
// under which its stored content is served, in tar archives and downloads:
// NAME.age for an encrypted file, an age file the age command line
// decrypts. A hard link to an encrypted file carries its encryption.
func (e *Entry) DownloadName(name string) string {
	if e.Encryption == EncryptionAge {
		return name + ".age"
	}
	return name
}

// FileSize is the size of the file on disk: PlainSize for an encrypted
// file, whose Size is its age file's.
func (e *Entry) FileSize() int64 {
	if e.Encryption != "" {
		return e.PlainSize
	}
	return e.Size
}

// Unix permission bits as stored in Entry.Mode.
const (
	modeSetuid = 04000
	modeSetgid = 02000
	modeSticky = 01000
	// ModeMask is every bit Entry.Mode may hold.
	ModeMask = 07777
)

// ModeFromFS converts Go's file mode to the stored Unix bits.
func ModeFromFS(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= modeSetuid
	}
	if m&fs.ModeSetgid != 0 {
		u |= modeSetgid
	}
	if m&fs.ModeSticky != 0 {
		u |= modeSticky
	}
	return u
}

// FSMode converts the stored Unix bits back to Go's file mode bits.
func FSMode(u uint32) fs.FileMode {
	m := fs.FileMode(u & 0777)
	if u&modeSetuid != 0 {
		m |= fs.ModeSetuid
	}
	if u&modeSetgid != 0 {
		m |= fs.ModeSetgid
	}
	if u&modeSticky != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// Summary is a backup as the API lists it.
type Summary struct {
	ID        int64     `json:"id"`
	Tags      Tags      `json:"tags"`
	CreatedAt time.Time `json:"created_at"`
	Files     int64     `json:"files"`
	Dirs      int64     `json:"dirs"`
	Symlinks  int64     `json:"symlinks"`
	Bytes     int64     `json:"bytes"`
	Blocks    int64     `json:"blocks"`
	Entries   int64     `json:"entries"`
	// Labels are metadata of this one backup (a block height, an app
	// hash): shown, never part of its tag set.
	Labels Tags `json:"labels,omitempty"`
	// AddedBytes are the bytes of the blocks no other backup had when it
	// was committed (what it added to the server); absent until known.
	AddedBytes *int64 `json:"added_bytes,omitempty"`
}
