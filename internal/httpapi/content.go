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

// cut ends a response whose status is already sent, after a failure in its
// body: the connection is closed (HTTP/1) or the stream reset (HTTP/2).
// net/http recovers http.ErrAbortHandler by design; it must only be raised
// on the handler's own goroutine.
func (a *API) cut(c *gin.Context, what string, err error) {
	if c.Request.Context().Err() == nil {
		a.log.Error("response cut", "what", what, "err", err)
	}
	panic(http.ErrAbortHandler)
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
