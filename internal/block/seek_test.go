package block

import (
	"bytes"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pierrec/lz4/v4"
)

// mixedData is 3.5 MiB of text, zeros and random bytes, so that its wire
// form has compressed and stored frame blocks.
func mixedData() []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	for b.Len() < 1<<20 {
		b.WriteString("height=1234567 hash=abcdef level=info msg=\"applied block\"\n")
	}
	b.Write(make([]byte, 1<<20))
	random := make([]byte, 1<<20+12345)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	b.Write(random)
	b.WriteString(strings.Repeat("tail ", 100_000))
	return b.Bytes()
}

func TestDecoderAt(t *testing.T) {
	data := mixedData()
	for _, level := range []Level{FastLevel, DefaultLevel} {
		wire, err := Encode(data, level)
		if err != nil {
			t.Fatal(err)
		}
		for _, off := range []int64{0, 1, 1<<20 - 1, 1 << 20, 1<<20 + 1, 2<<20 + 7, 3<<20 + 99, int64(len(data)) - 1, int64(len(data))} {
			for _, seekable := range []bool{true, false} {
				var r io.Reader = bytes.NewReader(wire)
				if !seekable {
					r = io.MultiReader(r) // hides Seek
				}
				d, err := DecoderAt(r, off)
				if err != nil {
					t.Fatalf("%s at %d: %v", level, off, err)
				}
				got, err := io.ReadAll(d)
				d.Close()
				if err != nil {
					t.Fatalf("%s at %d: read: %v", level, off, err)
				}
				if !bytes.Equal(got, data[off:]) {
					t.Fatalf("%s at %d (seekable %v): %d bytes, want %d (the source's tail)", level, off, seekable, len(got), len(data)-int(off))
				}
			}
		}
		if _, err := DecoderAt(bytes.NewReader(wire), int64(len(data))+1); err == nil {
			t.Errorf("%s: an offset past the end was accepted", level)
		}
	}
}

// TestDecoderAtPierrec: frames of pierrec's own writer (other block sizes,
// block checksums, content size) read the same way.
func TestDecoderAtPierrec(t *testing.T) {
	data := mixedData()
	for _, opts := range [][]lz4.Option{
		{lz4.BlockSizeOption(lz4.Block64Kb), lz4.ChecksumOption(true), lz4.BlockChecksumOption(true)},
		{lz4.BlockSizeOption(lz4.Block4Mb), lz4.SizeOption(uint64(len(data)))},
	} {
		var wire bytes.Buffer
		zw := lz4.NewWriter(&wire)
		if err := zw.Apply(opts...); err != nil {
			t.Fatal(err)
		}
		zw.Write(data)
		zw.Close()
		for _, off := range []int64{0, 65536, 1<<20 + 3, int64(len(data)) - 10} {
			d, err := DecoderAt(bytes.NewReader(wire.Bytes()), off)
			if err != nil {
				t.Fatalf("at %d: %v", off, err)
			}
			got, err := io.ReadAll(d)
			if err != nil || !bytes.Equal(got, data[off:]) {
				t.Fatalf("at %d: %d bytes, %v", off, len(got), err)
			}
		}
	}
}

func TestDecoderAtRefusesDamage(t *testing.T) {
	data := mixedData()
	wire, _ := Encode(data, DefaultLevel)
	for name, bad := range map[string][]byte{
		"empty":        nil,
		"not lz4":      []byte("hello world, not a frame"),
		"cut":          wire[:len(wire)/2],
		"huge length":  append(append([]byte(nil), wire[:7]...), 0xff, 0xff, 0xff, 0x7f),
		"header only":  wire[:7],
		"bad sequence": append(append(append([]byte(nil), wire[:7]...), 4, 0, 0, 0), 0x0f, 0xff, 0xff, 0xff),
	} {
		d, err := DecoderAt(bytes.NewReader(bad), 2<<20)
		if err == nil {
			_, err = io.ReadAll(d)
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// FuzzDecoderAt: whatever the bytes, DecoderAt never panics and, where the
// whole frame decodes, it yields the same bytes from the offset on.
func FuzzDecoderAt(f *testing.F) {
	small, _ := Encode([]byte(strings.Repeat("abc", 1000)+"xyz"), DefaultLevel)
	f.Add(small, int64(10))
	f.Add(small[:20], int64(0))
	f.Add([]byte{0x04, 0x22, 0x4d, 0x18, 0x40, 0x40, 0xc0, 5, 0, 0, 0x80, 'h', 'e', 'l', 'l', 'o', 0, 0, 0, 0}, int64(2))
	f.Fuzz(func(t *testing.T, wire []byte, off int64) {
		if off < 0 || off > 1<<22 {
			return
		}
		whole, wholeErr := io.ReadAll(io.LimitReader(lz4.NewReader(bytes.NewReader(wire)), 8<<20))
		d, err := DecoderAt(bytes.NewReader(wire), off)
		if err != nil {
			return
		}
		got, err := io.ReadAll(io.LimitReader(d, 8<<20))
		d.Close()
		if err != nil || wholeErr != nil || off > int64(len(whole)) {
			return
		}
		if !bytes.Equal(got, whole[off:]) {
			t.Fatalf("at %d: %d bytes, the whole frame's tail has %d", off, len(got), len(whole)-int(off))
		}
	})
}
