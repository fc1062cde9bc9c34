package backup

import (
	"context"
	"errors"
	"time"

	"ib/internal/apiclient"
	"ib/internal/cli"
	"ib/internal/progress"
)

// serverJob reports a backup, restore or verify to the server's activity
// log: a job opened at the start, its counters at most once a second, its
// end. It needs a write token; without one, or with a server that has no
// activity log, nothing is reported and the work goes on.
type serverJob struct {
	api  *apiclient.Client
	id   int64
	stop context.CancelFunc
	done chan struct{}
}

// reportInterval is how often a running job sends its counters.
const reportInterval = time.Second

func startServerJob(ctx context.Context, o *common, api *apiclient.Client, kind string, tags map[string]string, c *progress.Counters) *serverJob {
	if !api.HasToken() {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	id, err := api.StartJob(sctx, kind, tags)
	cancel()
	if err != nil {
		o.log().Debug("no activity job on the server", "err", err)
		return nil
	}
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	j := &serverJob{api: api, id: id, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(j.done)
		progress.Report(rctx, c, reportInterval, func(ctx context.Context, s progress.Snapshot) error {
			return api.ReportJob(ctx, id, apiclient.JobProgress{Phase: s.Phase, Files: s.Files, TotalFiles: s.TotalFiles,
				Bytes: s.Bytes, TotalBytes: s.TotalBytes, BytesUploaded: s.Uploaded})
		})
	}()
	return j
}

// ID is the job's id (0: none).
func (j *serverJob) ID() int64 {
	if j == nil {
		return 0
	}
	return j.id
}

// end stops the reports and ends the job: ok, warning (exit 3) or failed.
func (j *serverJob) end(ctx context.Context, e apiclient.JobEnd, err error) {
	if j == nil {
		return
	}
	j.stop()
	<-j.done
	switch {
	case err == nil:
		e.Status = "ok"
	case errors.Is(err, cli.ErrInconsistent):
		e.Status, e.Error = "warning", err.Error()
	default:
		e.Status, e.Error = "failed", err.Error()
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	j.api.EndJob(ectx, j.id, e)
}
