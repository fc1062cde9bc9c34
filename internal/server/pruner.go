package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"ib/internal/activity"
	"ib/internal/metrics"
	"ib/internal/prune"
	"ib/internal/store"
	"ib/internal/units"
)

// pruner runs the server's retention and garbage collection every
// interval, soon after every deletion, and on demand; one run at a time.
type pruner struct {
	store    *store.Store
	rules    prune.Rules
	grace    time.Duration
	interval time.Duration
	log      *slog.Logger
	kick     chan struct{}
	mu       sync.Mutex
	metrics  *metrics.Metrics
	jobs     *activity.Log
	// what the rules say, for the start log
	retention  time.Duration
	keepLatest int
	// leader says whether this server runs the scheduled prunes.
	leader func() bool
}

func newPruner(st *store.Store, o Options, m *metrics.Metrics, jobs *activity.Log) *pruner {
	return &pruner{jobs: jobs,
		store: st, rules: prune.Retention(o.Retention, o.KeepLatest), grace: o.GCGrace,
		interval: o.PruneInterval, log: o.Log, kick: make(chan struct{}, 1), metrics: m,
		retention: o.Retention, keepLatest: o.KeepLatest,
	}
}

// describe says in words what retention will delete and when.
func (p *pruner) describe() string {
	what := "retention off: backups are kept until deleted"
	if p.retention > 0 {
		what = fmt.Sprintf("retention %s: backups older than that are deleted, but the newest %d of each tag set", units.FormatDuration(p.retention), p.keepLatest)
	}
	if p.interval > 0 {
		return fmt.Sprintf("%s; pruning every %s, next at %s", what, units.FormatDuration(p.interval), time.Now().Add(p.interval).UTC().Format("2006-01-02 15:04 UTC"))
	}
	return what + "; pruning only after deletions and on demand"
}

// Kick asks for a run soon, without waiting for it.
func (p *pruner) Kick() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Prune runs now: the given request, or the server's retention when nil.
func (p *pruner) Prune(ctx context.Context, req *store.PruneRequest) (store.PruneResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if req == nil {
		req = &store.PruneRequest{Rules: p.rules}
	}
	req.Grace = p.grace
	start := time.Now()
	var job activity.Job
	var jerr error = errDryRun
	if !req.DryRun {
		job, jerr = p.jobs.Start(ctx, activity.KindPrune, nil, "", 0)
	}
	res, err := p.store.Prune(ctx, *req)
	if !req.DryRun && ctx.Err() == nil {
		p.metrics.PruneDone(res.GC, time.Since(start), err)
	}
	if jerr == nil {
		p.endJob(ctx, job.ID, res, err)
	}
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("prune failed", "err", err)
		}
		return res, err
	}
	if !req.DryRun {
		deleted := 0
		for _, d := range res.Decisions {
			if d.Delete {
				deleted++
			}
		}
		p.log.Info("prune", "backups_deleted", deleted, "blocks_deleted", res.GC.BlocksDeleted,
			"bytes_freed", res.GC.BytesFreed, "orphans_deleted", res.GC.OrphansDeleted,
			"took", time.Duration(res.GC.DurationMS)*time.Millisecond, "longest_write_lock_ms", res.GC.LongestLockMS)
	}
	return res, nil
}

var errDryRun = errors.New("dry run: no job")

// endJob ends the job of a prune run: backups deleted (as files) and bytes
// freed, and the GC's counts in its log.
func (p *pruner) endJob(ctx context.Context, id int64, res store.PruneResult, err error) {
	ctx = context.WithoutCancel(ctx)
	end := activity.End{Status: activity.OK, Bytes: res.GC.BytesFreed}
	for _, d := range res.Decisions {
		if d.Delete {
			end.Files++
		}
	}
	if err != nil {
		end.Status, end.Error = activity.Failed, err.Error()
	} else {
		p.jobs.Note(ctx, id, "info", fmt.Sprintf("%d backups deleted; GC: %d blocks deleted, %d bytes freed, %d orphans deleted",
			end.Files, res.GC.BlocksDeleted, res.GC.BytesFreed, res.GC.OrphansDeleted))
	}
	p.jobs.Finish(ctx, id, end)
}

// run prunes every interval and after kicks until ctx ends.
func (p *pruner) run(ctx context.Context) {
	var tick <-chan time.Time
	if p.interval > 0 {
		t := time.NewTicker(p.interval)
		defer t.Stop()
		tick = t.C
	}
	p.log.Info("pruning scheduled: "+p.describe(), "every", units.FormatDuration(p.interval), "gc_grace", units.FormatDuration(p.grace))
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if !p.leader() {
				continue // another server of the database prunes
			}
		case <-p.kick:
		}
		p.Prune(ctx, nil)
	}
}
