// Package apiclient is the typed HTTP client of ib's API, used by the
// commands and the tests. Transient failures (connection refused or reset,
// timeouts, 5xx, 429) are retried with exponential backoff and jitter, long
// enough to ride out a server restart; 4xx answers fail at once.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ib/internal/api"
	"ib/internal/manifest"
	"ib/internal/throttle"
)

// Retry is the backoff policy.
type Retry struct {
	Initial    time.Duration // first wait
	Max        time.Duration // longest single wait
	MaxElapsed time.Duration // give up after this long
}

// DefaultRetry rides out a server restart of 30 seconds with room to spare.
var DefaultRetry = Retry{Initial: 200 * time.Millisecond, Max: 5 * time.Second, MaxElapsed: 90 * time.Second}

// QuickRetry is for questions (list, show): a server that is down is said
// so within about ten seconds.
var QuickRetry = Retry{Initial: 200 * time.Millisecond, Max: 2 * time.Second, MaxElapsed: 10 * time.Second}

// Client talks to one ib server. It sends its token on writes only, and on
// reads once the server has asked for it (a 401 to a read: a private
// server): a token is never handed out where it is not needed.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
	Retry Retry
	// OnRetry, if set, hears of each retried failure (for logs).
	OnRetry func(op string, err error, wait time.Duration)
	// OnWarn, if set, hears once that the token goes over plain HTTP to a
	// host that is not this machine.
	OnWarn func(msg string)
	// Upload and Download, if set, cap the bytes per second of request
	// and response bodies over every request at once (--limit-upload,
	// --limit-download).
	Upload, Download *throttle.Bucket

	readAuth atomic.Bool // the server wants the token on reads too
	warned   sync.Once
}

// New returns a client for the server at rawURL.
func New(rawURL, token string) (*Client, error) {
	u, err := ParseServerURL(rawURL)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.ResponseHeaderTimeout = 10 * time.Minute // a commit of a huge manifest takes a while
	return &Client{base: u, token: token, hc: &http.Client{Transport: tr}, Retry: DefaultRetry}, nil
}

// ParseServerURL checks a server URL: http or https, a host, no query.
func ParseServerURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("invalid server URL %q: want http(s)://HOST[:PORT]", raw)
	}
	return u, nil
}

// TrustCA makes the client accept server certificates signed by the CA
// in pemFile (a private CA), besides the system's.
func (c *Client) TrustCA(pemFile string) error {
	pem, err := os.ReadFile(pemFile)
	if err != nil {
		return fmt.Errorf("CA certificate: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("CA certificate %s: no PEM certificate in it", pemFile)
	}
	tr := c.hc.Transport.(*http.Transport)
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return nil
}

// tlsError recognises a certificate the client refuses: no retry mends it.
func tlsError(err error) bool {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) || errors.As(err, &verify)
}

// URL is the server's base URL.
func (c *Client) URL() string { return c.base.String() }

// warnPlain warns once when the token is about to cross a network in the
// clear.
func (c *Client) warnPlain() {
	if c.base.Scheme != "http" || c.OnWarn == nil {
		return
	}
	host := c.base.Hostname()
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		return
	}
	c.warned.Do(func() {
		c.OnWarn(fmt.Sprintf("the token goes to %s over plain HTTP: anyone on the network path can read it; use https://", c.base))
	})
}

// HasToken reports whether the client can write.
func (c *Client) HasToken() bool { return c.token != "" }

// Error is an answer of the server other than success.
type Error struct {
	Op     string // "PUT /api/v1/blocks/…"
	Status int
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %d %s: %s", e.Op, e.Status, http.StatusText(e.Status), e.Msg)
}

// HTTPStatus is the status the server answered.
func (e *Error) HTTPStatus() int { return e.Status }

// IsNotFound reports a 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

func transient(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
}

// request is one API call; body returns a fresh body for every attempt.
type request struct {
	write  bool // sends the token (writes, and questions about it)
	method string
	path   string
	query  url.Values
	body   func() (io.ReadCloser, int64, error)
	ctype  string
	header http.Header
	ok     []int // statuses that are success (default 200)
	// okAfterLoss are statuses that are success once an earlier attempt
	// may have reached the server and its answer was lost (a broken
	// connection, a gateway's 502 or 504): a retried DELETE answered 404
	// found the work done.
	okAfterLoss []int
}

// do sends r with retries and returns the successful response (the caller
// closes its body).
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	u := *c.base
	u.Path = c.base.Path + r.path
	u.RawQuery = r.query.Encode()
	op := r.method + " " + u.String()
	start := time.Now()
	wait := c.Retry.Initial
	lost := false // an earlier attempt may have done the work
	for attempt := 1; ; attempt++ {
		resp, err := c.once(ctx, r, u.String())
		var retryable bool
		if err == nil {
			if isOK(resp.StatusCode, r.ok) || (lost && isOK(resp.StatusCode, r.okAfterLoss)) {
				return resp, nil
			}
			if resp.StatusCode == http.StatusUnauthorized && !r.write && c.token != "" && !c.readAuth.Load() {
				// A private server: reads need the token too.
				resp.Body.Close()
				c.readAuth.Store(true)
				attempt--
				continue
			}
			apiErr := readError(resp, op)
			resp.Body.Close()
			if !transient(resp.StatusCode) {
				return nil, apiErr
			}
			err, retryable = apiErr, true
			// a gateway's error may hide a server that did the work
			lost = lost || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout
		} else {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var pe permanentError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s: %w", op, pe.err)
			}
			if tlsError(err) {
				return nil, fmt.Errorf("%s: the server's TLS certificate is not trusted (for a private CA pass --ca-cert): %w", op, err)
			}
			err, retryable = &unreachable{server: c.base.String(), err: fmt.Errorf("%s: %w", op, err)}, true
			lost = true // the request may have reached the server
		}
		if !retryable || time.Since(start)+wait > c.Retry.MaxElapsed {
			if u, ok := err.(*unreachable); ok {
				u.attempts, u.took = attempt, time.Since(start).Round(time.Second)
			}
			return nil, fmt.Errorf("%w (gave up after %d attempts in %s)", err, attempt, time.Since(start).Round(time.Second))
		}
		// full jitter in [wait/2, wait*3/2)
		d := wait/2 + time.Duration(rand.Int64N(int64(wait)+1))
		if c.OnRetry != nil {
			c.OnRetry(op, err, d)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
		wait = min(wait*2, c.Retry.Max)
	}
}

// unreachable is a server that did not answer at all.
type unreachable struct {
	server   string
	err      error
	attempts int
	took     time.Duration
}

func (u *unreachable) Error() string {
	if u.attempts == 0 {
		return u.err.Error()
	}
	return fmt.Sprintf("server %s does not answer (%v): is it running? see `ib login`", u.server, u.err)
}

func (u *unreachable) Unwrap() error { return u.err }

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }

func (c *Client) once(ctx context.Context, r request, u string) (*http.Response, error) {
	var body io.ReadCloser
	var length int64 = -1
	if r.body != nil {
		b, n, err := r.body()
		if err != nil {
			// the body cannot be made (a local file is gone): no retry helps
			return nil, permanentError{err}
		}
		body, length = c.Upload.Reader(ctx, b), n
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		if body != nil {
			body.Close()
		}
		return nil, permanentError{err}
	}
	if length >= 0 {
		req.ContentLength = length
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if c.token != "" && (r.write || c.readAuth.Load()) {
		c.warnPlain()
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err == nil {
		resp.Body = c.Download.Reader(ctx, resp.Body)
	}
	if err != nil {
		// A body whose reader says its error is permanent (a local file
		// that changed or vanished) is not retried.
		var p interface{ Permanent() bool }
		if errors.As(err, &p) && p.Permanent() {
			return nil, permanentError{err}
		}
	}
	return resp, err
}

func isOK(status int, ok []int) bool {
	if len(ok) == 0 {
		return status == http.StatusOK
	}
	for _, s := range ok {
		if s == status {
			return true
		}
	}
	return false
}

func readError(resp *http.Response, op string) *Error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return &Error{Op: op, Status: resp.StatusCode, Msg: msg}
}

func jsonBody(v any) func() (io.ReadCloser, int64, error) {
	b, err := json.Marshal(v)
	return func() (io.ReadCloser, int64, error) {
		if err != nil {
			return nil, 0, err
		}
		return io.NopCloser(bytes.NewReader(b)), int64(len(b)), nil
	}
}

func decode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", resp.Request.Method, resp.Request.URL, err)
	}
	return nil
}

// Missing asks which of cids the server lacks.
func (c *Client) Missing(ctx context.Context, cids []string) ([]string, error) {
	resp, err := c.do(ctx, request{write: true, method: "POST", path: "/api/v1/blocks/missing",
		body: jsonBody(map[string][]string{"cids": cids}), ctype: "application/json"})
	if err != nil {
		return nil, err
	}
	var out struct {
		Missing []string `json:"missing"`
	}
	return out.Missing, decode(resp, &out)
}

// PutBlock uploads a block's wire form; body opens it afresh for each
// attempt (size -1 when unknown).
func (c *Client) PutBlock(ctx context.Context, cid string, body func() (io.ReadCloser, int64, error)) error {
	resp, err := c.do(ctx, request{write: true, method: "PUT", path: "/api/v1/blocks/" + url.PathEscape(cid),
		body: body, ctype: "application/x-lz4", ok: []int{http.StatusNoContent, http.StatusOK}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// PutBlocks uploads a pack of small blocks (block.AppendFrame).
func (c *Client) PutBlocks(ctx context.Context, pack []byte) error {
	resp, err := c.do(ctx, request{write: true, method: "POST", path: "/api/v1/blocks", ctype: "application/x-ib-pack",
		body: func() (io.ReadCloser, int64, error) {
			return io.NopCloser(bytes.NewReader(pack)), int64(len(pack)), nil
		}, ok: []int{http.StatusOK, http.StatusNoContent}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// GetBlock opens a block's wire form.
func (c *Client) GetBlock(ctx context.Context, cid string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, request{method: "GET", path: "/api/v1/blocks/" + url.PathEscape(cid)})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// FetchBlocks downloads the wire forms of many blocks as one pack (see
// block.ReadFrameHeader), in the order asked.
func (c *Client) FetchBlocks(ctx context.Context, cids []string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, request{method: "POST", path: "/api/v1/blocks/fetch",
		body: jsonBody(map[string][]string{"cids": cids}), ctype: "application/json"})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Commit sends a manifest commit. It returns the backup's id, or the CIDs
// the server lacks (and no id) on 409.
func (c *Client) Commit(ctx context.Context, body func() (io.ReadCloser, int64, error), h CommitHeader) (Committed, error) {
	hdr := http.Header{}
	if h.Tags != nil {
		hdr.Set("X-Ib-Tags", h.Tags.Canonical())
		hdr.Set("X-Ib-Idempotency-Key", h.Key)
		if h.Parallel {
			hdr.Set("X-Ib-Parallel", "1")
		}
	}
	if h.Job > 0 {
		hdr.Set("X-Ib-Job", strconv.FormatInt(h.Job, 10))
	}
	resp, err := c.do(ctx, request{write: true, method: "POST", path: "/api/v1/backups", body: body, header: hdr,
		ctype: "application/json", ok: []int{http.StatusCreated, http.StatusOK, http.StatusConflict}})
	if err != nil {
		return Committed{}, err
	}
	var out Committed
	if err := decode(resp, &out); err != nil {
		return Committed{}, err
	}
	if resp.StatusCode == http.StatusConflict {
		return Committed{Missing: out.Missing}, nil
	}
	out.Missing = nil
	return out, nil
}

// CommitHeader tells the server, before it reads the body, which tag set a
// commit is for, so that it can refuse a second backup of one tag set from
// one host at once (423) unless Parallel.
type CommitHeader struct {
	Tags     manifest.Tags
	Key      string // the commit's idempotency key: its retries are the same backup
	Parallel bool
	Job      int64 // the activity job the backup reports to (0: none)
}

// IsLocked reports a 423: another backup of the tag set is being committed.
func IsLocked(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusLocked
}

// Committed is the server's answer to a commit: the backup, or the blocks
// it lacks (then no backup was made).
type Committed struct {
	ID int64 `json:"id"`
	// CreatedAt is zero from a server that does not send it.
	CreatedAt time.Time `json:"created_at"`
	Missing   []string  `json:"missing"`
}

func tagQuery(tags manifest.Tags) url.Values {
	q := url.Values{}
	for k, v := range tags {
		q.Set(k, v)
	}
	return q
}

// List returns the backups whose tags include filter, newest first.
func (c *Client) List(ctx context.Context, filter manifest.Tags) ([]manifest.Summary, error) {
	resp, err := c.do(ctx, request{method: "GET", path: "/api/v1/backups", query: tagQuery(filter)})
	if err != nil {
		return nil, err
	}
	var out []manifest.Summary
	return out, decode(resp, &out)
}

// Latest returns the newest backup whose tags equal tags.
func (c *Client) Latest(ctx context.Context, tags manifest.Tags) (manifest.Summary, error) {
	resp, err := c.do(ctx, request{method: "GET", path: "/api/v1/backups/latest", query: tagQuery(tags)})
	if err != nil {
		return manifest.Summary{}, err
	}
	var out manifest.Summary
	return out, decode(resp, &out)
}

// Backup returns one backup's summary.
func (c *Client) Backup(ctx context.Context, id int64) (manifest.Summary, error) {
	resp, err := c.do(ctx, request{method: "GET", path: "/api/v1/backups/" + strconv.FormatInt(id, 10)})
	if err != nil {
		return manifest.Summary{}, err
	}
	var out manifest.Summary
	return out, decode(resp, &out)
}

// Manifest opens a backup's manifest stream.
func (c *Client) Manifest(ctx context.Context, id int64) (io.ReadCloser, error) {
	resp, err := c.do(ctx, request{method: "GET", path: "/api/v1/backups/" + strconv.FormatInt(id, 10) + "/manifest"})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Delete deletes a backup.
func (c *Client) Delete(ctx context.Context, id int64) error {
	resp, err := c.do(ctx, request{write: true, method: "DELETE", path: "/api/v1/backups/" + strconv.FormatInt(id, 10),
		ok: []int{http.StatusNoContent, http.StatusOK}, okAfterLoss: []int{http.StatusNotFound}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Health checks that the server answers /healthz.
func (c *Client) Health(ctx context.Context) error {
	resp, err := c.do(ctx, request{method: "GET", path: "/healthz"})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Prune asks the server to prune: with req nil, by its own retention.
func (c *Client) Prune(ctx context.Context, req *api.PruneRequest) (api.PruneAnswer, error) {
	r := request{write: true, method: "POST", path: "/api/v1/prune", ctype: "application/json"}
	if req != nil {
		r.body = jsonBody(req)
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return api.PruneAnswer{}, err
	}
	var out api.PruneAnswer
	return out, decode(resp, &out)
}

// Stats returns the server's counts and sizes.
func (c *Client) Stats(ctx context.Context) (api.Stats, error) {
	resp, err := c.do(ctx, request{method: "GET", path: "/api/v1/stats"})
	if err != nil {
		return api.Stats{}, err
	}
	var out api.Stats
	return out, decode(resp, &out)
}

// Identity is what a server says of the client's token, and of itself.
type Identity struct {
	Scope      string `json:"scope"` // "none", "read", "append", "admin"
	Name       string `json:"name"`
	InlineCIDs bool   `json:"inline_cids"` // the server takes identity CIDs (block.Inline)
}

// WhoAmI returns what the server says of the client's token.
func (c *Client) WhoAmI(ctx context.Context) (Identity, error) {
	resp, err := c.do(ctx, request{write: true, method: "GET", path: "/api/v1/whoami"})
	if err != nil {
		return Identity{}, err
	}
	var out Identity
	return out, decode(resp, &out)
}

// SpoolManifest downloads a backup's manifest into f (truncated first),
// starting again when the connection is cut in the middle, a few times.
// f is left at offset 0.
func SpoolManifest(ctx context.Context, api interface {
	Manifest(ctx context.Context, id int64) (io.ReadCloser, error)
}, id int64, f *os.File) error {
	var err error
	for attempt := 1; attempt <= 4; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 300 * time.Millisecond):
			}
		}
		if err = spoolOnce(ctx, api.Manifest, id, f); err == nil || ctx.Err() != nil {
			return err
		}
		var apiErr *Error
		if errors.As(err, &apiErr) || errors.Is(err, ErrManifestTooLarge) {
			return err // the server answered: no point in asking again
		}
	}
	return fmt.Errorf("download manifest of backup %d: %w", id, err)
}

func spoolOnce(ctx context.Context, open func(context.Context, int64) (io.ReadCloser, error), id int64, f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	body, err := open(ctx, id)
	if err != nil {
		return err
	}
	defer body.Close()
	n, err := io.Copy(f, io.LimitReader(body, maxManifest+1))
	if err != nil {
		return err
	}
	if n > maxManifest {
		return fmt.Errorf("manifest of backup %d: %w (%d bytes, the most a server accepts)", id, ErrManifestTooLarge, maxManifest)
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// ErrManifestTooLarge is a manifest larger than any server accepts: a
// hostile server's, refused before it fills the disk.
var ErrManifestTooLarge = errors.New("manifest too large")

// maxManifest is api.MaxManifestBytes; tests lower it.
var maxManifest int64 = api.MaxManifestBytes
