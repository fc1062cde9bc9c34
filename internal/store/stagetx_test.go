package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"ib/internal/metadb"
	"ib/internal/metadb/sqlite"
	"ib/internal/store"
)

// txSizes wraps a real SQLite store and records the size of each batch of
// entries a stage wrote, in order.
type txSizes struct {
	*sqlite.DB
	sizes []int
}

func (m *txSizes) StageTx(ctx context.Context, id int64) (metadb.CommitTx, error) {
	tx, err := m.DB.StageTx(ctx, id)
	if err != nil {
		return nil, err
	}
	return &countedTx{CommitTx: tx, m: m}, nil
}

type countedTx struct {
	metadb.CommitTx
	m *txSizes
}

func (t *countedTx) AddEntries(ctx context.Context, rows []metadb.EntryRow) error {
	t.m.sizes = append(t.m.sizes, len(rows))
	return t.CommitTx.AddEntries(ctx, rows)
}

// commitDoc is a commit of a folder with the named empty files.
func commitDoc(names []string) string {
	var b strings.Builder
	b.WriteString(`{"tags":{"node":"tx"},"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z","size":0,"uid":0,"gid":0}`)
	for _, n := range names {
		fmt.Fprintf(&b, `,{"path":%q,"type":"file","mode":420,"mtime":"2024-01-01T00:00:00Z","size":0,"uid":0,"gid":0}`, n)
	}
	b.WriteString("]}")
	return b.String()
}

// TestStageTransactionSizes: a stage gathers entries with names new to its
// parent up to stageTxRows before it writes them (in a transaction of
// their own while the body streams in: each commit rewrites the pages the
// new names touched at random places of the name index), and entries whose
// names its parent had up to a quarter of that, so that the work of a
// backup that changed little is done while its manifest streams in rather
// than after its last byte. (The body here ends at once, so the batches
// share transactions: what is checked is when the stage writes.)
func TestStageTransactionSizes(t *testing.T) {
	defer store.TestingSetStageRows(64)()
	ctx := context.Background()
	var meta *txSizes
	f := newStoreOver(t, func(db *sqlite.DB) store.Meta {
		meta = &txSizes{DB: db}
		return meta
	})
	st, db := f.st, meta.DB
	defer st.Close() // its background passes end before the database closes
	names := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%04d", prefix, i))
		}
		return out
	}
	commit := func(files []string) []int {
		t.Helper()
		meta.sizes = nil
		res, err := st.Commit(ctx, strings.NewReader(commitDoc(files)))
		if err != nil || len(res.Missing) > 0 {
			t.Fatalf("commit: %v, missing %v", err, res.Missing)
		}
		b, err := db.Get(ctx, res.ID)
		if err != nil || b.Entries != int64(len(files)+1) {
			t.Fatalf("backup %d: %+v, %v", res.ID, b, err)
		}
		return meta.sizes
	}
	// A first backup: every name new.
	if got, want := commit(names("a", 200)), []int{64, 64, 64, 9}; !slices.Equal(got, want) {
		t.Errorf("first backup's transactions: %v entries, want %v", got, want)
	}
	// The same names again: a quarter of the size.
	if got, want := commit(names("a", 200)), []int{16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 9}; !slices.Equal(got, want) {
		t.Errorf("unchanged backup's transactions: %v entries, want %v", got, want)
	}
	// New names after the parent's: the full size again once one comes.
	if got, want := commit(append(names("a", 40), names("b", 100)...)), []int{16, 16, 64, 45}; !slices.Equal(got, want) {
		t.Errorf("backup with new names' transactions: %v entries, want %v", got, want)
	}
}
