package ibtest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// CuttingProxy forwards TCP connections to a server and cuts some of them
// in the middle: every Every-th connection is closed after After bytes
// from the client (mid-request-body) or from the server (mid-response).
type CuttingProxy struct {
	URL   string
	Every int64
	After int64
	Cuts  atomic.Int64

	ln    net.Listener
	n     atomic.Int64
	wg    sync.WaitGroup
	conns sync.Map
}

// StartCuttingProxy proxies to the server at target (host:port).
func StartCuttingProxy(t testing.TB, target string, every, after int64) *CuttingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CuttingProxy{URL: "http://" + ln.Addr().String(), Every: every, After: after, ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.serve(c, target) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		p.wg.Wait()
	})
	return p
}

func (p *CuttingProxy) serve(c net.Conn, target string) {
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Close()
		return
	}
	p.conns.Store(c, true)
	p.conns.Store(up, true)
	defer func() { c.Close(); up.Close(); p.conns.Delete(c); p.conns.Delete(up) }()
	cut := p.Every > 0 && p.n.Add(1)%p.Every == 0
	limit := int64(-1)
	if cut {
		limit = p.After
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		var r io.Reader = src
		if limit >= 0 {
			r = io.LimitReader(src, limit)
		}
		io.Copy(dst, r)
		if limit >= 0 {
			p.Cuts.Add(1)
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done // one side ended (or was cut): drop both
}

// FailingFront answers the first Fails requests with Status, then passes
// every request on to the server behind it.
type FailingFront struct {
	URL      string
	Failed   atomic.Int64
	Fails    int64
	Status   int
	requests atomic.Int64
}

// StartFailingFront puts a failing front before the server at target URL.
func StartFailingFront(t testing.TB, target string, fails int64, status int) *FailingFront {
	t.Helper()
	return startFront(t, target, fails, status, false)
}

// StartLosingFront puts a front before the server at target URL that passes
// the first loses requests on to the server but loses their answers,
// replying status instead: a load balancer whose connection to a server
// broke after the server had done the work.
func StartLosingFront(t testing.TB, target string, loses int64, status int) *FailingFront {
	t.Helper()
	return startFront(t, target, loses, status, true)
}

// startFront answers the first n requests with status, after passing them
// on to the server if pass; then it passes every request on.
func startFront(t testing.TB, target string, n int64, status int, pass bool) *FailingFront {
	t.Helper()
	f := &FailingFront{Fails: n, Status: status}
	f.URL = serveFront(t, target, func(rp http.Handler, w http.ResponseWriter, r *http.Request) {
		if f.requests.Add(1) <= f.Fails {
			if pass {
				rp.ServeHTTP(httptest.NewRecorder(), r)
			} else {
				io.Copy(io.Discard, r.Body)
			}
			f.Failed.Add(1)
			w.Header().Set("Retry-After", "0")
			http.Error(w, `{"error":"injected failure"}`, f.Status)
			return
		}
		rp.ServeHTTP(w, r)
	})
	return f
}

// serveFront serves handle on a loopback URL until the test ends, with rp
// the reverse proxy to the server at target URL.
func serveFront(t testing.TB, target string, handle func(rp http.Handler, w http.ResponseWriter, r *http.Request)) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handle(rp, w, r) }))
	t.Cleanup(srv.Close)
	return srv.URL
}

// Call is one request a RecordingFront passed on: when it came in and when
// its answer went back.
type Call struct {
	Method, Path string
	Start, End   time.Time
}

// RecordingFront passes every request on to the server after Delay, as a
// link with that round trip would, and records each one.
type RecordingFront struct {
	URL   string
	mu    sync.Mutex
	calls []Call
}

// StartRecordingFront puts a recording front before the server at target.
func StartRecordingFront(t testing.TB, target string, delay time.Duration) *RecordingFront {
	t.Helper()
	f := &RecordingFront{}
	f.URL = serveFront(t, target, func(rp http.Handler, w http.ResponseWriter, r *http.Request) {
		c := Call{Method: r.Method, Path: r.URL.Path, Start: time.Now()}
		time.Sleep(delay)
		rp.ServeHTTP(w, r)
		c.End = time.Now()
		f.mu.Lock()
		f.calls = append(f.calls, c)
		f.mu.Unlock()
	})
	return f
}

// Calls returns the calls recorded since the last Reset, in the order
// their answers went back.
func (f *RecordingFront) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Reset forgets the calls recorded so far.
func (f *RecordingFront) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}
