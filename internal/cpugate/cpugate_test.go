package cpugate

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// entered reports whether s enters within d.
func entered(s *Slot, d time.Duration) bool {
	done := make(chan error, 1)
	go func() { done <- s.Enter() }()
	select {
	case err := <-done:
		return err == nil
	case <-time.After(d):
		return false
	}
}

func TestGateBoundsHolders(t *testing.T) {
	g := New(2)
	ctx := context.Background()
	a, b, c := g.Slot(ctx, nil), g.Slot(ctx, nil), g.Slot(ctx, nil)
	if !entered(a, time.Second) || !entered(b, time.Second) {
		t.Fatal("the first two slots did not enter a gate of two")
	}
	done := make(chan error, 1)
	go func() { done <- c.Enter() }()
	select {
	case <-done:
		t.Fatal("a third slot entered a gate of two")
	case <-time.After(50 * time.Millisecond):
	}
	a.Leave()
	a.Leave() // a second Leave gives back nothing
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the third slot did not enter once the first left")
	}
	if entered(g.Slot(ctx, nil), 50*time.Millisecond) {
		t.Fatal("a fourth slot entered although a second Leave of one slot should give back nothing")
	}
}

// A slot waiting for its body holds no place: another request computes
// meanwhile, and the reader enters again before its data is used.
func TestReadLeavesTheGate(t *testing.T) {
	g := New(1)
	ctx := context.Background()
	pr, pw := io.Pipe()
	a := g.Slot(ctx, pr)
	if err := a.Enter(); err != nil {
		t.Fatal(err)
	}
	read := make(chan int, 1)
	go func() {
		buf := make([]byte, 8)
		n, _ := a.Read(buf)
		read <- n
	}()
	b := g.Slot(ctx, nil)
	if !entered(b, 5*time.Second) {
		t.Fatal("another slot could not enter while the first waited for its body")
	}
	go pw.Write([]byte("data"))
	select {
	case <-read:
		t.Fatal("the read returned while the gate was full")
	case <-time.After(50 * time.Millisecond):
	}
	b.Leave()
	select {
	case n := <-read:
		if n != 4 || !a.held {
			t.Fatalf("read %d bytes, held %v; want 4, true", n, a.held)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read did not return once the gate had room")
	}
}

func TestEnterEndsWithContext(t *testing.T) {
	g := New(1)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	s := g.Slot(ctx, pr)
	if err := s.Enter(); err != nil {
		t.Fatal(err)
	}
	read := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 1))
		read <- err
	}()
	other := g.Slot(context.Background(), nil)
	if !entered(other, 5*time.Second) { // the gate is full while s's read waits
		t.Fatal("another slot could not enter while the first waited for its body")
	}
	cancel()
	pw.Write([]byte("x"))
	select {
	case err := <-read:
		if !errors.Is(err, context.Canceled) || s.held {
			t.Fatalf("err %v, held %v; want context.Canceled and no place held", err, s.held)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read whose context ended waits for the gate")
	}
	if entered(g.Slot(context.Background(), nil), 50*time.Millisecond) {
		t.Fatal("the gate let a second holder in beside the one that holds its place")
	}
}
