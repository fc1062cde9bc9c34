package block

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func TestInlineCIDs(t *testing.T) {
	for n := 1; n <= InlineMax; n++ {
		data := bytes.Repeat([]byte{byte(n)}, n)
		c := Inline(data)
		s := c.String()
		if !IsInline(s) || IsInline(Sum(data).String()) {
			t.Fatalf("%d bytes: IsInline wrong for %s or its sha2-256 CID", n, s)
		}
		p, err := ParseCID(s)
		if err != nil || !p.Equals(c) {
			t.Fatalf("%d bytes: ParseCID(%s): %v", n, s, err)
		}
		if b, err := CIDFromBytes(c.Bytes()); err != nil || !b.Equals(c) {
			t.Fatalf("%d bytes: CIDFromBytes: %v", n, err)
		}
		if got, ok := InlineData(p); !ok || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: InlineData = %q, %v", n, got, ok)
		}
		wire, _ := Encode(data, DefaultLevel)
		var out bytes.Buffer
		if size, err := Verify(bytes.NewReader(wire), c, MaxSize, &out); err != nil || size != int64(n) || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("%d bytes: Verify: %d, %v", n, size, err)
		}
		if ok, err := HasCID(bytes.NewReader(data), 0, int64(n), s); !ok || err != nil {
			t.Fatalf("%d bytes: HasCID: %v %v", n, ok, err)
		}
	}
	if _, ok := InlineData(Sum([]byte("x"))); ok {
		t.Fatal("InlineData of a sha2-256 CID")
	}
}

func TestInlineCIDsRefused(t *testing.T) {
	data := []byte("tiny file")
	c := Inline(data)
	// Other bytes, one more byte, one fewer: no match.
	for _, other := range [][]byte{[]byte("tiny filE"), append(bytes.Clone(data), 'x'), data[:len(data)-1], bytes.Repeat([]byte{1}, InlineMax+5)} {
		wire, _ := Encode(other, DefaultLevel)
		if _, err := Verify(bytes.NewReader(wire), c, MaxSize, nil); !errors.Is(err, ErrMismatch) {
			t.Errorf("Verify of %d other bytes: %v", len(other), err)
		}
		if ok, _ := HasCID(bytes.NewReader(other), 0, int64(len(other)), c.String()); ok {
			t.Errorf("HasCID of %d other bytes", len(other))
		}
	}
	mh := func(data []byte) multihash.Multihash {
		m, err := multihash.Sum(data, multihash.IDENTITY, -1)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	for name, bad := range map[string]cid.Cid{
		"longer than InlineMax": cid.NewCidV1(cid.Raw, mh(make([]byte, InlineMax+1))),
		"empty":                 cid.NewCidV1(cid.Raw, mh(nil)),
		"dag-pb codec":          cid.NewCidV1(cid.DagProtobuf, mh(data)),
		"dag-cbor codec":        cid.NewCidV1(cid.DagCBOR, mh(data)),
	} {
		if _, err := ParseCID(bad.String()); !errors.Is(err, ErrBadCID) {
			t.Errorf("%s: ParseCID(%s) = %v", name, bad, err)
		}
		if _, err := CIDFromBytes(bad.Bytes()); err == nil {
			t.Errorf("%s: CIDFromBytes accepted it", name)
		}
	}
	for _, s := range []string{strings.ToUpper(c.String()), c.String() + "a", c.String()[:len(c.String())-1], "bafkq"} {
		if _, err := ParseCID(s); !errors.Is(err, ErrBadCID) {
			t.Errorf("ParseCID(%q) = %v", s, err)
		}
	}
	// An identity hash fed more than InlineMax bytes names nothing.
	h := HasherFor(c)
	h.Write(make([]byte, InlineMax+1))
	if Named(h).Defined() {
		t.Error("an identity hash of too many bytes named a CID")
	}
}
