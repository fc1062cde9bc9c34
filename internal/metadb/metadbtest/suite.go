// Package metadbtest is the conformance suite of the metadata stores: every
// implementation (metadb/sqlite, metadb/postgres) runs the same tests, most
// of them through the engine (store.Store) as the server uses it, some
// against the store's methods directly.
package metadbtest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ib/internal/activity"
	"ib/internal/alerts"
	"ib/internal/block"
	"ib/internal/blockstore"
	"ib/internal/manifest"
	"ib/internal/store"
)

// DB is a metadata store as the server uses it.
type DB interface {
	store.Meta
	activity.Rows
	alerts.Rows
	Close() error
}

// Backend is one implementation under test.
type Backend struct {
	// Open returns a new, empty store (closed when the test ends).
	Open func(t *testing.T) DB
	// Refs returns the ids of the blocks backup id references, sorted,
	// read from the store's own tables.
	Refs func(t *testing.T, db DB, id int64) []int64
	// StagedAt returns backup id's staged_at (unix ns; 0 if NULL).
	StagedAt func(t *testing.T, db DB, id int64) int64
	// ForgetNames empties the store's cache of name ids, if it has one
	// (nil: none), as a restart would.
	ForgetNames func(db DB)
}

// Run runs the suite.
func Run(t *testing.T, b Backend) {
	// Stages write in transactions of 256 entries, so that tests see them
	// write while a few hundred entries stream.
	t.Cleanup(store.TestingSetStageRows(256))
	for _, tc := range []struct {
		name string
		run  func(*testing.T, Backend)
	}{
		{"CommitMatchesParent", testCommitMatchesParent},
		{"CommitMissingAndKey", testCommitMissingAndKey},
		{"SameKeyAtOnce", testSameKeyAtOnce},
		{"StagedCommit", testStagedCommit},
		{"StagedCommitDropped", testStagedCommitDropped},
		{"StagedCommitKeptAlive", testStagedCommitKeptAlive},
		{"Blocks", testBlocks},
		{"SeenRefresh", testSeenRefresh},
		{"PresentSizes", testPresentSizes},
		{"PutBlocksConcurrent", testPutBlocksConcurrent},
		{"Reads", testReads},
		{"NamesStoredBefore", testNamesStoredBefore},
		{"DeleteAndGC", testDeleteAndGC},
		{"JobsAndAlerts", testJobsAndAlerts},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, b) })
	}
}

// fixture is an engine over the store under test and a local block store,
// with a clock the test moves.
type fixture struct {
	db    DB
	st    *store.Store
	mu    sync.Mutex // over clock, for tests that move it while a stage runs (advance)
	clock time.Time
}

func newFixture(t *testing.T, b Backend) *fixture {
	t.Helper()
	db := b.Open(t)
	local, err := blockstore.OpenLocal(filepath.Join(t.TempDir(), "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.New(context.Background(), db, local, local.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{db: db, st: st, clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	st.SetClock(func() time.Time {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.clock
	})
	return f
}

// tick moves the clock a second on.
func (f *fixture) tick() { f.advance(time.Second) }

// advance moves the clock on by d and returns the new time.
func (f *fixture) advance(d time.Duration) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = f.clock.Add(d)
	return f.clock
}

// put stores data as a block and returns its manifest form.
func (f *fixture) put(t *testing.T, data []byte) manifest.Block {
	t.Helper()
	c := block.Sum(data).String()
	wire, err := block.Encode(data, block.Level{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.st.PutBlock(context.Background(), c, bytes.NewReader(wire), int64(len(wire))); err != nil {
		t.Fatal(err)
	}
	return manifest.Block{CID: c, Size: int64(len(data))}
}

// commit commits entries (in walk order) under tags.
func (f *fixture) commit(t *testing.T, tags manifest.Tags, key string, es []*manifest.Entry) store.CommitResult {
	t.Helper()
	f.tick()
	body, err := json.Marshal(map[string]any{"tags": tags, "entries": es, "idempotency_key": key})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.st.Commit(context.Background(), bytes.NewReader(body))
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	return res
}

// all reads every entry of a backup through the store.
func all(t *testing.T, db DB, id int64) []manifest.Entry {
	t.Helper()
	var out []manifest.Entry
	for after := int64(-1); ; {
		page, last, err := db.Entries(context.Background(), id, after, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out, after = append(out, page...), last
	}
}

func dir(path string, mtime time.Time) *manifest.Entry {
	return &manifest.Entry{Path: path, Type: manifest.TypeDir, Mode: 0o755, MTime: mtime}
}

func file(path string, mtime time.Time, blocks ...manifest.Block) *manifest.Entry {
	e := &manifest.Entry{Path: path, Type: manifest.TypeFile, Mode: 0o644, MTime: mtime, Blocks: blocks}
	for _, b := range blocks {
		e.Size += b.Size
	}
	return e
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }
