package server

import (
	"context"

	"ib/internal/metadb/postgres"
	"ib/internal/metadb/sqlite"
)

// Both metadata stores are whole metaDBs.
var (
	_ metaDB = (*sqlite.DB)(nil)
	_ metaDB = (*postgres.DB)(nil)
)

func openPostgres(ctx context.Context, dsn string) (metaDB, error) {
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		return nil, err // not a nil *DB in a non-nil interface
	}
	return db, nil
}

// redactURL is a database URL without its password, for errors and logs.
func redactURL(s string) string { return postgres.Redacted(s) }
