package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"ib/internal/metadb"
)

// TestStageYieldsToBlockWrites: a stage waits while block rows are being
// written, and stops waiting when its body has ended (the client waits
// for the commit then) or the writes have stopped.
func TestStageYieldsToBlockWrites(t *testing.T) {
	file, err := os.Create(filepath.Join(t.TempDir(), "spool"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	f := newFeed(file)
	var w blockWrites
	if w.busy() {
		t.Fatal("busy before any block write")
	}
	end := w.begin()
	done := make(chan error, 1)
	go func() { done <- w.yield(context.Background(), f) }()
	select {
	case err := <-done:
		t.Fatalf("the stage went on while a block row was being written (%v)", err)
	case <-time.After(3 * yieldGap):
	}
	f.end(metadb.Head{}, nil)
	if err := <-done; err != nil {
		t.Fatalf("yield after the body ended: %v", err)
	}

	f = newFeed(file)
	end()
	if !w.busy() {
		t.Fatal("not busy just after a block write")
	}
	if err := w.yield(context.Background(), f); err != nil || w.busy() {
		t.Fatalf("yield returned %v with writes busy %v", err, w.busy())
	}
	ctx, cancel := context.WithCancel(context.Background())
	end = w.begin()
	defer end()
	cancel()
	if err := w.yield(ctx, f); err == nil {
		t.Fatal("yield ignored its cancelled context")
	}
}
