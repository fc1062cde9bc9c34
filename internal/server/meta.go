package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"ib/internal/activity"
	"ib/internal/alerts"
	"ib/internal/metadb/postgres"
	"ib/internal/metadb/sqlite"
	"ib/internal/store"
)

// metaDB is a metadata store as the server assembles it: the engine's
// rows, the activity log's and the alerts'.
type metaDB interface {
	store.Meta
	activity.Rows
	alerts.Rows
	Close() error
}

// openMeta opens the metadata store: the SQLite file in the data dir, or
// the PostgreSQL database at opts.Database.
func openMeta(ctx context.Context, opts Options) (metaDB, error) {
	switch {
	case opts.Database == "":
		db, err := sqlite.Open(ctx, filepath.Join(opts.DataDir, "ib.db"))
		if err != nil {
			return nil, err
		}
		return db, nil
	case strings.HasPrefix(opts.Database, "postgres://"), strings.HasPrefix(opts.Database, "postgresql://"):
		return openPostgres(ctx, opts.Database)
	}
	return nil, fmt.Errorf("database %q: want postgres://… (or none: SQLite in the data dir)", redactURL(opts.Database))
}

// Metadata names the metadata store (a database URL without its password).
func (s *Server) Metadata() string {
	if s.opts.Database == "" {
		return "sqlite " + filepath.Join(s.opts.DataDir, "ib.db")
	}
	return redactURL(s.opts.Database)
}

// shared is a metadata store several servers may use at once: they elect
// one leader for the singletons.
type shared interface {
	Campaign(ctx context.Context, every time.Duration, log *slog.Logger) *postgres.Leadership
}

// Shared-database timings (variables for tests).
var (
	campaignEvery = 5 * time.Second
	totalsEvery   = 15 * time.Second
)

// Leading reports whether this server runs retention, GC, scrub, alerts
// and job expiry: always on its own database, and on a shared one while
// it holds the leadership.
func (s *Server) Leading() bool {
	if _, ok := s.db.(shared); !ok {
		return true
	}
	l := s.lead.Load()
	return l != nil && l.Held()
}

// startShared, on a shared database, campaigns for the leadership, shares
// the activity log's notices, and reads the totals again every totalsEvery
// (other servers write too; at most a twentieth of the time, as the scan
// takes longer), so that every server reports the same numbers.
func (s *Server) startShared(ctx context.Context) {
	sh, ok := s.db.(shared)
	if !ok {
		return
	}
	s.lead.Store(sh.Campaign(ctx, campaignEvery, s.opts.Log))
	if f, ok := s.db.(activity.Fanout); ok {
		s.Activity.Share(ctx, f)
	}
	go func() {
		wait := totalsEvery
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			start := time.Now()
			if err := s.Store.RefreshTotals(ctx); err != nil && ctx.Err() == nil {
				s.opts.Log.Warn("totals not refreshed", "err", err)
			}
			// The totals are a scan of the blocks table: on a large one
			// it is not run more than a twentieth of the time.
			wait = max(totalsEvery, 20*time.Since(start))
		}
	}()
}
