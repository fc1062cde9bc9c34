package block

import (
	"crypto/sha256"
	"fmt"
	"hash"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// InlineMax is the largest file named by an identity CID: a CIDv1 raw
// whose multihash is the identity function, so the CID carries the file's
// bytes and the server holds no block for it (no row, no reference, no
// upload, no fetch). 128 bytes is the largest identity digest IPFS
// implementations accept by default. A file of at most InlineMax bytes may
// also be named by its sha2-256 CID (backups made before, a file that
// shrank); both names stay valid.
const InlineMax = 128

// inlinePrefix is the text form's start shared by every identity CID of ib
// (base32 of version 1, codec raw, multihash identity: the next character
// holds the length's top bit): a cheap test in loops over many CIDs.
// sha2-256 CIDs start "bafkr".
const inlinePrefix = "bafkq"

// Inline returns the identity CID of data, at most InlineMax bytes.
func Inline(data []byte) cid.Cid {
	if len(data) == 0 || len(data) > InlineMax {
		panic(fmt.Sprintf("block: inline CID of %d bytes", len(data)))
	}
	mh, err := multihash.Sum(data, multihash.IDENTITY, -1)
	if err != nil {
		panic(fmt.Sprintf("block: identity multihash: %v", err)) // cannot fail for these lengths
	}
	return cid.NewCidV1(cid.Raw, mh)
}

// IsInline reports whether the text CID s is an identity CID (not whether
// it is valid: ParseCID tells that).
func IsInline(s string) bool { return strings.HasPrefix(s, inlinePrefix) }

// InlineData returns the bytes an identity CID carries; ok is false for
// any other CID.
func InlineData(c cid.Cid) (data []byte, ok bool) {
	if c.Prefix().MhType != multihash.IDENTITY {
		return nil, false
	}
	d, err := multihash.Decode(c.Hash())
	if err != nil {
		return nil, false
	}
	return d.Digest, true
}

// HasherFor returns the hash that names bytes as want is named: SHA-256,
// or for an identity CID the bytes themselves (kept up to InlineMax+1,
// enough to tell a longer block apart). Named turns its state into a CID.
func HasherFor(want cid.Cid) hash.Hash {
	if want.Prefix().MhType == multihash.IDENTITY {
		return &identityHash{}
	}
	return sha256.New()
}

// Named returns the CID of the bytes written to h, a hash from NewHasher
// or HasherFor. The CID of more than InlineMax bytes written to an
// identity hash is cid.Undef, which equals no CID.
func Named(h hash.Hash) cid.Cid {
	if ih, ok := h.(*identityHash); ok {
		if ih.over || len(ih.b) == 0 {
			return cid.Undef
		}
		return Inline(ih.b)
	}
	return FromDigest(h.Sum(nil))
}

// identityHash keeps what is written to it: the "digest" of the identity
// multihash.
type identityHash struct {
	b    []byte
	over bool
}

func (h *identityHash) Write(p []byte) (int, error) {
	if len(h.b)+len(p) > InlineMax {
		h.over = true
	} else {
		h.b = append(h.b, p...)
	}
	return len(p), nil
}

func (h *identityHash) Sum(b []byte) []byte { return append(b, h.b...) }
func (h *identityHash) Reset()              { h.b, h.over = h.b[:0], false }
func (h *identityHash) Size() int           { return len(h.b) }
func (h *identityHash) BlockSize() int      { return 1 }
