package apiclient

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"

	"ib/internal/manifest"
)

// JobProgress is a running job's counters, as the server's activity log
// takes them.
type JobProgress struct {
	Phase         string `json:"phase,omitempty"`
	Files         int64  `json:"files"`
	TotalFiles    int64  `json:"total_files,omitempty"`
	Bytes         int64  `json:"bytes"`
	TotalBytes    int64  `json:"total_bytes,omitempty"`
	BytesUploaded int64  `json:"bytes_uploaded"`
}

// JobEnd is how a job ended.
type JobEnd struct {
	Status   string `json:"status"` // ok, warning, failed
	BackupID int64  `json:"backup_id,omitempty"`
	Bytes    int64  `json:"bytes"`
	Files    int64  `json:"files"`
	Error    string `json:"error,omitempty"`
}

// StartJob opens a job of kind (backup, restore, verify) in the server's
// activity log and returns its id. It needs a write token. Its key makes a
// retry after a lost answer find the job the first attempt started.
func (c *Client) StartJob(ctx context.Context, kind string, tags manifest.Tags) (int64, error) {
	resp, err := c.do(ctx, request{write: true, method: "POST", path: "/api/v1/jobs", ctype: "application/json",
		header: http.Header{"Idempotency-Key": {rand.Text()}},
		body:   jsonBody(map[string]any{"kind": kind, "tags": tags}), ok: []int{http.StatusCreated}})
	if err != nil {
		return 0, err
	}
	var out struct {
		ID int64 `json:"id"`
	}
	return out.ID, decode(resp, &out)
}

// ReportJob sends a running job's counters.
func (c *Client) ReportJob(ctx context.Context, id int64, p JobProgress) error {
	resp, err := c.do(ctx, request{write: true, method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/progress", id), ctype: "application/json",
		body: jsonBody(p), ok: []int{http.StatusNoContent}})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// EndJob ends a job.
func (c *Client) EndJob(ctx context.Context, id int64, e JobEnd) error {
	resp, err := c.do(ctx, request{write: true, method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/end", id), ctype: "application/json",
		body: jsonBody(e)})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}
