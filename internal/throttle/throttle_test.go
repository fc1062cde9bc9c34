package throttle

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "50MiB": 50 << 20, "50MiB/s": 50 << 20, " 800KiB ": 800 << 10, "1GiB/s": 1 << 30} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"fast", "-1MiB", "10", "1KiB", "5 MB"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) took it", bad)
		}
	}
}

// Two readers share one bucket: together they cannot beat its rate. (A
// lower bound only: a slow machine makes it longer, never shorter.)
func TestSharedBucket(t *testing.T) {
	b := New(1 << 20) // 1 MiB/s, burst 52 KiB
	start := time.Now()
	done := make(chan int64, 2)
	for range 2 {
		go func() {
			n, _ := io.Copy(io.Discard, b.Reader(context.Background(), io.NopCloser(bytes.NewReader(make([]byte, 300<<10)))))
			done <- n
		}()
	}
	if n := <-done + <-done; n != 600<<10 {
		t.Fatalf("read %d bytes", n)
	}
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Fatalf("600 KiB through a 1 MiB/s bucket in %s", took)
	}
	if New(0) != nil || New(0).Reader(context.Background(), nil) != nil {
		t.Fatal("a zero rate must be no bucket")
	}
}

// A cancelled context ends a waiting read.
func TestCancel(t *testing.T) {
	b := New(16 << 10)
	ctx, cancel := context.WithCancel(context.Background())
	r := b.Reader(ctx, io.NopCloser(bytes.NewReader(make([]byte, 1<<20))))
	cancel()
	if _, err := io.Copy(io.Discard, r); err == nil {
		t.Fatal("a cancelled read went on")
	}
}
