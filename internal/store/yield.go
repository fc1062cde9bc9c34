package store

import (
	"context"
	"sync/atomic"
	"time"
)

// blockWrites notes the writes of block rows, so that a stage yields the
// metadata store's writer to uploads. With SQLite's one writer, a stage
// that wrote its entries while a client's small uploads waited made the
// upload phase as much longer as the commit's tail got shorter (1,000,000
// tiny files: 77 s to the body's end against 57 s); a stage that writes
// only while no upload does overlaps its work with the client's walk,
// which is where it saves time (a backup with nothing to upload).
type blockWrites struct {
	inflight atomic.Int64
	last     atomic.Int64 // unix ns of the last one's end
}

// yieldGap is how long after the last block row a stage still yields.
const yieldGap = 50 * time.Millisecond

func (w *blockWrites) begin() (end func()) {
	w.inflight.Add(1)
	return func() {
		w.last.Store(time.Now().UnixNano())
		w.inflight.Add(-1)
	}
}

func (w *blockWrites) busy() bool {
	return w.inflight.Load() > 0 || time.Now().UnixNano()-w.last.Load() < int64(yieldGap)
}

// yield waits while block rows are being written, until the feed has
// ended (the stage's turn then: the client waits for it).
func (w *blockWrites) yield(ctx context.Context, f *feed) error {
	for w.busy() {
		if f.ended() {
			return nil
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}
