// Package httpapi is ib's HTTP API on gin: one route table, thin handlers
// that call the store, bearer-token auth on writes, JSON errors.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"ib/internal/activity"
	"ib/internal/alerts"
	"ib/internal/api"
	"ib/internal/auth"
	"ib/internal/dist"
	"ib/internal/manifest"
	"ib/internal/metadb"
	"ib/internal/store"
	"ib/internal/units"
)

// Limits of request bodies other than blocks and manifests, and of tag
// filters (a tag set has a handful of tags).
const (
	maxTagFilters  = 32
	maxMissingBody = 16 << 20
	maxMissingCIDs = 100_000
	maxFetchBody   = 1 << 20
)

// Pruner runs retention and garbage collection.
type Pruner interface {
	// Kick asks for a prune soon, in the background.
	Kick()
	// Prune runs one now: req, or the server's retention when nil.
	Prune(ctx context.Context, req *store.PruneRequest) (store.PruneResult, error)
}

// API serves the store over HTTP.
type API struct {
	commits  openCommits
	store    *store.Store
	pruner   Pruner
	dist     *dist.Catalog
	keeper   auth.Keeper
	activity *activity.Log
	alerts   *alerts.Alerter
	log      *slog.Logger
	draining <-chan struct{}
}

// Config assembles the API.
type Config struct {
	Store  *store.Store
	Pruner Pruner
	// Activity is the jobs log.
	Activity *activity.Log
	// Alerts are the server's firing alerts.
	Alerts *alerts.Alerter
	// Tokens says what each bearer token may do.
	Tokens auth.Keeper
	// Private makes reads need a token too (scope read or more); the web
	// UI's own files, /healthz and the ib binaries stay public.
	Private bool
	Log     *slog.Logger
	// Middleware runs around every request (metrics).
	Middleware []gin.HandlerFunc
	// Dist offers the ib binaries for download.
	Dist *dist.Catalog
	// UI serves the web UI for every path outside /api/, /healthz and
	// /downloads/; nil serves nothing there.
	UI http.Handler
	// Draining is closed when the server starts shutting down: commits
	// still receiving their manifest (clients stream it while they back
	// up) are cut then, rather than holding the shutdown up.
	Draining <-chan struct{}
	// TrustedProxies are the addresses or CIDRs whose X-Forwarded-For
	// names the client (in logs); none by default.
	TrustedProxies []string
}

// New returns the gin engine serving the API.
func New(cfg Config) (*gin.Engine, error) {
	gin.SetMode(gin.ReleaseMode)
	if cfg.Dist == nil {
		cfg.Dist = dist.New("")
	}
	a := &API{store: cfg.Store, pruner: cfg.Pruner, activity: cfg.Activity, alerts: cfg.Alerts, dist: cfg.Dist, keeper: cfg.Tokens, log: cfg.Log, draining: cfg.Draining}
	r := gin.New()
	if err := r.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("trusted proxies: %w", err)
	}
	r.Use(a.logRequests, a.recover, secureHeaders)
	r.Use(cfg.Middleware...)
	r.HandleMethodNotAllowed = true
	r.NoRoute(func(c *gin.Context) {
		p := c.Request.URL.Path
		if cfg.UI == nil || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/downloads/") ||
			(c.Request.Method != http.MethodGet && c.Request.Method != http.MethodHead) {
			a.fail(c, http.StatusNotFound, errors.New("no such route"))
			return
		}
		c.Status(http.StatusOK) // gin has set 404 for unmatched routes
		cfg.UI.ServeHTTP(c.Writer, c.Request)
	})
	r.NoMethod(func(c *gin.Context) { a.fail(c, http.StatusMethodNotAllowed, errors.New("method not allowed")) })

	r.GET("/healthz", a.healthz)
	v1 := r.Group("/api/v1")
	appendOnly, admin := a.need(auth.Append), a.need(auth.Admin)
	// read is the chain of a read: public, but on a private server
	read := func(h gin.HandlerFunc) []gin.HandlerFunc {
		if cfg.Private {
			return []gin.HandlerFunc{a.need(auth.Read), h}
		}
		return []gin.HandlerFunc{h}
	}

	// The route table: every endpoint on one screen.
	v1.POST("/blocks/missing", appendOnly, a.missing)
	v1.PUT("/blocks/:cid", appendOnly, a.putBlock)
	v1.POST("/blocks", appendOnly, a.putBlocks)
	v1.GET("/blocks/:cid", read(a.getBlock)...)
	v1.POST("/blocks/fetch", read(a.fetchBlocks)...)
	v1.POST("/backups", appendOnly, a.commit)
	v1.GET("/backups", read(a.list)...)
	v1.GET("/backups/latest", read(a.latest)...)
	v1.GET("/backups/:id", read(a.show)...)
	v1.GET("/backups/:id/manifest", read(a.manifest)...)
	v1.GET("/backups/:id/tree", read(a.tree)...)
	v1.GET("/backups/:id/history", read(a.history)...)
	for _, get := range []func(string, ...gin.HandlerFunc) gin.IRoutes{v1.GET, v1.HEAD} {
		get("/backups/:id/files/*path", read(a.file)...)
		get("/backups/:id/archive.tar", read(a.archive)...)
		get("/backups/:id/archive.tar.lz4", read(a.archive)...)
		get("/backups/latest/archive.tar", read(a.latestArchive)...)
		get("/backups/latest/archive.tar.lz4", read(a.latestArchive)...)
	}
	v1.POST("/backups/:id/archive.tar", read(a.archive)...)
	v1.GET("/search", read(a.search)...)
	v1.GET("/downloads", a.downloads)
	r.GET("/downloads/:name", a.download)
	r.HEAD("/downloads/:name", a.download)
	v1.DELETE("/backups/:id", admin, a.delete)
	v1.POST("/prune", admin, a.prune)
	v1.GET("/stats", read(a.stats)...)
	v1.GET("/whoami", a.whoami)
	if cfg.Activity != nil {
		v1.POST("/jobs", appendOnly, a.startJob)
		v1.POST("/jobs/:jid/progress", appendOnly, a.jobProgress)
		v1.POST("/jobs/:jid/end", appendOnly, a.endJob)
		v1.GET("/jobs", read(a.jobs)...)
		v1.GET("/jobs/:jid", read(a.job)...)
		v1.GET("/events", read(a.events)...)
	}
	if cfg.Alerts != nil {
		v1.GET("/alerts", read(a.activeAlerts)...)
	}
	return r, nil
}

// need lets a request through only with a token of scope at least min:
// 401 without a known token, 403 with one that may not do this.
func (a *API) need(min auth.Scope) gin.HandlerFunc {
	return func(c *gin.Context) {
		tok, _ := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		scope, name := a.keeper.Scope(tok)
		switch {
		case scope == auth.None:
			a.fail(c, http.StatusUnauthorized, errors.New("missing or wrong token"))
			c.Abort()
		case scope < min:
			a.fail(c, http.StatusForbidden, fmt.Errorf("token %q has scope %s; this needs %s", name, scope, min))
			c.Abort()
		default:
			c.Next()
		}
	}
}

// whoami tells a client what its token may do (the web UI asks, to know
// whether to ask for one), and that this server takes inline CIDs (a
// client names tiny files by them only when told so).
func (a *API) whoami(c *gin.Context) {
	tok, _ := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	scope, name := a.keeper.Scope(tok)
	c.JSON(http.StatusOK, gin.H{"scope": scope.String(), "name": name, "inline_cids": true})
}

func (a *API) healthz(c *gin.Context) {
	kind := a.store.BlockStoreKind()
	if err := a.store.Health(c.Request.Context()); err != nil {
		a.log.Warn("health check failed", "request_id", requestID(c), "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "error": kind + " block store or database unavailable",
			"block_store": kind, "request_id": requestID(c)})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "block_store": kind})
}

func (a *API) missing(c *gin.Context) {
	var req struct {
		CIDs []string `json:"cids"`
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxMissingBody)
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		a.error(c, fmt.Errorf("%w: body: %w", store.ErrInvalid, err))
		return
	}
	if len(req.CIDs) > maxMissingCIDs {
		a.fail(c, http.StatusRequestEntityTooLarge, fmt.Errorf("at most %d CIDs per request", maxMissingCIDs))
		return
	}
	missing, err := a.store.Missing(c.Request.Context(), req.CIDs)
	if err != nil {
		a.error(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"missing": missing})
}

func (a *API) putBlock(c *gin.Context) {
	body := http.MaxBytesReader(c.Writer, c.Request.Body, store.MaxWireSize)
	if err := a.store.PutBlock(c.Request.Context(), c.Param("cid"), body, c.Request.ContentLength); err != nil {
		a.error(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// maxPack bounds a pack of small blocks.
const maxPack = 64 << 20

// putBlocks stores a pack of blocks (block.AppendFrame), each checked
// like a single PUT. A bad block stops the pack with a 400 naming it; the
// blocks before it are stored (harmless: content-addressed, and collected
// if no backup uses them).
func (a *API) putBlocks(c *gin.Context) {
	n, err := a.store.PutPack(c.Request.Context(), http.MaxBytesReader(c.Writer, c.Request.Body, maxPack))
	if err != nil {
		a.error(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"stored": n})
}

func (a *API) getBlock(c *gin.Context) {
	rc, size, err := a.store.OpenBlock(c.Request.Context(), c.Param("cid"))
	if err != nil {
		a.error(c, err)
		return
	}
	defer rc.Close()
	c.Header("Content-Length", strconv.FormatInt(size, 10))
	c.Header("Cache-Control", "public, max-age=31536000, immutable")
	c.Status(http.StatusOK)
	c.Writer.Header().Set("Content-Type", "application/x-lz4")
	var err2 error
	if f, ok := rc.(*os.File); ok {
		// From the local block store: the kernel copies the file to the
		// socket (sendfile) without passing it through user space.
		c.Writer.WriteHeaderNow()
		var n int64
		n, err2 = io.Copy(unwrap(c.Writer), f)
		c.Set(sentKey, n)
	} else {
		_, err2 = io.Copy(c.Writer, rc)
	}
	if err2 != nil {
		a.log.Warn("send block", "cid", c.Param("cid"), "err", err2)
	}
}

// cutOnDrain makes a commit's body reads fail once the server drains, and
// wakes a read blocked on a client with nothing to send yet.
func cutOnDrain(draining <-chan struct{}, stop <-chan struct{}, cut *atomic.Bool, rc *http.ResponseController) {
	select {
	case <-draining:
	case <-stop:
		return
	}
	cut.Store(true)
	for {
		rc.SetReadDeadline(time.Unix(1, 0))
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var errDraining = errors.New("the server is shutting down")

type drainBody struct {
	io.ReadCloser
	cut *atomic.Bool
}

func (d *drainBody) Read(p []byte) (int, error) {
	if d.cut.Load() {
		return 0, errDraining
	}
	return d.ReadCloser.Read(p)
}

// sentKey holds the bytes of a response written past gin's writer.
const sentKey = "ib.sent"

// BytesSent is the size of the response body written so far.
func BytesSent(c *gin.Context) int64 {
	return int64(max(c.Writer.Size(), 0)) + c.GetInt64(sentKey)
}

// fetchBlocks answers many small blocks in one pack: restoring a tree of
// small files is otherwise a request per file.
func (a *API) fetchBlocks(c *gin.Context) {
	var req struct {
		CIDs []string `json:"cids"`
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, maxFetchBody)
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		a.error(c, fmt.Errorf("%w: body: %w", store.ErrInvalid, err))
		return
	}
	c.Writer.Header().Set("Content-Type", "application/x-ib-pack")
	// Nothing is written before every CID is found, so errors are clean.
	w := &lazyStatus{c: c}
	if err := a.store.WriteBlocks(c.Request.Context(), req.CIDs, w); err != nil {
		if !w.started {
			a.error(c, err)
			return
		}
		a.cut(c, fmt.Sprintf("pack of %d blocks", len(req.CIDs)), err) // the client sees a short pack
	}
}

// lazyStatus sends 200 on the first write.
type lazyStatus struct {
	c       *gin.Context
	started bool
}

func (l *lazyStatus) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.c.Status(http.StatusOK)
	}
	return l.c.Writer.Write(p)
}

func (a *API) commit(c *gin.Context) {
	// One backup of a tag set from one host at a time, unless the client
	// says it means several (its retries carry the same key).
	if tags := c.GetHeader("X-Ib-Tags"); tags != "" && c.GetHeader("X-Ib-Parallel") == "" {
		key, idem := tags+"\x00"+c.ClientIP(), c.GetHeader("X-Ib-Idempotency-Key")
		if !a.commits.enter(key, idem) {
			a.fail(c, http.StatusLocked, errors.New("another backup of these tags from this host is being committed (two at once need --parallel)"))
			return
		}
		defer a.commits.leave(key, idem)
	}
	var body io.ReadCloser = http.MaxBytesReader(c.Writer, c.Request.Body, store.MaxManifestBytes)
	var cut atomic.Bool
	if a.draining != nil {
		stop := make(chan struct{})
		defer close(stop)
		go cutOnDrain(a.draining, stop, &cut, http.NewResponseController(c.Writer))
		body = &drainBody{ReadCloser: body, cut: &cut}
	}
	res, err := a.store.Commit(c.Request.Context(), body)
	if err != nil && cut.Load() {
		// Nothing was recorded; the client commits again once the
		// server is back. No answer: the request was never whole.
		a.log.Info("commit still receiving its manifest cut by the shutdown")
		a.cut(c, "commit", nil)
		return
	}
	if err != nil {
		a.error(c, err)
		return
	}
	if len(res.Missing) > 0 {
		c.JSON(http.StatusConflict, gin.H{"error": fmt.Sprintf("%d blocks are not stored", len(res.Missing)), "missing": res.Missing})
		return
	}
	a.committed(c, res.Backup)
	status := http.StatusCreated
	if res.Existed {
		status = http.StatusOK
	}
	c.JSON(status, gin.H{"id": res.ID, "created_at": res.CreatedAt})
}

func summary(b metadb.Backup) manifest.Summary {
	return manifest.Summary{ID: b.ID, Tags: b.Tags, CreatedAt: b.CreatedAt, Files: b.Files, Dirs: b.Dirs,
		Symlinks: b.Symlinks, Bytes: b.Bytes, Blocks: b.Blocks, Entries: b.Entries, Labels: b.Labels, AddedBytes: b.AddedBytes}
}

// queryTags reads KEY=VALUE query parameters as tags, but for the
// parameters named in skip.
func queryTags(c *gin.Context, skip ...string) (manifest.Tags, error) {
	tags := manifest.Tags{}
	q := c.Request.URL.Query()
	if len(q) > maxTagFilters+len(skip) {
		return nil, fmt.Errorf("%w: at most %d tags", store.ErrInvalid, maxTagFilters)
	}
	for k, vs := range q {
		if slices.Contains(skip, k) {
			continue
		}
		if len(vs) != 1 {
			return nil, fmt.Errorf("%w: tag %q given %d times", store.ErrInvalid, k, len(vs))
		}
		if err := manifest.CheckTag(k, vs[0]); err != nil {
			return nil, fmt.Errorf("%w: %w", store.ErrInvalid, err)
		}
		tags[k] = vs[0]
	}
	return tags, nil
}

func (a *API) list(c *gin.Context) {
	filter, err := queryTags(c)
	if err != nil {
		a.error(c, err)
		return
	}
	bs, err := a.store.List(c.Request.Context(), filter)
	if err != nil {
		a.error(c, err)
		return
	}
	out := make([]manifest.Summary, len(bs))
	for i, b := range bs {
		out[i] = summary(b)
	}
	c.JSON(http.StatusOK, out)
}

func (a *API) latest(c *gin.Context) {
	tags, err := queryTags(c)
	if err != nil {
		a.error(c, err)
		return
	}
	b, err := a.store.Latest(c.Request.Context(), tags)
	if err != nil {
		a.error(c, err)
		return
	}
	c.JSON(http.StatusOK, summary(b))
}

// backupID reads the :id of the route; on a bad one it answers 400 and
// returns false.
func (a *API) backupID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		a.error(c, fmt.Errorf("%w: backup id %q: want a positive integer", store.ErrInvalid, c.Param("id")))
		return 0, false
	}
	return id, true
}

func (a *API) show(c *gin.Context) {
	id, ok := a.backupID(c)
	if !ok {
		return
	}
	b, err := a.store.Backup(c.Request.Context(), id)
	if err != nil {
		a.error(c, err)
		return
	}
	c.JSON(http.StatusOK, summary(b))
}

func (a *API) manifest(c *gin.Context) {
	id, ok := a.backupID(c)
	if !ok {
		return
	}
	if _, err := a.store.Backup(c.Request.Context(), id); err != nil {
		a.error(c, err)
		return
	}
	c.Header("Content-Type", "application/json")
	c.Status(http.StatusOK)
	if err := a.store.WriteManifest(c.Request.Context(), id, c.Writer); err != nil {
		// The status is sent; cutting the connection tells the client.
		a.cut(c, fmt.Sprintf("manifest of backup %d", id), err)
	}
}

func (a *API) delete(c *gin.Context) {
	id, ok := a.backupID(c)
	if !ok {
		return
	}
	b, err := a.store.Delete(c.Request.Context(), id)
	if err != nil {
		a.error(c, err)
		return
	}
	a.activity.Record(c.Request.Context(), activity.KindDelete, b.Tags, c.ClientIP(), time.Time{}, activity.End{Status: activity.OK, BackupID: id, Bytes: b.Bytes, Files: b.Files})
	a.pruner.Kick()
	c.Status(http.StatusNoContent)
}

func (a *API) prune(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10))
	if err != nil {
		a.error(c, err)
		return
	}
	var req *store.PruneRequest
	if len(strings.TrimSpace(string(body))) > 0 {
		var pr api.PruneRequest
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&pr); err != nil {
			a.error(c, fmt.Errorf("%w: body: %w", store.ErrInvalid, err))
			return
		}
		if req, err = pruneRequest(pr); err != nil {
			a.error(c, err)
			return
		}
	}
	res, err := a.pruner.Prune(c.Request.Context(), req)
	if err != nil {
		a.error(c, err)
		return
	}
	ans := api.PruneAnswer{DryRun: req != nil && req.DryRun, Deleted: []api.PruneDecision{}, Kept: []api.PruneDecision{}, GC: res.GC.GCReport}
	for _, d := range res.Decisions {
		pd := api.PruneDecision{ID: d.ID, Tags: res.Tags[d.ID], CreatedAt: d.CreatedAt, Reason: d.Reason}
		if d.Delete {
			ans.Deleted = append(ans.Deleted, pd)
		} else {
			ans.Kept = append(ans.Kept, pd)
		}
	}
	c.JSON(http.StatusOK, ans)
}

func pruneRequest(pr api.PruneRequest) (*store.PruneRequest, error) {
	req := &store.PruneRequest{Filter: pr.Tags, DryRun: pr.DryRun}
	if err := pr.Tags.Check(); err != nil {
		return nil, fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	if pr.KeepLast != nil {
		if *pr.KeepLast < 0 {
			return nil, fmt.Errorf("%w: keep_last must not be negative", store.ErrInvalid)
		}
		req.Rules.KeepLast, req.Rules.HasKeepLast = *pr.KeepLast, true
	}
	if pr.OlderThan != "" {
		d, err := units.ParseDuration(pr.OlderThan)
		if err != nil {
			return nil, fmt.Errorf("%w: older_than: %w", store.ErrInvalid, err)
		}
		req.Rules.OlderThan, req.Rules.HasOlderThan = d, true
	}
	if !req.Rules.HasKeepLast && !req.Rules.HasOlderThan {
		return nil, fmt.Errorf("%w: give keep_last, older_than or both", store.ErrInvalid)
	}
	return req, nil
}

func (a *API) stats(c *gin.Context) {
	c.JSON(http.StatusOK, a.store.Stats())
}

// error maps an engine error to its status. A 5xx answer never carries the
// error's text (paths, SQL, hosts): the log line does, under the request id
// that the answer gives.
func (a *API) error(c *gin.Context, err error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		a.fail(c, http.StatusRequestEntityTooLarge, fmt.Errorf("body larger than %d bytes", mbe.Limit))
	case errors.Is(err, store.ErrInvalid):
		a.fail(c, http.StatusBadRequest, err)
	case errors.Is(err, store.ErrNotFound):
		a.fail(c, http.StatusNotFound, err)
	case errors.Is(err, store.ErrUnavailable):
		a.log.Warn("block store unavailable", "request_id", requestID(c), "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
		a.fail(c, http.StatusServiceUnavailable, errors.New(a.store.BlockStoreKind()+" block store unavailable"))
	case c.Request.Context().Err() != nil:
		a.fail(c, 499, errors.New("client went away"))
	default:
		a.log.Error("request failed", "request_id", requestID(c), "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
		a.fail(c, http.StatusInternalServerError, errInternal)
	}
}

var errInternal = errors.New("internal error")

// fail answers a JSON error; 5xx answers name the request id of the log
// line that tells what went wrong.
func (a *API) fail(c *gin.Context, status int, err error) {
	if c.Request.ContentLength < 0 {
		// A body of unknown length (a commit streamed while the client
		// backs up) is not read to its end: close the connection, or
		// net/http waits for 256 KiB more of it before sending this answer.
		c.Header("Connection", "close")
	}
	if status >= 500 {
		c.JSON(status, gin.H{"error": fmt.Sprintf("%v (request id %s)", err, requestID(c)), "request_id": requestID(c)})
		return
	}
	c.JSON(status, gin.H{"error": err.Error()})
}

func (a *API) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler { // a library's way to cut: ours, without the panic
				a.cut(c, c.Request.URL.Path, nil)
				return
			}
			a.log.Error("panic in handler", "request_id", requestID(c), "path", c.Request.URL.Path, "panic", v)
			a.fail(c, http.StatusInternalServerError, errInternal)
		}
	}()
	c.Next()
}

// requestIDKey holds the request's id: in the X-Request-Id header of the
// answer, in its log line, in 5xx bodies.
const requestIDKey = "ib.request_id"

func requestID(c *gin.Context) string { return c.GetString(requestIDKey) }

func (a *API) logRequests(c *gin.Context) {
	start := time.Now()
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	c.Set(requestIDKey, id)
	c.Header("X-Request-Id", id)
	defer func() {
		// also for a response cut mid-body (its panic passes through)
		a.log.Info("request", "method", c.Request.Method, "route", c.FullPath(), "status", c.Writer.Status(),
			"bytes", BytesSent(c), "took", time.Since(start), "client", c.ClientIP(), "request_id", id)
	}()
	c.Next()
}

// secureHeaders go on every answer: the UI loads its own scripts and
// styles only, in no frame, and no answer is sniffed into another type.
func secureHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	c.Next()
}

// openCommits are the commits being received, by tag set and host, with
// their idempotency keys.
type openCommits struct {
	mu sync.Mutex
	m  map[string]map[string]int
}

// enter registers a commit; false when one with another key is open.
func (o *openCommits) enter(key, idem string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.m[key] {
		if k != idem {
			return false
		}
	}
	if o.m == nil {
		o.m = map[string]map[string]int{}
	}
	if o.m[key] == nil {
		o.m[key] = map[string]int{}
	}
	o.m[key][idem]++
	return true
}

func (o *openCommits) leave(key, idem string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m[key][idem]--; o.m[key][idem] <= 0 {
		delete(o.m[key], idem)
	}
	if len(o.m[key]) == 0 {
		delete(o.m, key)
	}
}
