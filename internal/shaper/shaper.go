// Package shaper is a TCP proxy that behaves like a network link: every
// byte arrives half a round trip after it was sent, and each direction
// carries at most its rate, shared by every connection through it (one
// link, as a WAN uplink is). It stands in for netem, which this kernel
// lacks; the benchmarks put it between ib's client and server.
package shaper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// chunkSize is the most the proxy reads at once: 1 ms of a 256 Mbit/s
// link, small enough that serialisation is smooth.
const chunkSize = 32 << 10

// Proxy forwards connections to a target through a shaped link.
type Proxy struct {
	ln     net.Listener
	target string
	rtt    time.Duration
	up     *line // client → target
	down   *line // target → client
	wg     sync.WaitGroup
}

// Listen starts a proxy on addr to target with round-trip time rtt and
// bytesPerSec each way (0: no cap).
func Listen(addr, target string, rtt time.Duration, bytesPerSec int64) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("shaper: %w", err)
	}
	p := &Proxy{ln: ln, target: target, rtt: rtt,
		up: newLine(rtt/2, bytesPerSec), down: newLine(rtt/2, bytesPerSec)}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops accepting; open connections end with their peers.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan bool, 2)
	go func() { done <- p.up.pump(ctx, client, server) }()
	go func() { done <- p.down.pump(ctx, server, client) }()
	if clean := <-done; !clean {
		cancel() // one side failed: end the other too
		client.Close()
		server.Close()
	}
	<-done
	client.Close()
	server.Close()
}

// line is one direction of the link: a propagation delay and a rate.
type line struct {
	delay time.Duration
	rate  float64 // bytes per second; 0 unlimited
	depth int     // chunks a connection may have in flight

	mu   sync.Mutex
	free time.Time // when the link has sent everything scheduled
}

func newLine(delay time.Duration, bytesPerSec int64) *line {
	l := &line{delay: delay, rate: float64(bytesPerSec)}
	inFlight := 4 << 20 // unlimited: enough for loopback
	if bytesPerSec > 0 {
		// the bytes a full link holds (rate × delay) and 20 ms more
		inFlight = int(float64(bytesPerSec) * (delay + 20*time.Millisecond).Seconds())
	}
	l.depth = max(inFlight/chunkSize, 8)
	return l
}

// schedule returns when n bytes read now reach the other end: after the
// link has sent what it holds and them (at its rate), plus the delay.
func (l *line) schedule(n int) time.Time {
	now := time.Now()
	if l.rate == 0 {
		return now.Add(l.delay)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	start := l.free
	if start.Before(now) {
		start = now
	}
	l.free = start.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	return l.free.Add(l.delay)
}

type chunk struct {
	b  []byte
	at time.Time
}

// pump copies src to dst through the line; at src's end it half-closes
// dst, so the other direction goes on, and reports true.
func (l *line) pump(ctx context.Context, src, dst net.Conn) (clean bool) {
	q := make(chan chunk, l.depth)
	wrote := make(chan error, 1)
	go func() {
		var err error
		for c := range q {
			if err != nil {
				continue // drain
			}
			if d := time.Until(c.at); d > 0 {
				time.Sleep(d)
			}
			_, err = dst.Write(c.b)
		}
		wrote <- err
	}()
	var rerr error
	for rerr == nil {
		b := make([]byte, chunkSize)
		var n int
		n, rerr = src.Read(b)
		if n > 0 {
			select {
			case q <- chunk{b[:n], l.schedule(n)}:
			case <-ctx.Done():
				rerr = ctx.Err()
			}
		}
	}
	close(q)
	werr := <-wrote
	if tc, ok := dst.(*net.TCPConn); ok && werr == nil && rerr == io.EOF {
		tc.CloseWrite()
		return true
	}
	return false
}

// ParseRate reads a link rate: "1Gbit", "100Mbit", "500kbit" (bits per
// second, as links are sold) or "0" (no cap); it returns bytes per second.
func ParseRate(s string) (int64, error) {
	if s == "0" || s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   float64
	}{{"Gbit", 1e9}, {"Mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil || f <= 0 {
				break
			}
			return int64(f * u.mult / 8), nil
		}
	}
	return 0, errors.New("invalid rate " + strconv.Quote(s) + ": want e.g. 1Gbit, 100Mbit or 0")
}
