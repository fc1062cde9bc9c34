package chunk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
)

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func hexSame(r io.ReaderAt, off int64, k Known) (bool, error) {
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(r, off, k.Size))
	return n == k.Size && hex.EncodeToString(h.Sum(nil)) == k.Sum, err
}

func knownOf(blocks [][]byte) []Known {
	out := make([]Known, len(blocks))
	for i, b := range blocks {
		out[i] = Known{Size: int64(len(b)), Sum: hexSum(b)}
	}
	return out
}

// cutKnown cuts data with CutKnown and returns its blocks' names and
// sizes, and how many it took from known without cutting.
func cutKnown(t *testing.T, c *Cutter, data []byte, known []Known) ([]Known, int) {
	t.Helper()
	var out []Known
	taken := 0
	n, err := c.CutKnown(context.Background(), bytes.NewReader(data), int64(len(data)), known, hexSum, hexSame,
		func(b []byte, blk Known) error {
			if b == nil {
				taken++
			} else if hexSum(b) != blk.Sum || int64(len(b)) != blk.Size {
				t.Fatalf("block %d: named %+v, its bytes are %d, %s", len(out), blk, len(b), hexSum(b))
			}
			out = append(out, blk)
			return nil
		})
	if err != nil || n != int64(len(data)) {
		t.Fatalf("CutKnown: %d of %d bytes, %v", n, len(data), err)
	}
	return out, taken
}

// CutKnown cuts every changed version of a file exactly as the plain cut
// does (the blocks are repository format), whatever the change: bytes
// rewritten in place (also right at and next to boundaries), inserted,
// deleted, appended, the file cut short, or nothing. Where a change leaves
// most blocks in place, most are taken without cutting.
func TestCutKnownCutsAsTheCutDoes(t *testing.T) {
	base := stream(12<<20, 7)
	// a zero run: blocks of Max, whose next byte the cut does not read
	base = append(base, make([]byte, 2*Max+Normal)...)
	base = append(base, stream(3<<20, 8)...)
	old := cut(t, base)
	known := knownOf(old)
	var bounds []int
	off := 0
	for _, b := range old {
		off += len(b)
		bounds = append(bounds, off)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	type change struct {
		name    string
		data    func() []byte
		inPlace bool
	}
	var changes []change
	scratch := make([]byte, len(base)) // one buffer for every rewrite: fresh memory is slow to fault in
	overwrite := func(at, n int) func() []byte {
		return func() []byte {
			copy(scratch, base)
			for i := at; i < at+n && i < len(scratch); i++ {
				scratch[i] ^= 0x5a
			}
			return scratch
		}
	}
	var joined []byte // and one for the others
	join := func(parts ...[]byte) func() []byte {
		return func() []byte {
			joined = joined[:0]
			for _, p := range parts {
				joined = append(joined, p...)
			}
			return joined
		}
	}
	is := func(b []byte) func() []byte { return func() []byte { return b } }
	for i, b := range bounds[:len(bounds)-1] {
		if i%3 != 0 {
			continue
		}
		for _, d := range []int{-1, 0, 1} { // the byte before, at and after a boundary
			changes = append(changes, change{fmt.Sprintf("byte at boundary %d%+d", b, d), overwrite(b+d, 1), true})
		}
	}
	for i := range 6 {
		at, n := rnd.IntN(len(base)), 1+rnd.IntN(8192)
		changes = append(changes, change{fmt.Sprintf("overwrite %d at %d (%d)", n, at, i), overwrite(at, n), true})
		ins := stream(1+rnd.IntN(64<<10), byte(i))
		changes = append(changes, change{fmt.Sprintf("insert %d at %d", len(ins), at), join(base[:at], ins, base[at:]), false})
		del := min(1+rnd.IntN(64<<10), len(base)-at)
		changes = append(changes, change{fmt.Sprintf("delete %d at %d", del, at), join(base[:at], base[at+del:]), false})
	}
	for _, n := range []int{1, 100, Min, Normal, Max + 1, 10 << 20} {
		changes = append(changes, change{fmt.Sprintf("append %d", n), join(base, stream(n, 9)), false})
	}
	for _, n := range []int{len(base) - 1, len(base) - Normal/2, len(base) - Max, bounds[3], bounds[3] + 1, Min, 10} {
		changes = append(changes, change{fmt.Sprintf("cut short to %d", n), is(base[:n]), false})
	}
	changes = append(changes, change{"unchanged", is(base), true})

	c := New()
	wasKnown := map[string]bool{}
	for _, k := range known {
		wasKnown[k.Sum] = true
	}
	for i, ch := range changes {
		if raceEnabled && i%6 != 0 {
			continue
		}
		data := ch.data()
		want := knownOf(cut(t, data))
		got, taken := cutKnown(t, c, data, known)
		if !slices.Equal(got, want) {
			t.Fatalf("%s: CutKnown made %d blocks, the cut %d; first difference at %d", ch.name, len(got), len(want), firstDiff(got, want))
		}
		// In place, the blocks cut are the new ones, the one before each run
		// of them (its boundary byte is checked by comparing the next
		// block), and an old one between new ones: at most twice as many
		// as the new ones, and one.
		fresh := 0
		for _, k := range want {
			if !wasKnown[k.Sum] {
				fresh++
			}
		}
		if ch.inPlace && taken < len(want)-2*fresh-1 {
			t.Errorf("%s: took %d of %d blocks without cutting (%d new), want all but twice the new ones and one", ch.name, taken, len(want), fresh)
		}
	}
}

func firstDiff(a, b []Known) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// Blocks that this package's cut cannot have made (longer than Max) are
// no hint: the file is cut as if nothing were known.
func TestCutKnownIgnoresOtherCuts(t *testing.T) {
	data := stream(30<<20, 3)
	want := knownOf(cut(t, data))
	got, taken := cutKnown(t, New(), data, []Known{{Size: 30 << 20, Sum: hexSum(data)}})
	if !slices.Equal(got, want) || taken != 0 {
		t.Fatalf("a 30 MiB known block: %d blocks (%d taken), want the cut's %d", len(got), taken, len(want))
	}
}
