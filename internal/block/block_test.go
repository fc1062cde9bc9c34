package block

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func TestHelloWorldCID(t *testing.T) {
	got := Sum([]byte("hello world")).String()
	want := "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
	if got != want {
		t.Fatalf("CID of hello world = %s, want %s", got, want)
	}
	h := NewHasher()
	h.Write([]byte("hello "))
	h.Write([]byte("world"))
	if s := FromDigest(h.Sum(nil)).String(); s != want {
		t.Fatalf("streamed CID = %s, want %s", s, want)
	}
}

func TestParseCID(t *testing.T) {
	good := "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"
	if _, err := ParseCID(good); err != nil {
		t.Fatalf("ParseCID(good): %v", err)
	}
	for _, bad := range []string{
		"",
		"hello",
		"QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",                   // CIDv0
		"bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",      // dag-pb codec
		"BAFKREIFZJUT3TE2NHYEKKLSS27NH3K72YSCO7Y32KOAO5EEI66WOF36N5E",      // upper case
		"bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5",       // truncated
		"bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e/../x", // junk
	} {
		if _, err := ParseCID(bad); !errors.Is(err, ErrBadCID) {
			t.Errorf("ParseCID(%q) = %v, want ErrBadCID", bad, err)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for _, s := range []string{"fast", "1", "5", "9", "max"} {
		if _, err := ParseLevel(s); err != nil {
			t.Errorf("ParseLevel(%q): %v", s, err)
		}
	}
	for _, s := range []string{"0", "10", "best", "-1", "05", " 5", "+5"} {
		if _, err := ParseLevel(s); err == nil {
			t.Errorf("ParseLevel(%q) accepted", s)
		}
	}
}

// TestLevelsTradeOff: a higher level searches deeper and stores text
// smaller (pierrec's own HC levels compress it all alike), and Encode writes
// the bytes a Compressor at that level writes.
func TestLevelsTradeOff(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var text []byte
	words := []string{"block", "imported", "peer", "connected", "height", "hash", "INFO", "WARN", "validator", "round"}
	for len(text) < 2*frameBytes+999 {
		text = fmt.Appendf(text, "%d %s %s %s number=%d\n", 1700000000+len(text), words[rng.IntN(len(words))],
			words[rng.IntN(len(words))], words[rng.IntN(len(words))], rng.IntN(100000))
	}
	size := map[string]int{}
	for _, name := range []string{"fast", "1", "5", "9", "max"} {
		lv, _ := ParseLevel(name)
		wire, err := Encode(text, lv)
		if err != nil {
			t.Fatal(err)
		}
		decode(t, wire, text)
		c, _ := NewCompressor(lv, 2, 4)
		var viaCompressor bytes.Buffer
		c.Encode(context.Background(), &viaCompressor, bytes.NewReader(text))
		c.Close()
		if !bytes.Equal(wire, viaCompressor.Bytes()) {
			t.Errorf("level %s: Encode and Compressor.Encode differ", name)
		}
		size[name] = len(wire)
	}
	t.Logf("wire sizes of %d bytes of text: %v", len(text), size)
	if !(size["fast"] > size["1"] && size["1"] > size["5"] && size["5"] > size["9"] && size["9"] >= size["max"]) {
		t.Errorf("sizes do not shrink as the level rises: %v", size)
	}
	if float64(size["1"]) < 1.05*float64(size["max"]) {
		t.Errorf("level 1 (%d bytes) searches about as deep as max (%d)", size["1"], size["max"])
	}
}

func TestEncodeVerify(t *testing.T) {
	data := []byte(strings.Repeat("blockchain node data ", 50000))
	for _, lv := range []string{"fast", "1", "max"} {
		level, _ := ParseLevel(lv)
		wire, err := Encode(data, level)
		if err != nil {
			t.Fatal(err)
		}
		if len(wire) >= len(data)/2 {
			t.Errorf("level %s: wire %d bytes for %d bytes of text", lv, len(wire), len(data))
		}
		var out bytes.Buffer
		n, err := Verify(bytes.NewReader(wire), Sum(data), MaxSize, &out)
		if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("level %s: Verify = %d, %v", lv, n, err)
		}
	}
}

func TestVerifyRejects(t *testing.T) {
	data := []byte("some block")
	wire, _ := Encode(data, DefaultLevel)

	if _, err := Verify(bytes.NewReader(wire), Sum([]byte("other")), MaxSize, nil); !errors.Is(err, ErrMismatch) {
		t.Errorf("forged block: %v, want ErrMismatch", err)
	}
	if _, err := Verify(strings.NewReader("plain bytes, not lz4"), Sum(data), MaxSize, nil); !errors.Is(err, ErrBadWire) {
		t.Errorf("non-LZ4 body: %v, want ErrBadWire", err)
	}
	if _, err := Verify(bytes.NewReader(wire[:len(wire)-3]), Sum(data), MaxSize, nil); err == nil {
		t.Errorf("truncated frame accepted")
	}
	// A bomb: 64 MiB of zeros compresses to a few KiB; with a 1 MiB limit
	// Verify must stop after 1 MiB + 1 byte.
	zeros := make([]byte, 64<<20)
	bomb, _ := Encode(zeros, Level{"fast", 0})
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	n, err := Verify(bytes.NewReader(bomb), Sum(zeros), 1<<20, nil)
	if !errors.Is(err, ErrTooLarge) || n != 1<<20+1 {
		t.Errorf("bomb: n=%d err=%v, want ErrTooLarge after %d bytes", n, err, 1<<20+1)
	}
}

// libraryParse is ParseCID without its fast path: what the library
// decides.
func libraryParse(s string) (cid.Cid, bool) {
	c, err := cid.Decode(s)
	if err != nil || !known(c.Prefix()) || c.String() != s {
		return cid.Undef, false
	}
	return c, true
}

// TestParseSHA256AgreesWithLibrary: the fast path accepts exactly the
// sha2-256 texts the library accepts, as the same CIDs, for real CIDs and
// for every one-character change of one (the last character's spare bits,
// other alphabets, upper case, another head).
func TestParseSHA256AgreesWithLibrary(t *testing.T) {
	var texts []string
	for i := range 64 {
		texts = append(texts, Sum([]byte{byte(i), byte(i >> 8)}).String())
	}
	good := texts[0]
	for i := 1; i < len(good); i++ {
		for _, c := range "abcdefghijklmnopqrstuvwxyz234567ABZ0189=_ \x00\xff" {
			texts = append(texts, good[:i]+string(c)+good[i+1:])
		}
	}
	texts = append(texts, Inline([]byte("hi")).String(), "b"+good[1:58], good+"a", "f"+good[1:])
	accepted := 0
	for _, s := range texts {
		fast, fok := parseSHA256(s)
		lib, lok := libraryParse(s)
		if fok && !lok {
			t.Fatalf("fast path accepts %q, the library does not", s)
		}
		if fok && !fast.Equals(lib) {
			t.Fatalf("%q: fast path gives %s, library %s", s, fast, lib)
		}
		if lok && lib.Prefix().MhType == multihash.SHA2_256 && !fok {
			t.Fatalf("fast path refuses %q, which the library accepts", s)
		}
		if fok {
			accepted++
		}
	}
	// The 64 sums, and one-character changes that keep the spare bits zero.
	if accepted <= 64 {
		t.Fatalf("fast path accepted %d texts: too few to have compared anything", accepted)
	}
}

// FuzzParseCID: parsing never panics; an accepted CID renders back to
// the same string; the fast path and the library agree.
func FuzzParseCID(f *testing.F) {
	f.Add("bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e")
	f.Add("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi")
	f.Add("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCID(s)
		if err == nil && c.String() != s {
			t.Fatalf("ParseCID(%q) renders as %q", s, c)
		}
		lib, lok := libraryParse(s)
		if (err == nil) != lok || lok && !lib.Equals(c) {
			t.Fatalf("ParseCID(%q) = %s, %v; the library: %s, %v", s, c, err, lib, lok)
		}
	})
}

// FuzzVerify: any bytes as a wire form are verified without panicking and
// never decode past the limit.
func FuzzVerify(f *testing.F) {
	good, _ := Encode([]byte("hello world"), DefaultLevel)
	f.Add(good)
	f.Add([]byte("not lz4"))
	f.Fuzz(func(t *testing.T, wire []byte) {
		n, _ := Verify(bytes.NewReader(wire), Sum([]byte("hello world")), 1<<16, nil)
		if n > 1<<16+1 {
			t.Fatalf("decoded %d bytes past the limit", n)
		}
	})
}

// BenchmarkParseCID: one sha2-256 CID as manifests carry them; the
// library's path alone for comparison.
//
//	go test -run '^$' -bench BenchmarkParseCID ./internal/block/
func BenchmarkParseCID(b *testing.B) {
	s := Sum([]byte("bench")).String()
	b.Run("ParseCID", func(b *testing.B) {
		for b.Loop() {
			if _, err := ParseCID(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		for b.Loop() {
			if _, ok := libraryParse(s); !ok {
				b.Fatal(s)
			}
		}
	})
}
