// Package cpugate bounds how many requests do CPU-heavy work at once.
//
// Go's scheduler has no priorities: a cheap request (a missing-query, a
// job's progress) that becomes runnable while twenty uploads are decoding
// and hashing waits behind all of them, ~10 ms each. A server that lets at
// most as many uploads compute as it has cores keeps that queue short; the
// uploads waiting for a slot are parked, not runnable. A slot is given up
// while its request waits for the network, so a slow client holds none.
package cpugate

import (
	"context"
	"io"
)

// Gate is a bound on concurrent CPU-heavy work.
type Gate struct{ slots chan struct{} }

// New returns a gate for n holders at once (at least one).
func New(n int) *Gate {
	return &Gate{slots: make(chan struct{}, max(1, n))}
}

// Slot is one request's use of the gate, reading its body through r: Read
// leaves the gate while it waits for r, and enters again before returning.
type Slot struct {
	g    *Gate
	ctx  context.Context
	r    io.Reader
	held bool
}

// Slot returns a slot (not yet entered) whose reads come from r.
func (g *Gate) Slot(ctx context.Context, r io.Reader) *Slot {
	return &Slot{g: g, ctx: ctx, r: r}
}

// Enter waits for a place in the gate (or for the context's end).
func (s *Slot) Enter() error {
	if s.held {
		return nil
	}
	select {
	case s.g.slots <- struct{}{}:
		s.held = true
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// Leave gives the place back; it does nothing if the slot holds none.
func (s *Slot) Leave() {
	if s.held {
		s.held = false
		<-s.g.slots
	}
}

// Read reads from the slot's reader outside the gate.
func (s *Slot) Read(p []byte) (int, error) {
	if !s.held {
		return s.r.Read(p)
	}
	s.Leave()
	n, err := s.r.Read(p)
	if e := s.Enter(); e != nil && err == nil {
		err = e
	}
	return n, err
}
