package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"ib/internal/block"
	"ib/internal/store"
)

// A block upload is spooled in memory or in a temporary file depending on
// the length the request declares; the declared length may be missing or
// wrong, and none of that may change what is stored or leave a temporary
// file behind.
func TestPutBlockWhateverLengthIsDeclared(t *testing.T) {
	f := newStore(t)
	ctx := context.Background()
	sizes := map[string]int{"inline": 100, "memory": 700 << 10, "file": 3 << 20}
	for name, n := range sizes {
		data := make([]byte, n)
		rand.NewChaCha8([32]byte{byte(n)}).Read(data) // incompressible: the wire form is as large
		wire, err := block.Encode(data, block.Level{})
		if err != nil {
			t.Fatal(err)
		}
		c := block.Sum(data).String()
		for _, declared := range []int64{-1, int64(len(wire)), 1, 10 << 20} {
			t.Run(fmt.Sprintf("%s/declared %d", name, declared), func(t *testing.T) {
				if err := f.st.PutBlock(ctx, c, bytes.NewReader(wire), declared); err != nil {
					t.Fatal(err)
				}
				rc, size, err := f.st.OpenBlock(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(rc)
				rc.Close()
				if err != nil || size != int64(len(wire)) || !bytes.Equal(got, wire) {
					t.Fatalf("stored %d bytes (size %d, %v), want the %d-byte wire form", len(got), size, err, len(wire))
				}
				// a body that does not match its CID is refused, spooled either way
				bad := bytes.Clone(wire)
				bad[len(bad)/2] ^= 1
				other := block.Sum(append(bytes.Clone(data), 1)).String()
				if err := f.st.PutBlock(ctx, other, bytes.NewReader(bad), declared); !errors.Is(err, store.ErrInvalid) {
					t.Fatalf("a damaged body: %v, want ErrInvalid", err)
				}
				if left, _ := filepath.Glob(filepath.Join(f.dir, "blocks", "tmp", "*")); len(left) > 0 {
					t.Fatalf("temporary files left: %v", left)
				}
			})
		}
	}
	if _, err := os.Stat(filepath.Join(f.dir, "blocks", "tmp")); err != nil {
		t.Fatalf("temp dir: %v", err)
	}
}
