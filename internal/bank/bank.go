// Package bank keeps a bounded number of reusable values (buffers) alive
// between uses.
//
// A sync.Pool is emptied by the garbage collector, and a process whose heap
// is small collects often: ib's server keeps a few MiB live, so it collected
// every few uploads, each request then allocated its 256 KiB-1 MiB buffers
// anew, and the runtime returned the memory to the OS between steps and
// faulted it in again (a 5% backup of the shared dataset: ~22,000 page
// faults on the server, 16 µs each on this project's VM). What a Bank holds
// stays until it is taken: at most its capacity, however many are made
// while it is empty.
package bank

// Bank lends values made by its function and keeps up to its capacity of
// the ones given back.
type Bank[T any] struct {
	free chan T
	make func() T
}

// New makes a bank that keeps up to n values.
func New[T any](n int, mk func() T) *Bank[T] {
	return &Bank[T]{free: make(chan T, n), make: mk}
}

// Get takes a kept value, or makes one if none is kept.
func (b *Bank[T]) Get() T {
	select {
	case v := <-b.free:
		return v
	default:
		return b.make()
	}
}

// Put gives v back; it is dropped if the bank is full.
func (b *Bank[T]) Put(v T) {
	select {
	case b.free <- v:
	default:
	}
}
