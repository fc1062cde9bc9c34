// Package server assembles a running ib server from its parts: the SQLite
// metadata, the block store, the storage engine and the HTTP API, and runs
// it until its context ends, then shuts down gracefully.
package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"ib/frontend"

	"ib/internal/activity"
	"ib/internal/alerts"
	"ib/internal/auth"
	"ib/internal/blockstore"
	"ib/internal/dist"
	"ib/internal/httpapi"
	"ib/internal/metadb/postgres"
	"ib/internal/metrics"
	"ib/internal/store"
)

// Options of a server.
type Options struct {
	DataDir string
	// Database is the metadata store: "" for SQLite in DataDir, or a
	// postgres:// URL.
	Database string
	Token    string // the admin token; Tokens, if set, decides instead
	// Tokens says what each bearer token may do (named, scoped tokens).
	Tokens auth.Keeper
	// Private makes reads need a token too.
	Private bool
	TLSCert string
	TLSKey  string
	Log     *slog.Logger

	Retention     time.Duration // delete backups older than this; 0 keeps all
	KeepLatest    int           // but keep the newest of each tag set
	PruneInterval time.Duration // 0: only after deletions and on demand
	GCGrace       time.Duration // blocks seen within this are never collected

	// S3 keeps large blocks in an S3-compatible bucket; nil keeps them in
	// DataDir/blocks.
	S3 *blockstore.S3Config

	// ScrubInterval starts a scrub of every block this often (0: never);
	// ScrubRate bounds its reading in bytes per second (0: no bound).
	ScrubInterval time.Duration
	ScrubRate     int64

	// HeaderTimeout and BodyIdleTimeout bound slow clients: the time to
	// send the request headers, and the longest pause inside a body
	// (defaults 10 s and 60 s).
	HeaderTimeout   time.Duration
	BodyIdleTimeout time.Duration
	// WriteIdleTimeout cuts a response whose client stops reading for
	// this long (default 60 s); a slow download that keeps moving never
	// times out.
	WriteIdleTimeout time.Duration

	// WrapBlocks, if set, wraps the block store (fault injection in tests).
	WrapBlocks func(blockstore.Store) blockstore.Store

	// DistDir holds the ib binaries on offer (make dist); the running
	// binary is always offered too.
	DistDir string

	// TrustedProxies are the addresses or CIDRs whose X-Forwarded-For is
	// believed; none by default.
	TrustedProxies []string

	// JobsKeep is how long the activity log keeps jobs (0: 90 days).
	JobsKeep time.Duration
	// Alerts: where the server's own alerts go and what they watch
	// (DataDir is filled in).
	Alerts alerts.Config
}

// Defaults of the retention options (DESIGN §8).
const (
	DefaultRetention     = 90 * 24 * time.Hour
	DefaultKeepLatest    = 1
	DefaultPruneInterval = 24 * time.Hour
	DefaultGCGrace       = time.Hour
)

// Server is an assembled, not yet listening, ib server.
type Server struct {
	serving atomic.Bool
	// lead is the leadership among the servers of one database (nil:
	// the database is this server's alone, or the campaign has not begun).
	lead    atomic.Pointer[postgres.Leadership]
	opts    Options
	db      metaDB
	Store   *store.Store
	http    *http.Server
	pruner  *pruner
	metrics *metrics.Metrics
	// Activity is the jobs log.
	Activity *activity.Log
	// Alerts are the server's own alerts.
	Alerts *alerts.Alerter
	// draining is closed when shutdown starts (see httpapi.Config).
	draining chan struct{}
}

// MetricsHandler serves /metrics; the caller serves it on its own port.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	return mux
}

// Open opens the data dir (creating it) and assembles the server.
func Open(ctx context.Context, opts Options) (*Server, error) {
	if opts.Tokens == nil {
		if opts.Token == "" {
			return nil, errors.New("server: no token")
		}
		set, err := auth.NewSet(opts.Token, nil)
		if err != nil {
			return nil, err
		}
		opts.Tokens = set
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	db, err := openMeta(ctx, opts)
	if err != nil {
		return nil, err
	}
	var blocks blockstore.Store
	tmpDir := filepath.Join(opts.DataDir, "tmp")
	if opts.S3 != nil {
		blocks, err = blockstore.OpenS3(ctx, *opts.S3)
	} else {
		var local *blockstore.Local
		local, err = blockstore.OpenLocal(filepath.Join(opts.DataDir, "blocks"))
		if local != nil {
			blocks, tmpDir = local, local.TempDir() // same file system: uploads move in by rename
		}
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	if opts.WrapBlocks != nil {
		blocks = opts.WrapBlocks(blocks)
	}
	st, err := store.New(ctx, db, blocks, tmpDir, opts.Log)
	if err != nil {
		db.Close()
		return nil, err
	}
	st.SetIndexDir(filepath.Join(opts.DataDir, "lz4index"))
	st.SetSeenFresh(opts.GCGrace / 2) // a missing-query writes only for blocks unseen that long
	m := metrics.New(st)
	st.SetHooks(m.Hooks())
	if p, ok := db.(interface{ Pools() map[string]*sql.DB }); ok {
		for name, pool := range p.Pools() {
			// go_sql_wait_duration_seconds_total{db_name="sqlite_writer"}:
			// the time requests spent queued for SQLite's one writer.
			m.Register(collectors.NewDBStatsCollector(pool, name))
		}
	}
	jobs := activity.New(db, opts.Log, opts.JobsKeep)
	opts.Alerts.DataDir = opts.DataDir
	alerter, err := alerts.New(ctx, opts.Alerts, db, opts.Log, st.LastBackups)
	if err != nil {
		db.Close()
		return nil, err
	}
	jobs.OnEnd = alerter.JobEnded
	pr := newPruner(st, opts, m, jobs)
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = 10 * time.Second
	}
	if opts.BodyIdleTimeout <= 0 {
		opts.BodyIdleTimeout = time.Minute
	}
	if opts.WriteIdleTimeout <= 0 {
		opts.WriteIdleTimeout = time.Minute
	}
	draining := make(chan struct{})
	api, err := httpapi.New(httpapi.Config{Store: st, Pruner: pr, Activity: jobs, Alerts: alerter, Tokens: opts.Tokens, Private: opts.Private, Log: opts.Log,
		Middleware: []gin.HandlerFunc{m.Middleware()}, Dist: dist.New(opts.DistDir), UI: frontend.Handler(), Draining: draining,
		TrustedProxies: opts.TrustedProxies})
	if err != nil {
		db.Close()
		return nil, err
	}
	h := &http.Server{
		Handler:           deadlines(opts.BodyIdleTimeout, opts.WriteIdleTimeout, api),
		ReadHeaderTimeout: opts.HeaderTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(opts.Log.Handler(), slog.LevelWarn),
	}
	srv := &Server{opts: opts, db: db, Store: st, http: h, pruner: pr, metrics: m, Activity: jobs, Alerts: alerter, draining: draining}
	pr.leader, jobs.Leader, alerter.Leader = srv.Leading, srv.Leading, srv.Leading
	return srv, nil
}

// Serve answers on ln until ctx ends, then stops accepting, lets in-flight
// requests finish (up to 30 s), and closes the database.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.serving.Store(true)
	pctx, stopPruner := context.WithCancel(ctx)
	prunerDone := make(chan struct{})
	s.startShared(pctx)
	go func() { s.pruner.run(pctx); close(prunerDone) }()
	go s.Activity.Run(pctx)
	go s.Alerts.Run(pctx)
	if s.opts.ScrubInterval > 0 {
		go s.scrubLoop(pctx)
	}
	defer func() { stopPruner(); <-prunerDone }()
	errc := make(chan error, 1)
	go func() {
		var err error
		if s.opts.TLSCert != "" {
			err = s.http.ServeTLS(ln, s.opts.TLSCert, s.opts.TLSKey)
		} else {
			err = s.http.Serve(ln)
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		stopPruner()
		<-prunerDone
		s.Store.Close()
		s.db.Close()
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.opts.Log.Info("shutting down: no new connections; finishing requests in flight (30 s at most)")
	close(s.draining)
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := s.http.Shutdown(sctx)
	<-errc
	stopPruner()
	<-prunerDone
	s.Store.Close()
	return errors.Join(err, s.db.Close())
}

// Close stops the server at once, dropping connections (a running Serve
// then returns and closes the database).
func (s *Server) Close() error {
	err := s.http.Close()
	if !s.serving.Load() {
		s.Store.Close()
		err = errors.Join(err, s.db.Close())
	}
	return err
}

// scrubLoop re-hashes every stored block every ScrubInterval, at most at
// ScrubRate, and reports corruption in the log and the metrics.
func (s *Server) scrubLoop(ctx context.Context) {
	t := time.NewTicker(s.opts.ScrubInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.Leading() {
			continue // another server of the database scrubs
		}
		start := time.Now()
		job, jerr := s.Activity.Start(ctx, activity.KindScrub, nil, "", 0)
		rep, err := s.Store.Scrub(ctx, s.opts.ScrubRate, s.metrics.ScrubCorrupt)
		s.metrics.ScrubDone(rep.Blocks)
		if jerr == nil {
			end := activity.End{Status: activity.OK, Bytes: rep.Bytes, Files: rep.Blocks}
			switch {
			case err != nil:
				end.Status, end.Error = activity.Failed, err.Error()
			case rep.Corrupt > 0:
				end.Status, end.Error = activity.Warning, fmt.Sprintf("%d corrupt blocks", rep.Corrupt)
			}
			s.Activity.Finish(context.WithoutCancel(ctx), job.ID, end)
		}
		if err != nil && ctx.Err() == nil {
			s.opts.Log.Error("scrub failed", "err", err)
			continue
		}
		s.opts.Log.Info("scrub", "blocks", rep.Blocks, "bytes", rep.Bytes, "corrupt", rep.Corrupt, "took", time.Since(start).Round(time.Millisecond))
	}
}
