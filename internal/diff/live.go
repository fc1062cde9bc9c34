package diff

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"ib/internal/block"
	"ib/internal/manifest"
	"ib/internal/scan"
)

// LiveSource walks a folder as a backup would and yields its entries
// (without blocks), in walk order.
type LiveSource struct {
	items  chan manifest.Entry
	err    error
	done   chan struct{}
	cancel context.CancelFunc
}

// Live starts the walk of root; Close stops it.
func Live(ctx context.Context, root string, o scan.Options) *LiveSource {
	ctx, cancel := context.WithCancel(ctx)
	l := &LiveSource{items: make(chan manifest.Entry, 1024), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(l.items)
		l.err = scan.Walk(ctx, root, o, func(it *scan.Item) error {
			select {
			case l.items <- it.Entry():
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return l
}

// Next returns the next entry, io.EOF after the last.
func (l *LiveSource) Next() (*manifest.Entry, error) {
	e, ok := <-l.items
	if !ok {
		if l.err != nil {
			return nil, l.err
		}
		return nil, io.EOF
	}
	return &e, nil
}

// Close stops the walk.
func (l *LiveSource) Close() {
	l.cancel()
	for range l.items {
	}
}

// HashLive compares a live file under root with a backed-up entry by
// hashing it at the entry's block boundaries: the same content has the
// same CIDs.
func HashLive(root string) func(old, cur *manifest.Entry) (bool, error) {
	return func(old, cur *manifest.Entry) (bool, error) {
		f, err := os.Open(filepath.Join(root, filepath.FromSlash(cur.Path)))
		if errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("diff: %w", err)
		}
		defer f.Close()
		var off int64
		for _, b := range old.Blocks {
			if ok, err := block.HasCID(f, off, b.Size, b.CID); err != nil {
				return false, fmt.Errorf("diff: read %s: %w", cur.Path, err)
			} else if !ok {
				return false, nil
			}
			off += b.Size
		}
		return true, nil
	}
}
