package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
)

// TestNameQueryUsesTheIndex: a search of three characters or more finds
// names through the trigram index alone (a name the index lacks is not
// found: SQLite did not scan), quotes and LIKE's wildcards in it are
// literal; a shorter one scans the names.
func TestNameQueryUsesTheIndex(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, filepath.Join(t.TempDir(), "ib.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO names (id, name) VALUES (1, 'unindexed.log')`); err != nil {
		t.Fatal(err)
	}
	after, err := lastName(ctx, tx)
	if err != nil || after != 1 {
		t.Fatalf("last name %d, %v", after, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO names (id, name) VALUES (2, 'Indexed.LOG'), (3, 'say "hi".txt'), (4, '100%_done'), (5, '100 done')`); err != nil {
		t.Fatal(err)
	}
	if err := indexNames(ctx, tx, after); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string][]int64{
		"ndexed": {2}, ".log": {2}, "unindexed": nil, `"hi"`: {3}, `y "h`: {3},
		"0%_": {4}, "100": {4, 5}, "%": {4}, "_": {4}, "lo": {1, 2}, `"`: {3},
	} {
		sub, arg := nameQuery(q)
		rows, err := db.r.QueryContext(ctx, sub, arg)
		if err != nil {
			t.Fatalf("%q: %v", q, err)
		}
		var got []int64
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			got = append(got, id)
		}
		rows.Close()
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("names containing %q: %v, want %v", q, got, want)
		}
	}
}
