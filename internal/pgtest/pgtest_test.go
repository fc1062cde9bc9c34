//go:build unix

package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"ib/internal/pgtest"
)

// The harness of issue 19's tests: a real PostgreSQL, with pg_trgm (the
// name search of the PostgreSQL metadata store) available.
func TestStart(t *testing.T) {
	s := pgtest.Start(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_trgm"); err != nil {
		t.Fatal(err)
	}
	var sim float64
	var version string
	if err := conn.QueryRow(ctx, "SELECT similarity('000123.sst', '000124.sst'), current_setting('server_version')").Scan(&sim, &version); err != nil {
		t.Fatal(err)
	}
	if sim <= 0.3 || sim >= 1 {
		t.Errorf("similarity %v", sim)
	}
	t.Logf("PostgreSQL %s on port %d", version, s.Port)
}
