package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"ib/internal/metadb/metadbtest"
	"ib/internal/pgtest"
)

func TestConformance(t *testing.T) {
	pg := pgtest.Start(t)
	metadbtest.Run(t, metadbtest.Backend{
		Open: func(t *testing.T) metadbtest.DB {
			db, err := Open(context.Background(), pg.NewDatabase(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		},
		Refs: func(t *testing.T, mdb metadbtest.DB, id int64) []int64 {
			rows, err := mdb.(*DB).pool.Query(context.Background(), "SELECT block_id FROM refs WHERE backup_id = $1 ORDER BY block_id", id)
			if err != nil {
				t.Fatal(err)
			}
			out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				t.Fatal(err)
			}
			return out
		},
		StagedAt: func(t *testing.T, mdb metadbtest.DB, id int64) int64 {
			var at *int64
			if err := mdb.(*DB).pool.QueryRow(context.Background(), "SELECT staged_at FROM backups WHERE id = $1", id).Scan(&at); err != nil {
				t.Fatal(err)
			}
			if at == nil {
				return 0
			}
			return *at
		},
	})
}
