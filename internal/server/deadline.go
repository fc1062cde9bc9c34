package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"time"
)

// MaxHeaderBytes bounds a request's headers (net/http's default is 1 MiB):
// ib's requests carry a few short headers.
const MaxHeaderBytes = 64 << 10

// deadlines bounds slow clients on both directions of a request: a body
// that pauses longer than readIdle is cut, and so is a response whose
// client stops reading for writeIdle. Neither bounds the whole request:
// a 100 GB download or a backup-long commit that keeps moving never times
// out.
func deadlines(readIdle, writeIdle time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &idleBody{ReadCloser: r.Body, rc: rc, idle: readIdle}
		}
		// A connection keeps its write deadline from one request to the
		// next (the server has no WriteTimeout): start without one, so a
		// long commit can answer after reading its body for hours.
		rc.SetWriteDeadline(time.Time{})
		next.ServeHTTP(&progressWriter{ResponseWriter: w, rc: rc, idle: writeIdle}, r)
	})
}

type idleBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	idle time.Duration
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.idle))
	return b.ReadCloser.Read(p)
}

// progressWriter moves the connection's write deadline forward as a
// response is written (at most four times per idle period, or once a
// second: all the precision a deadline of a minute needs).
type progressWriter struct {
	http.ResponseWriter
	rc   *http.ResponseController
	idle time.Duration
	set  time.Time
}

func (p *progressWriter) extend() {
	if now := time.Now(); now.Sub(p.set) >= min(time.Second, p.idle/4) {
		p.set = now
		p.rc.SetWriteDeadline(now.Add(p.idle))
	}
}

func (p *progressWriter) Write(b []byte) (int, error) {
	p.extend()
	return p.ResponseWriter.Write(b)
}

// ReadFrom keeps the connection's own ReadFrom (sendfile of a block file)
// in steps of 4 MiB, each with a fresh deadline.
func (p *progressWriter) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := p.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{p}, r)
	}
	var total int64
	for {
		p.extend()
		n, err := rf.ReadFrom(io.LimitReader(r, 4<<20))
		total += n
		if err != nil || n < 4<<20 {
			return total, err
		}
	}
}

func (p *progressWriter) Flush() {
	p.extend()
	p.rc.Flush()
}

// Hijack takes the connection over where the writer beneath allows it
// (HTTP/1); http.ErrNotSupported otherwise.
func (p *progressWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(p.ResponseWriter).Hijack()
}

// Unwrap gives http.ResponseController the writer beneath.
func (p *progressWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }
