package chunk

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
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
	a := stream(32<<20, 2)
	b := append(append(bytes.Clone(a[:13<<20]), []byte("a hundred bytes or so inserted into the middle of a large file, shifting all after it")...), a[13<<20:]...)
	seen := map[[32]byte]bool{}
	ba := cut(t, a)
	for _, x := range ba {
		seen[sha256.Sum256(x)] = true
	}
	bb := cut(t, b)
	fresh := 0
	for _, x := range bb {
		if !seen[sha256.Sum256(x)] {
			fresh++
		}
	}
	if fresh < 1 || fresh > 2 || len(bb) < 8 {
		t.Fatalf("%d of %d blocks new after an insertion (%d blocks before): want 1 or 2", fresh, len(bb), len(ba))
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
	want := []int{2099335, 1049539, 1048982, 1049564, 1048721, 2098168, 1049902, 4199370, 1048994, 1048809, 1035832}
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
