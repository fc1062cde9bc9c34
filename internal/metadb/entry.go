package metadb

import (
	"encoding/binary"
	"errors"
	"strings"
	"time"

	"ib/internal/block"
	"ib/internal/manifest"
)

// The column encodings every store shares, so that a store's rows can be
// copied to another (ib server migrate) and a block list compared as bytes.

// Entry flags: FlagChanged marks an entry whose file changed while it was
// read, FlagAge one whose content is an age file (its plain size in
// plain_size).
const (
	FlagChanged = 1
	FlagAge     = 2
)

// Flags returns an entry's flag bits.
func Flags(e *manifest.Entry) int {
	f := 0
	if e.ChangedDuringRead {
		f |= FlagChanged
	}
	if e.Encryption == manifest.EncryptionAge {
		f |= FlagAge
	}
	return f
}

// SetFlags gives an entry what its flag bits and plain size say.
func SetFlags(e *manifest.Entry, flags int, plainSize int64) {
	e.ChangedDuringRead = flags&FlagChanged != 0
	if flags&FlagAge != 0 {
		e.Encryption, e.PlainSize = manifest.EncryptionAge, plainSize
	}
}

// PlainSize is the plain_size column of an entry: NULL unless encrypted.
func PlainSize(e *manifest.Entry) *int64 {
	if e.Encryption == "" {
		return nil
	}
	return &e.PlainSize
}

// TypeCode is an entry type's number in the entries table.
func TypeCode(t manifest.Type) int {
	switch t {
	case manifest.TypeFile:
		return 1
	case manifest.TypeSymlink:
		return 2
	case manifest.TypeHardlink:
		return 3
	}
	return 0
}

// TypeName is TypeCode's inverse.
func TypeName(c int) manifest.Type {
	switch c {
	case 1:
		return manifest.TypeFile
	case 2:
		return manifest.TypeSymlink
	case 3:
		return manifest.TypeHardlink
	}
	return manifest.TypeDir
}

// UnixTime is a stored mtime.
func UnixTime(s, ns int64) time.Time { return time.Unix(s, ns).UTC() }

// BaseName is the last element of a manifest path.
func BaseName(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// AppendBlock appends one (binary CID, size) pair to a packed block list:
// uvarint length, CID bytes, uvarint size.
func AppendBlock(p, cid []byte, size int64) []byte {
	p = binary.AppendUvarint(p, uint64(len(cid)))
	p = append(p, cid...)
	return binary.AppendUvarint(p, uint64(size))
}

var errCorruptList = errors.New("corrupt block list")

// NextBlock splits the first pair off a packed block list.
func NextBlock(p []byte) (cid []byte, size int64, rest []byte, err error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || uint64(len(p)-k) < n {
		return nil, 0, nil, errCorruptList
	}
	cid, p = p[k:k+int(n)], p[k+int(n):]
	s, k := binary.Uvarint(p)
	if k <= 0 {
		return nil, 0, nil, errCorruptList
	}
	return cid, int64(s), p[k:], nil
}

// UnpackBlocks reads a packed block list.
func UnpackBlocks(p []byte) ([]manifest.Block, error) {
	var out []manifest.Block
	for len(p) > 0 {
		bin, size, rest, err := NextBlock(p)
		if err != nil {
			return nil, err
		}
		c, err := block.CIDFromBytes(bin)
		if err != nil {
			return nil, err
		}
		out = append(out, manifest.Block{CID: c.String(), Size: size})
		p = rest
	}
	return out, nil
}
