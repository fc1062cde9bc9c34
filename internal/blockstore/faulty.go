package blockstore

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// ErrInjected is the error a Faulty store returns where it is told to.
var ErrInjected = errors.New("injected block store fault")

// Op names the operations a Faulty store can fail.
type Op string

// The operations.
const (
	OpPut    Op = "put"
	OpGet    Op = "get"
	OpDelete Op = "delete"
)

// Fault fails or stalls calls of one operation: the Nth call (1-based) and
// the Times-1 after it.
type Fault struct {
	Op    Op
	N     int
	Times int           // 1 when zero
	Stall time.Duration // wait this long first (until the context ends)
	Fail  bool          // then return ErrInjected
}

// Faulty wraps a store and injects faults, for tests of what the rest of
// ib does on a bad day (kopia's blobtesting.FaultyStorage is the model).
type Faulty struct {
	Store
	mu     sync.Mutex
	calls  map[Op]int
	faults []Fault
}

// NewFaulty wraps s.
func NewFaulty(s Store, faults ...Fault) *Faulty {
	return &Faulty{Store: s, calls: map[Op]int{}, faults: faults}
}

// Calls returns how many times op was called.
func (f *Faulty) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// SetFaults replaces the faults (and keeps counting calls).
func (f *Faulty) SetFaults(faults ...Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = faults
}

func (f *Faulty) inject(ctx context.Context, op Op) error {
	f.mu.Lock()
	f.calls[op]++
	n := f.calls[op]
	var hit *Fault
	for i := range f.faults {
		fl := &f.faults[i]
		if fl.Op == op && n >= fl.N && n < fl.N+max(fl.Times, 1) {
			hit = fl
		}
	}
	f.mu.Unlock()
	if hit == nil {
		return nil
	}
	if hit.Stall > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(hit.Stall):
		}
	}
	if hit.Fail {
		return ErrInjected
	}
	return nil
}

func (f *Faulty) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.inject(ctx, OpPut); err != nil {
		return err
	}
	return f.Store.Put(ctx, key, r, size)
}

// PutFile keeps the wrapped store's fast path, with the same faults as Put.
func (f *Faulty) PutFile(ctx context.Context, key string, file *os.File) error {
	fp, ok := f.Store.(FilePutter)
	if !ok {
		file.Close()
		return errors.New("faulty: the wrapped store cannot take files")
	}
	if err := f.inject(ctx, OpPut); err != nil {
		file.Close()
		return err
	}
	return fp.PutFile(ctx, key, file)
}

func (f *Faulty) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := f.inject(ctx, OpGet); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, key)
}

func (f *Faulty) Delete(ctx context.Context, key string) error {
	if err := f.inject(ctx, OpDelete); err != nil {
		return err
	}
	return f.Store.Delete(ctx, key)
}
