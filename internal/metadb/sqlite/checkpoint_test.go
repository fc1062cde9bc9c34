package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestCheckpointsInTheBackground: a commit does not copy the WAL back into
// the database file (40 MiB here, past the 32 MiB at which the writer
// used to, short of the 64 MiB at which it still does); the checkpoint
// does, and the data reads back after a reopen. The loop, on a short poll,
// copies a commit once the writer pauses, and when a reader's snapshot
// kept it from copying all of the WAL it tries again until it has.
func TestCheckpointsInTheBackground(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ib.db")
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	old := checkpointPoll
	checkpointPoll = time.Hour
	db, err := Open(ctx, path)
	checkpointPoll = old
	if err != nil {
		t.Fatal(err)
	}
	before := size()
	if _, err := db.w.ExecContext(ctx, `CREATE TABLE filler (b BLOB);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
INSERT INTO filler SELECT zeroblob(1 << 20) FROM n`); err != nil {
		t.Fatal(err)
	}
	if got := size(); got != before {
		t.Fatalf("the commit of 40 MiB checkpointed: the database file went from %d to %d bytes", before, got)
	}
	// What the checkpointer does on its next tick.
	if done, err := db.checkpoint(ctx); err != nil || !done {
		t.Fatalf("checkpoint: done %v, %v", done, err)
	}
	if got := size(); got < before+40<<20 {
		t.Fatalf("after the checkpoint the database file has %d bytes, want %d more than %d", got, 40<<20, before)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	checkpointPoll = 10 * time.Millisecond
	defer func() { checkpointPoll = old }()
	db, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM filler").Scan(&n); err != nil || n != 40 {
		t.Fatalf("after a reopen: %d rows, %v", n, err)
	}

	// A reader holds a snapshot from before the next commit: the loop's
	// checkpoints cannot copy that commit until the reader ends.
	rtx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rtx.QueryRowContext(ctx, "SELECT count(*) FROM filler").Scan(&n); err != nil {
		t.Fatal(err)
	}
	before = size()
	if _, err := db.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 4)
INSERT INTO filler SELECT zeroblob(1 << 20) FROM n`); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string, ok func(*ckptResult) bool) {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if r := db.lastCkpt.Load(); r != nil && ok(r) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not in 30 s; the file went %d -> %d bytes, the last checkpoint's row %+v", what, before, size(), db.lastCkpt.Load())
			}
		}
	}
	waitFor("a checkpoint the reader blocks", func(r *ckptResult) bool { return r.frames >= 1024 && r.copied < r.frames })
	if got := size(); got != before {
		t.Fatalf("the reader's snapshot did not hold: the file went %d -> %d bytes", before, got)
	}
	if err := rtx.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitFor("the checkpoint after the reader", func(r *ckptResult) bool { return r.frames >= 1024 && r.copied == r.frames })
	if got := size(); got < before+4<<20 {
		t.Fatalf("the loop's checkpoint left the file at %d bytes, want %d more than %d", got, 4<<20, before)
	}
}
