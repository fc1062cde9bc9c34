package bank

import (
	"runtime"
	"testing"
)

// What a bank keeps survives garbage collection (a sync.Pool's would not),
// up to its capacity.
func TestKeepsUpToCapacityAcrossCollections(t *testing.T) {
	made := 0
	b := New(2, func() *[]byte { made++; s := make([]byte, 1<<20); return &s })
	x, y, z := b.Get(), b.Get(), b.Get()
	if made != 3 {
		t.Fatalf("made %d, want 3", made)
	}
	b.Put(x)
	b.Put(y)
	b.Put(z) // dropped: the bank holds two
	runtime.GC()
	runtime.GC()
	got := map[*[]byte]bool{b.Get(): true, b.Get(): true}
	if !got[x] || !got[y] || made != 3 {
		t.Fatalf("after two collections got %v (x %p, y %p), made %d: want x and y back, nothing made", got, x, y, made)
	}
	if b.Get(); made != 4 {
		t.Fatalf("an empty bank made %d values, want 4", made)
	}
}
