package server

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"ib/internal/activity"
	"ib/internal/alerts"
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
