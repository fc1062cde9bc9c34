package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"
)

// checkpointEvery is how often the checkpointer looks for new commits.
var checkpointEvery = time.Second

// writerCheckpoint is the WAL, in 4 KiB frames (64 MiB), at which the
// writer checkpoints itself after a commit.
const writerCheckpoint = 16384

// The WAL is copied back into the database file by a checkpointer on a
// connection of its own, in the background. The writer used to do it
// itself after the commit that took the WAL past 32 MiB: 100-200 ms that
// fell on every second or third backup's commit (on the benchmark dataset,
// the server's work after a no-change backup's last byte went from ~90 to
// ~250 ms on those). The checkpointer runs at most once per
// checkpointEvery, and only after commits: a PASSIVE checkpoint, which
// never waits for the writer or a reader and copies what no reader still
// needs. The WAL is written again from its start once all of it has been
// copied back; under writes that never pause (a million tiny files), the
// checkpointer may not get all of it, so the writer still checkpoints
// itself at writerCheckpoint frames (the rest the checkpointer left).

// checkpointLoop runs the checkpoints, every tick, until the database
// closes.
func (db *DB) checkpointLoop(every time.Duration) {
	defer close(db.ckptDone)
	t := time.NewTicker(every)
	defer t.Stop()
	var seen int64 = -1
	for {
		select {
		case <-db.closed:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		v, err := db.checkpointIfChanged(ctx, seen)
		cancel()
		if err != nil {
			slog.Warn("sqlite: WAL checkpoint failed; the next one tries again", "err", err)
			continue
		}
		seen = v
	}
}

// checkpointIfChanged checkpoints the WAL if a commit happened since the
// data version seen, and returns the version now.
func (db *DB) checkpointIfChanged(ctx context.Context, seen int64) (int64, error) {
	var v int64
	if err := db.ckpt.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return seen, fmt.Errorf("sqlite: data version: %w", err)
	}
	if v == seen {
		return v, nil
	}
	var busy, frames, copied int64
	if err := db.ckpt.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		return seen, fmt.Errorf("sqlite: checkpoint: %w", err)
	}
	return v, nil
}

// openCheckpointer opens the checkpointer's connection.
func openCheckpointer(dsn string) (*sql.DB, error) {
	c, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	c.SetMaxOpenConns(1)
	c.SetConnMaxLifetime(0)
	c.SetConnMaxIdleTime(0)
	return c, nil
}
