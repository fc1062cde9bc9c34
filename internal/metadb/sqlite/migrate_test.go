package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestMigrationKeepsRefs: a database of schema 5 with references opens
// under the current schema with every reference kept, refs no longer
// bound to blocks by a foreign key, and garbage collection still sparing
// referenced blocks.
func TestMigrationKeepsRefs(t *testing.T) {
	ctx := context.Background()
	stmts := []string{
		"INSERT INTO backups (id, created_at, tagset, files, dirs, symlinks, bytes, blocks, entries) VALUES (1, 0, '{}', 0, 0, 0, 0, 2, 0)",
	}
	for i := 1; i <= 3; i++ {
		stmts = append(stmts, fmt.Sprintf("INSERT INTO blocks (id, cid, size, wire_size, data, created_at, seen_at) VALUES (%d, x'0%d', 1, 1, x'00', 0, 0)", i, i))
	}
	stmts = append(stmts, "INSERT INTO refs (block_id, backup_id) VALUES (1, 1), (2, 1)")
	path := oldDatabase(t, 5, stmts...)

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.w.QueryRowContext(ctx, "SELECT count(*) FROM refs WHERE backup_id = 1").Scan(&n); err != nil || n != 2 {
		t.Fatalf("refs after the migration: %d, %v", n, err)
	}
	var fks int
	if err := db.w.QueryRowContext(ctx, "SELECT count(*) FROM pragma_foreign_key_list('refs') WHERE \"table\" = 'blocks'").Scan(&fks); err != nil || fks != 0 {
		t.Fatalf("refs still has %d foreign keys to blocks (%v)", fks, err)
	}
	deleted, _, err := db.DeleteBlocks(ctx, []int64{1, 2, 3}, time.Unix(1, 0))
	if err != nil || len(deleted) != 1 || string(deleted[0].CID) != "\x03" {
		t.Fatalf("GC after the migration deleted %v (%v), want only the unreferenced block 3", deleted, err)
	}
}

// TestConnectionSettings: both pools run in WAL mode with foreign keys on,
// and keep statement journals in memory (a temporary file cost two
// syscalls per changed page of every multi-row insert).
func TestConnectionSettings(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	for name, pool := range db.Pools() {
		var mode string
		var fk, temp int
		if err := pool.QueryRowContext(ctx, "SELECT (SELECT journal_mode FROM pragma_journal_mode), (SELECT foreign_keys FROM pragma_foreign_keys), (SELECT temp_store FROM pragma_temp_store)").Scan(&mode, &fk, &temp); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if mode != "wal" || fk != 1 || temp != 2 {
			t.Errorf("%s: journal_mode %s, foreign_keys %d, temp_store %d; want wal, 1, 2 (memory)", name, mode, fk, temp)
		}
	}
}

// openTemp opens a new database in the test's temporary folder, closed
// when the test ends.
func openTemp(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "ib.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMigrationKeepsNameIndex: names indexed by the trigger of schema 13
// are found through the index made again by migration 14, which has no
// trigger and no per-row sizes (a commit fills it: indexNames).
func TestMigrationKeepsNameIndex(t *testing.T) {
	ctx := context.Background()
	path := oldDatabase(t, 13, "INSERT INTO names (name) VALUES ('000123.sst'), ('MANIFEST-000007'), ('LOG')")

	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for q, want := range map[string]string{"%0123%": "000123.sst", "%IFEST-0%": "MANIFEST-000007"} {
		var name string
		if err := db.r.QueryRowContext(ctx, "SELECT n.name FROM names_fts f JOIN names n ON n.id = f.rowid WHERE f.name LIKE ?", q).Scan(&name); err != nil || name != want {
			t.Errorf("index after the migration: %q found %q (%v), want %q", q, name, err, want)
		}
	}
	var n int
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE name IN ('names_ai', 'names_fts_docsize')").Scan(&n); err != nil || n != 0 {
		t.Fatalf("the trigger or the size table is still there (%d, %v)", n, err)
	}
}

// oldDatabase makes a database of the given schema version, runs stmts in
// it and returns its path.
func oldDatabase(t *testing.T, version int, stmts ...string) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ib.db")
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	for v, m := range migrations[:version] {
		if _, err := old.ExecContext(ctx, m); err != nil {
			t.Fatalf("migration %d: %v", v+1, err)
		}
	}
	for _, q := range append([]string{fmt.Sprintf("PRAGMA user_version = %d", version)}, stmts...) {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return path
}
