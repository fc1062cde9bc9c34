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
	"runtime"
	"testing"
	"time"

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

// Uploads decode and hash inside a CPU gate of one place per core; an
// upload whose client stalls mid-body gives its place up while it waits, so
// that more stalled uploads than cores do not stop anyone else's.
func TestStalledUploadsHoldNoCPUPlace(t *testing.T) {
	f := newStore(t)
	ctx := context.Background()
	wireOf := func(seed byte, n int) (string, []byte) {
		data := make([]byte, n)
		rand.NewChaCha8([32]byte{seed}).Read(data)
		wire, err := block.Encode(data, block.Level{})
		if err != nil {
			t.Fatal(err)
		}
		return block.Sum(data).String(), wire
	}
	stalled := runtime.GOMAXPROCS(0) + 2
	var writers []*io.PipeWriter
	var wires [][]byte
	done := make(chan error, stalled)
	for i := range stalled {
		c, wire := wireOf(byte(i), 700<<10+i*(1<<20)) // in memory, then in temporary files
		pr, pw := io.Pipe()
		go func() { done <- f.st.PutBlock(ctx, c, pr, int64(len(wire))) }()
		wrote := make(chan error, 1)
		go func() { _, err := pw.Write(wire[:len(wire)/2]); wrote <- err }() // returns once the server has read it
		select {
		case err := <-wrote:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("stalled upload %d could not begin: the ones before hold the CPU gate", i+1)
		}
		writers, wires = append(writers, pw), append(wires, wire)
	}
	c, wire := wireOf(200, 300<<10)
	other := make(chan error, 1)
	go func() { other <- f.st.PutBlock(ctx, c, bytes.NewReader(wire), int64(len(wire))) }()
	select {
	case err := <-other:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("an upload waited behind %d stalled ones", stalled)
	}
	for i, pw := range writers {
		go func() { pw.Write(wires[i][len(wires[i])/2:]); pw.Close() }()
	}
	for range stalled {
		if err := <-done; err != nil {
			t.Fatalf("a stalled upload, resumed: %v", err)
		}
	}
}
