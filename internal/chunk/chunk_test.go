package chunk

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
)

// stream returns n deterministic random bytes (ChaCha8's output is
// stable across Go releases).
func stream(n int, seed byte) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{seed})
	r.Read(b)
	return b
}

func cut(t testing.TB, data []byte) [][]byte {
	t.Helper()
	c := New()
	c.Reset(bytes.NewReader(data))
	var out [][]byte
	for {
		b, err := c.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(b))
	}
}

func TestBlocksAreBoundedAndWhole(t *testing.T) {
	data := stream(48<<20, 1)
	// a run of zeros has no boundary: it is cut at Max
	data = append(data, make([]byte, 20<<20)...)
	blocks := cut(t, data)
	var joined []byte
	sawMax := false
	for i, b := range blocks {
		if len(b) > Max || (len(b) < Min && i != len(blocks)-1) {
			t.Errorf("block %d of %d is %d bytes, want %d to %d", i, len(blocks), len(b), Min, Max)
		}
		sawMax = sawMax || len(b) == Max
		joined = append(joined, b...)
	}
	if !bytes.Equal(joined, data) {
		t.Fatal("the blocks put together are not the input")
	}
	if !sawMax {
		t.Error("20 MiB of zeros were not cut at Max")
	}
	if avg := len(data[:48<<20]) / len(blocks); avg < 1<<20 || avg > 3<<20 {
		t.Errorf("%d blocks, about %d bytes each: want about 2 MiB", len(blocks), avg)
	}
}

func TestInsertionChangesOnlyTheBlocksAroundIt(t *testing.T) {
	a := stream(24<<20, 2)
	seen := map[[32]byte]bool{}
	before := cut(t, a)
	for _, x := range before {
		seen[sha256.Sum256(x)] = true
	}
	// (JC, jump-based chunking, failed this: 4 KiB inserted at 3 MiB
	// made 11 of 13 blocks new.)
	for _, at := range []int{1 << 20, 3 << 20, 5<<20 + 12345, 17 << 20} {
		for _, n := range []int{1, 100, 4096, 65536} {
			b := slices.Concat(a[:at], stream(n, 7), a[at:])
			after := cut(t, b)
			fresh := 0
			for _, x := range after {
				if !seen[sha256.Sum256(x)] {
					fresh++
				}
			}
			if fresh < 1 || fresh > 2 || len(after) < 8 {
				t.Errorf("%d bytes inserted at %d: %d of %d blocks new (%d before), want 1 or 2", n, at, fresh, len(after), len(before))
			}
		}
	}
}

// The boundaries are part of the repository format: blocks cut by an
// older ib must be cut the same way by this one, or every large file is
// uploaded again. These lengths were recorded when content-defined
// blocks came in.
func TestBoundariesAreStable(t *testing.T) {
	var got []int
	for _, b := range cut(t, stream(16<<20, 3)) {
		got = append(got, len(b))
	}
	want := []int{3790107, 2655028, 2310346, 1127938, 2153381, 2382689, 2357727}
	if len(got) != len(want) {
		t.Fatalf("block lengths %v, recorded %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("block lengths %v, recorded %v", got, want)
		}
	}
}

func BenchmarkCut(b *testing.B) {
	data := stream(64<<20, 4)
	c := New()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		c.Reset(bytes.NewReader(data))
		for {
			if _, err := c.Next(); err != nil {
				break
			}
		}
	}
}

func BenchmarkSHA256(b *testing.B) {
	data := stream(64<<20, 4)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		sha256.Sum256(data)
	}
}
