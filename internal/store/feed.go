package store

import (
	"context"
	"io"
	"os"
	"sync"
	"time"

	"ib/internal/metadb"
)

// A feed is a commit's spool while the request writes it: the request
// appends validated entries and publishes how far the file holds whole
// ones; the stage reads up to there and waits for more. The feed ends with
// the manifest's head once the whole body was read and found valid, or
// with the error that ended the request.
type feed struct {
	file *os.File
	mu   sync.Mutex
	size int64         // bytes of whole entries written
	more chan struct{} // closed at the next publish or end
	done bool
	err  error
	head metadb.Head // once done
}

func newFeed(file *os.File) *feed {
	return &feed{file: file, more: make(chan struct{})}
}

// publish says the file holds whole entries up to size.
func (f *feed) publish(size int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.size = size
	close(f.more)
	f.more = make(chan struct{})
}

// end ends the feed: err nil with the head of a valid manifest.
func (f *feed) end(h metadb.Head, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		return
	}
	f.done, f.err, f.head = true, err, h
	close(f.more)
}

func (f *feed) state() (size int64, done bool, err error, more chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size, f.done, f.err, f.more
}

// ended reports whether the feed has ended.
func (f *feed) ended() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}

// header is the manifest's head, once the feed ended well.
func (f *feed) header() metadb.Head {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.head
}

// feedReader reads a feed from pos. Each time it waits for more, and every
// stageTouch while it waits, it calls touch (the stage notes itself alive
// if it has not written for a while).
type feedReader struct {
	ctx   context.Context
	f     *feed
	pos   int64
	touch func() error
}

// stageTouch is how often a stage that writes nothing says it is alive (a
// variable for tests).
var stageTouch = 10 * time.Minute

// TestingSetStageTouch sets stageTouch and returns the undo.
func TestingSetStageTouch(d time.Duration) (undo func()) {
	old := stageTouch
	stageTouch = d
	return func() { stageTouch = old }
}

// StageIdle is how long a staged commit may go without a write before
// garbage collection drops it.
const StageIdle = time.Hour

func (r *feedReader) Read(p []byte) (int, error) {
	for {
		size, done, err, more := r.f.state()
		if r.pos < size {
			n, rerr := r.f.file.ReadAt(p[:min(int64(len(p)), size-r.pos)], r.pos)
			r.pos += int64(n)
			if n > 0 {
				return n, nil
			}
			return 0, rerr
		}
		if err != nil {
			return 0, err
		}
		if done {
			return 0, io.EOF
		}
		if err := r.touch(); err != nil {
			return 0, err
		}
		if err := r.wait(more); err != nil {
			return 0, err
		}
	}
}

func (r *feedReader) wait(more chan struct{}) error {
	t := time.NewTicker(stageTouch)
	defer t.Stop()
	for {
		select {
		case <-more:
			return nil
		case <-t.C:
			if err := r.touch(); err != nil {
				return err
			}
		case <-r.ctx.Done():
			return context.Cause(r.ctx)
		}
	}
}
