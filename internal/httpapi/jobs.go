package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"ib/internal/activity"
	"ib/internal/auth"
	"ib/internal/manifest"
	"ib/internal/metadb"
	"ib/internal/store"
)

// The activity endpoints: clients report their backups, restores and
// verifies as jobs (write token), everyone reads the log and its live
// stream. A job's client address is shown to token holders only.

const maxJobBody = 8 << 10

// decodeJobBody reads a small JSON body strictly.
func decodeJobBody(c *gin.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, maxJobBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fmt.Errorf("%w: body: %w", store.ErrInvalid, err)
	}
	return nil
}

// activityError maps the log's errors to the API's.
func activityError(err error) error {
	switch {
	case errors.Is(err, activity.ErrNotRunning), errors.Is(err, metadb.ErrNotFound):
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case errors.Is(err, activity.ErrTooMany):
		return fmt.Errorf("%w: %w", store.ErrInvalid, err)
	}
	return err
}

func (a *API) startJob(c *gin.Context) {
	var req struct {
		Kind string        `json:"kind"`
		Tags manifest.Tags `json:"tags"`
	}
	if err := decodeJobBody(c, &req); err != nil {
		a.error(c, err)
		return
	}
	// The key rides in a header (the Idempotency-Key of the IETF's
	// draft), which servers that predate it ignore.
	key := c.GetHeader("Idempotency-Key")
	if !validJobKey(key) {
		a.error(c, fmt.Errorf("%w: Idempotency-Key: want up to 64 letters, digits, - and _", store.ErrInvalid))
		return
	}
	if !slices.Contains(activity.ClientKinds, req.Kind) {
		a.error(c, fmt.Errorf("%w: kind %q: want one of %s", store.ErrInvalid, req.Kind, strings.Join(activity.ClientKinds, ", ")))
		return
	}
	if err := req.Tags.Check(); err != nil {
		a.error(c, fmt.Errorf("%w: tags: %w", store.ErrInvalid, err))
		return
	}
	// A start retried with its key gets the job it started, with the
	// same status as the first answer (which was lost).
	j, err := a.activity.StartKeyed(c.Request.Context(), req.Kind, req.Tags, c.ClientIP(), 0, key)
	if err != nil {
		a.error(c, activityError(err))
		return
	}
	c.JSON(http.StatusCreated, j)
}

// validJobKey: empty (no key), or up to 64 letters, digits, '-' and '_'.
func validJobKey(k string) bool {
	if len(k) > 64 {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (a *API) jobID(c *gin.Context) (int64, bool) {
	id, err := strconv.ParseInt(c.Param("jid"), 10, 64)
	if err != nil || id <= 0 {
		a.error(c, fmt.Errorf("%w: job id %q: want a positive integer", store.ErrInvalid, c.Param("jid")))
		return 0, false
	}
	return id, true
}

func (a *API) jobProgress(c *gin.Context) {
	id, ok := a.jobID(c)
	if !ok {
		return
	}
	var p activity.Progress
	if err := decodeJobBody(c, &p); err != nil {
		a.error(c, err)
		return
	}
	if p.Files < 0 || p.Bytes < 0 || p.BytesUploaded < 0 || p.TotalFiles < 0 || p.TotalBytes < 0 || len(p.Phase) > 32 {
		a.error(c, fmt.Errorf("%w: progress: negative counts or a phase over 32 bytes", store.ErrInvalid))
		return
	}
	if err := a.activity.Update(c.Request.Context(), id, p); err != nil {
		a.error(c, activityError(err))
		return
	}
	c.Status(http.StatusNoContent)
}

func (a *API) endJob(c *gin.Context) {
	id, ok := a.jobID(c)
	if !ok {
		return
	}
	var req struct {
		Status   string `json:"status"`
		BackupID int64  `json:"backup_id"`
		Bytes    int64  `json:"bytes"`
		Files    int64  `json:"files"`
		Error    string `json:"error"`
	}
	if err := decodeJobBody(c, &req); err != nil {
		a.error(c, err)
		return
	}
	if !slices.Contains(activity.EndStatuses, req.Status) || req.BackupID < 0 || req.Bytes < 0 || req.Files < 0 {
		a.error(c, fmt.Errorf("%w: want status one of %s and no negative count", store.ErrInvalid, strings.Join(activity.EndStatuses, ", ")))
		return
	}
	j, err := a.activity.Finish(c.Request.Context(), id, activity.End{Status: req.Status, BackupID: req.BackupID, Bytes: req.Bytes, Files: req.Files, Error: req.Error})
	if err != nil {
		a.error(c, activityError(err))
		return
	}
	c.JSON(http.StatusOK, a.shown(c, j))
}

// hasToken reports a request with a known token.
func (a *API) hasToken(c *gin.Context) bool {
	tok, _ := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	scope, _ := a.keeper.Scope(tok)
	return scope != auth.None
}

// shown hides a job's client address from requests without a token.
func (a *API) shown(c *gin.Context, j activity.Job) activity.Job {
	if !a.hasToken(c) {
		j.Client = ""
	}
	return j
}

func (a *API) jobs(c *gin.Context) {
	f := metadb.JobFilter{Kind: c.Query("kind"), Status: c.Query("status"), Limit: 100}
	if f.Kind != "" && !slices.Contains(activity.Kinds, f.Kind) {
		a.error(c, fmt.Errorf("%w: kind %q: want one of %s", store.ErrInvalid, f.Kind, strings.Join(activity.Kinds, ", ")))
		return
	}
	if f.Status != "" && !slices.Contains(activity.Statuses, f.Status) {
		a.error(c, fmt.Errorf("%w: status %q: want one of %s", store.ErrInvalid, f.Status, strings.Join(activity.Statuses, ", ")))
		return
	}
	if v := c.Query("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			a.error(c, fmt.Errorf("%w: before %q: want a positive integer", store.ErrInvalid, v))
			return
		}
		f.Before = n
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			a.error(c, fmt.Errorf("%w: limit %q: want 1 to 1000", store.ErrInvalid, v))
			return
		}
		f.Limit = n
	}
	tags, err := queryTags(c, "kind", "status", "before", "limit")
	if err != nil {
		a.error(c, err)
		return
	}
	f.Tags = tags
	js, err := a.activity.Jobs(c.Request.Context(), f)
	if err != nil {
		a.error(c, err)
		return
	}
	for i := range js {
		js[i] = a.shown(c, js[i])
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"jobs": js})
}

func (a *API) job(c *gin.Context) {
	id, ok := a.jobID(c)
	if !ok {
		return
	}
	j, err := a.activity.Job(c.Request.Context(), id)
	if err != nil {
		a.error(c, activityError(err))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, a.shown(c, j))
}

// sseHeartbeat keeps proxies and the write deadline from closing a quiet
// stream.
const sseHeartbeat = 15 * time.Second

// events is the Server-Sent Events stream of the activity log: first a
// "start" for each running job (a page reloaded mid-backup picks its
// progress up again), then every start, progress and end as it happens.
func (a *API) events(c *gin.Context) {
	ch, cancel, err := a.activity.Subscribe()
	if err != nil {
		c.Header("Retry-After", "30")
		a.fail(c, http.StatusServiceUnavailable, err)
		return
	}
	defer cancel()
	token := a.hasToken(c)
	c.Header("Content-Type", "text/event-stream")
	c.Header("Cache-Control", "no-store")
	c.Header("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	w := c.Writer
	send := func(n activity.Notice) error {
		if !token {
			n.Job.Client = ""
		}
		b, _ := json.Marshal(n)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", n.Type, b); err != nil {
			return err
		}
		w.Flush()
		return nil
	}
	io.WriteString(w, "retry: 3000\n\n")
	for _, j := range a.activity.Running() {
		if send(activity.Notice{Type: "start", Job: j}) != nil {
			return
		}
	}
	w.Flush()
	beat := time.NewTicker(sseHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-c.Request.Context().Done():
			return
		case n, ok := <-ch:
			if !ok {
				return // too slow: the client reconnects
			}
			if send(n) != nil {
				return
			}
		case <-beat.C:
			if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
				return
			}
			w.Flush()
		}
	}
}

// committed ties a commit to its job: the client's (X-Ib-Job, ended by
// the client) gets the backup's id; a commit without one is a job of its
// own.
func (a *API) committed(c *gin.Context, b metadb.Backup) {
	ctx := c.Request.Context()
	if id, err := strconv.ParseInt(c.GetHeader("X-Ib-Job"), 10, 64); err == nil && id > 0 {
		if a.activity.Attach(ctx, id, b.ID) == nil {
			a.activity.Note(ctx, id, "info", fmt.Sprintf("committed backup %d", b.ID))
			return
		}
	}
	a.activity.Record(ctx, activity.KindBackup, b.Tags, c.ClientIP(), time.Time{}, activity.End{Status: activity.OK, BackupID: b.ID, Bytes: b.Bytes, Files: b.Files})
}

// downloaded records the download of a whole backup's archive, once it
// sent at least a MiB (a probe of a few bytes is no job).
func (a *API) downloaded(c *gin.Context, b metadb.Backup, started time.Time) {
	n := int64(c.Writer.Size())
	if n < 1<<20 {
		return
	}
	end := activity.End{Status: activity.OK, BackupID: b.ID, Bytes: n}
	if c.IsAborted() || c.Request.Context().Err() != nil {
		end.Status, end.Error = activity.Failed, fmt.Sprintf("cut after %d bytes", n)
	}
	a.activity.Record(context.WithoutCancel(c.Request.Context()), activity.KindArchive, b.Tags, c.ClientIP(), started, end)
}

// activeAlerts lists the server's firing alerts.
func (a *API) activeAlerts(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"alerts": a.alerts.Active()})
}
