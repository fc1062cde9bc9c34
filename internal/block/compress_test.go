package block

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"
)

// sample returns n bytes cycling through the kinds of data a node's folder
// holds, in 300 KiB stretches: random, log text, zero-padded records, zeros.
func sample(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]byte, 0, n)
	for k := 0; len(out) < n; k++ {
		m := min(300<<10, n-len(out))
		switch k % 4 {
		case 0:
			for range m {
				out = append(out, byte(rng.Uint32()))
			}
		case 1:
			for len(out) < cap(out) && m > 0 {
				line := fmt.Sprintf(`{"ts":%d,"level":"INFO","msg":"Imported new chain segment","number":%d}`+"\n", rng.Uint32(), rng.Uint32()%1000)
				line = line[:min(len(line), m)]
				out = append(out, line...)
				m -= len(line)
			}
		case 2:
			for i := 0; i < m; i++ {
				if i%128 < 40 {
					out = append(out, byte(rng.Uint32()))
				} else {
					out = append(out, 0)
				}
			}
		case 3:
			out = append(out, make([]byte, m)...)
		}
	}
	return out
}

func decode(t *testing.T, wire []byte, want []byte) {
	t.Helper()
	var got bytes.Buffer
	n, err := Verify(bytes.NewReader(wire), Sum(want), MaxSize, &got)
	if err != nil {
		t.Fatalf("decode %d-byte input: %v", len(want), err)
	}
	if n != int64(len(want)) || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("decoded %d bytes, not the %d written", n, len(want))
	}
}

// TestCompressorRoundTrip: every level, sizes around the frame block size,
// both entry points; the frames decode to the input with pierrec's reader,
// and compressible data shrinks while random data costs at most the headers.
func TestCompressorRoundTrip(t *testing.T) {
	data := sample(1, 3*frameBytes+12345)
	for _, name := range []string{"fast", "1", "max"} {
		lv, _ := ParseLevel(name)
		c, err := NewCompressor(lv, 2, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{0, 1, 100, frameBytes - 1, frameBytes, frameBytes + 1, len(data)} {
			var wire bytes.Buffer
			read, err := c.Encode(context.Background(), &wire, bytes.NewReader(data[:n]))
			if err != nil || read != int64(n) {
				t.Fatalf("level %s, %d bytes: read %d, %v", name, n, read, err)
			}
			decode(t, wire.Bytes(), data[:n])
			small, err := c.AppendWire(context.Background(), []byte("x"), data[:n])
			if err != nil || small[0] != 'x' || !bytes.Equal(small[1:], wire.Bytes()) {
				t.Fatalf("level %s, %d bytes: AppendWire differs from Encode (%v)", name, n, err)
			}
		}
		var wire bytes.Buffer
		c.Encode(context.Background(), &wire, bytes.NewReader(data))
		if r := float64(len(data)) / float64(wire.Len()); r < 1.5 {
			t.Errorf("level %s: ratio %.2f on mixed data, want ≥ 1.5", name, r)
		}
		random := sample(2, 300<<10) // the first stretch is random
		wire.Reset()
		c.Encode(context.Background(), &wire, bytes.NewReader(random))
		if over := wire.Len() - len(random); over < 0 || over > 7+4+4 {
			t.Errorf("level %s: random data grew by %d bytes, want headers only (stored block)", name, over)
		}
		c.Close()
	}
}

// TestCompressorDecodesWithLZ4CLI: the reference decoder reads the frames.
func TestCompressorDecodesWithLZ4CLI(t *testing.T) {
	lz4cli, err := exec.LookPath("lz4")
	if err != nil {
		t.Fatal("lz4 not installed (scripts/test installs it)")
	}
	data := sample(3, 2*frameBytes+777)
	c, _ := NewCompressor(DefaultLevel, 2, 4)
	defer c.Close()
	var wire bytes.Buffer
	if _, err := c.Encode(context.Background(), &wire, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(lz4cli, "-d", "-c")
	cmd.Stdin = &wire
	out, err := cmd.Output()
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("lz4 -d: %d bytes, %v", len(out), err)
	}
}

// TestCompressorManyStreams: more concurrent encodes than buffers, each with
// a slow writer, all complete with the right bytes (no stream waits for a
// buffer while holding finished ones).
func TestCompressorManyStreams(t *testing.T) {
	c, _ := NewCompressor(DefaultLevel, 2, 3)
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := sample(uint64(10+i), (i%4+1)*frameBytes/2+i)
			var wire bytes.Buffer
			sw := slowWriter{&wire}
			if _, err := c.Encode(context.Background(), sw, bytes.NewReader(data)); err != nil {
				errs <- err
				return
			}
			if _, err := Verify(&wire, Sum(data), MaxSize, nil); err != nil {
				errs <- err
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("encodes did not finish: deadlock")
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

type slowWriter struct{ w io.Writer }

func (s slowWriter) Write(p []byte) (int, error) {
	time.Sleep(time.Millisecond)
	return s.w.Write(p)
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk on fire")
	}
	f.after--
	return len(p), nil
}

// TestCompressorErrors: a failing writer, a failing reader and a cancelled
// context end the encode with that error and give every buffer back.
func TestCompressorErrors(t *testing.T) {
	c, _ := NewCompressor(Level{}, 2, 4)
	defer c.Close()
	data := sample(4, 5*frameBytes)
	if _, err := c.Encode(context.Background(), &failWriter{after: 2}, bytes.NewReader(data)); err == nil || err.Error() != "disk on fire" {
		t.Fatalf("failing writer: %v", err)
	}
	bad := io.MultiReader(bytes.NewReader(data[:frameBytes+5]), iotestErr{})
	if _, err := c.Encode(context.Background(), io.Discard, bad); err == nil || err.Error() != "read failed" {
		t.Fatalf("failing reader: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Encode(ctx, io.Discard, bytes.NewReader(data)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if n := len(c.free); n != 4 {
		t.Fatalf("%d of 4 buffers back after the failures", n)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("read failed") }

func TestRunHeavy(t *testing.T) {
	for _, tc := range []struct {
		seed uint64
		kind int // index of the stretch in sample
		want bool
	}{{5, 0, false}, {5, 1, false}, {5, 2, true}, {5, 3, true}} {
		d := sample(tc.seed, 4*(300<<10))
		stretch := d[tc.kind*(300<<10) : (tc.kind+1)*(300<<10)]
		if got := runHeavy(stretch); got != tc.want {
			t.Errorf("stretch %d: runHeavy = %v, want %v", tc.kind, got, tc.want)
		}
	}
}

// BenchmarkCompressor: one 32 MiB block of mixed data through all cores.
func BenchmarkCompressor(b *testing.B) {
	data := sample(6, 32<<20)
	for _, name := range []string{"fast", "1", "max"} {
		lv, _ := ParseLevel(name)
		b.Run(name, func(b *testing.B) {
			c, _ := NewCompressor(lv, runtime.GOMAXPROCS(0), 4*runtime.GOMAXPROCS(0))
			defer c.Close()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				c.Encode(context.Background(), io.Discard, bytes.NewReader(data))
			}
		})
	}
}
