package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	"ib/internal/metadb/metadbtest"
)

func TestConformance(t *testing.T) {
	metadbtest.Run(t, metadbtest.Backend{
		Open: func(t *testing.T) metadbtest.DB {
			db, err := Open(context.Background(), filepath.Join(t.TempDir(), "ib.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		},
		ForgetNames: func(mdb metadbtest.DB) {
			db := mdb.(*DB)
			db.namesMu.Lock()
			clear(db.names)
			db.namesMu.Unlock()
		},
		Refs: func(t *testing.T, mdb metadbtest.DB, id int64) []int64 {
			rows, err := mdb.(*DB).w.QueryContext(context.Background(), "SELECT block_id FROM refs WHERE backup_id = ? ORDER BY block_id", id)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var out []int64
			for rows.Next() {
				var b int64
				if err := rows.Scan(&b); err != nil {
					t.Fatal(err)
				}
				out = append(out, b)
			}
			return out
		},
		StagedAt: func(t *testing.T, mdb metadbtest.DB, id int64) int64 {
			var at sql.NullInt64
			if err := mdb.(*DB).w.QueryRowContext(context.Background(), "SELECT staged_at FROM backups WHERE id = ?", id).Scan(&at); err != nil {
				t.Fatal(err)
			}
			return at.Int64
		},
	})
}
