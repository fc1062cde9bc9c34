package httpapi

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// maxRangeHeader bounds the Range header ib reads; one range needs far less.
const maxRangeHeader = 200

// serveContent answers a GET or HEAD of a seekable body with
// http.ServeContent (conditional requests, Content-Length, one Range),
// with two rules of its own:
//
//   - One range at most. A request for several ranges, or with an absurd
//     Range header, is answered 200 with the whole body, as nginx does with
//     max_ranges 1: each range of a file restarts its reading, and
//     ServeContent answers several ranges from a goroutine of its own.
//   - A read error in the middle of the body (a corrupt or missing block)
//     cuts the connection, from the handler's own goroutine, so that the
//     client cannot take a short body for a whole one.
func (a *API) serveContent(c *gin.Context, modtime time.Time, body io.ReadSeeker, what string) {
	if r := c.Request.Header.Get("Range"); r != "" && (strings.Contains(r, ",") || len(r) > maxRangeHeader) {
		c.Request.Header.Del("Range")
	}
	rd := &errReader{r: body}
	http.ServeContent(c.Writer, c.Request, "", modtime, rd)
	if rd.err != nil {
		a.cut(c, what, rd.err)
	}
}

// cut ends a response after a failure in its body (or a request that must
// get no answer), without a panic: over HTTP/1 the connection is taken over
// and closed; where it cannot be (HTTP/2), a write deadline in the past
// resets the stream. The client sees a short body, never a whole-looking
// one, and the server goes on.
func (a *API) cut(c *gin.Context, what string, err error) {
	if err != nil && c.Request.Context().Err() == nil {
		a.log.Error("response cut", "request_id", requestID(c), "what", what, "err", err)
	}
	c.Abort()
	if _, ok := unwrap(c.Writer).(http.Hijacker); ok {
		// gin's own Hijack marks the response as written, so nothing is
		// written on the closed connection afterwards.
		if conn, _, herr := c.Writer.Hijack(); herr == nil {
			conn.Close()
			return
		}
	}
	rc := http.NewResponseController(c.Writer)
	rc.SetWriteDeadline(time.Unix(1, 0))
	rc.SetReadDeadline(time.Unix(1, 0))
}

// unwrap is the writer beneath gin's.
func unwrap(w http.ResponseWriter) http.ResponseWriter {
	if u, ok := w.(interface{ Unwrap() http.ResponseWriter }); ok {
		return u.Unwrap()
	}
	return w
}

// errReader keeps the first read error other than io.EOF.
type errReader struct {
	r   io.ReadSeeker
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

func (e *errReader) Seek(off int64, whence int) (int64, error) { return e.r.Seek(off, whence) }
