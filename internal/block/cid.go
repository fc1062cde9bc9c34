package block

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// MaxSize is the largest block, and the default block size.
const MaxSize = 128 << 20

// ErrBadCID reports a CID that is not a CIDv1 raw sha2-256 or identity
// (of at most InlineMax bytes) in base32.
var ErrBadCID = errors.New("not a CIDv1 raw sha2-256 or inline CID")

// NewHasher returns the hash whose digest names a block.
func NewHasher() hash.Hash { return sha256.New() }

// FromDigest turns a sha2-256 digest into the block's CID.
func FromDigest(digest []byte) cid.Cid {
	mh, err := multihash.Encode(digest, multihash.SHA2_256)
	if err != nil {
		// Encode fails only for an unknown code or a wrong length, both
		// fixed here: a programming error.
		panic(fmt.Sprintf("block: multihash: %v", err))
	}
	return cid.NewCidV1(cid.Raw, mh)
}

// Sum returns the CID of data.
func Sum(data []byte) cid.Cid {
	d := sha256.Sum256(data)
	return FromDigest(d[:])
}

// HasCID reports whether the size bytes of r at off hash to the CID c:
// a local copy of a block, checked where it lies. Bytes that end early
// are no match; err is a read that failed.
func HasCID(r io.ReaderAt, off, size int64, c string) (bool, error) {
	want, err := ParseCID(c)
	if err != nil {
		return false, nil // no bytes are named so
	}
	h := HasherFor(want)
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	n, err := io.CopyBuffer(h, io.NewSectionReader(r, off, size), *buf)
	if err != nil {
		return false, err
	}
	return n == size && Named(h).Equals(want), nil
}

// maxInlineText is the length of the text form of an identity CID of
// InlineMax bytes.
var maxInlineText = len(Inline(make([]byte, InlineMax)).String())

// ParseCID accepts exactly the CIDs ib gives blocks: version 1, codec raw,
// multihash sha2-256 of 32 bytes or identity of 1 to InlineMax bytes,
// rendered in base32 lower case.
func ParseCID(s string) (cid.Cid, error) {
	if c, ok := parseSHA256(s); ok {
		return c, nil
	}
	if len(s) != 59 && !(IsInline(s) && len(s) <= maxInlineText) || s[0] != 'b' {
		return cid.Undef, fmt.Errorf("%.80q: %w", s, ErrBadCID)
	}
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%.80q: %w", s, ErrBadCID)
	}
	if !known(c.Prefix()) || c.String() != s {
		return cid.Undef, fmt.Errorf("%.80q: %w", s, ErrBadCID)
	}
	return c, nil
}

// sha256Head is the binary start of every sha2-256 CID ib gives: version
// 1, codec raw, multihash sha2-256 of 32 bytes.
var sha256Head = [4]byte{0x01, 0x55, 0x12, 0x20}

// base32Value maps a byte of the base32 lower-case alphabet to its value,
// and every other byte to 0xff.
var base32Value = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "abcdefghijklmnopqrstuvwxyz234567" {
		t[c] = byte(i)
	}
	return t
}()

// parseSHA256 is ParseCID's path for the CIDs of almost every block:
// sha2-256 in base32. It decodes the 58 characters after the multibase
// prefix itself (the library's decode and re-encode, to check that the text
// is the canonical one, were most of the cost of reading a manifest) and
// accepts exactly what the library path accepts for this form: every
// character in the alphabet, the 2 bits past the 36th byte zero (else
// another text would name the same bytes), and the CID's head. Anything
// else (inline CIDs, errors) is left to the library.
func parseSHA256(s string) (cid.Cid, bool) {
	if len(s) != 59 || s[0] != 'b' {
		return cid.Undef, false
	}
	var b [37]byte
	var acc uint64
	bits, n := 0, 0
	for i := 1; i < len(s); i++ {
		v := base32Value[s[i]]
		if v == 0xff {
			return cid.Undef, false
		}
		acc = acc<<5 | uint64(v)
		if bits += 5; bits >= 8 {
			bits -= 8
			b[n] = byte(acc >> bits)
			n++
		}
	}
	if n != 36 || acc&(1<<bits-1) != 0 || [4]byte(b[:4]) != sha256Head {
		return cid.Undef, false
	}
	return cid.NewCidV1(cid.Raw, b[2:36]), true
}

// known reports a prefix of the CIDs ib gives blocks.
func known(p cid.Prefix) bool {
	if p.Version != 1 || p.Codec != cid.Raw {
		return false
	}
	switch p.MhType {
	case multihash.SHA2_256:
		return p.MhLength == 32
	case multihash.IDENTITY:
		return p.MhLength >= 1 && p.MhLength <= InlineMax
	}
	return false
}

// CIDFromBytes is ParseCID for the binary form (as stored by the server).
func CIDFromBytes(b []byte) (cid.Cid, error) {
	n, c, err := cid.CidFromBytes(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("cid bytes: %w", err)
	}
	if n != len(b) || !known(c.Prefix()) {
		return cid.Undef, fmt.Errorf("cid bytes: %w", ErrBadCID)
	}
	return c, nil
}
