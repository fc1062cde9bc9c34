package sqlite

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"
)

// checkpointPoll is how often the checkpointer looks for new commits, and
// checkpointLag the longest it lets commits that never pause wait.
var checkpointPoll, checkpointLag = 100 * time.Millisecond, time.Second

// writerCheckpoint is the WAL, in 4 KiB frames (64 MiB), at which the
// writer checkpoints itself after a commit.
const writerCheckpoint = 16384

// The WAL is copied back into the database file by a checkpointer on a
// connection of its own, in the background. The writer used to do it
// itself after the commit that took the WAL past 32 MiB: 100-200 ms that
// fell on every second or third backup's commit (on the benchmark dataset,
// the server's work after a no-change backup's last byte went from ~90 to
// ~250 ms on those). The checkpointer runs once the writer has been idle
// for a poll after commits, or once commits have gone on for
// checkpointLag: a PASSIVE checkpoint, which never waits for the writer or
// a reader and copies what no reader still needs. The WAL is written again
// from its start once all of it has been copied back; under writes that
// never pause (a million tiny files) the checkpointer may not get all of
// it, so the writer still checkpoints itself at writerCheckpoint frames
// (the rest the checkpointer left).

// checkpointLoop runs the checkpoints until the database closes.
func (db *DB) checkpointLoop(poll, lag time.Duration) {
	defer close(db.ckptDone)
	t := time.NewTicker(poll)
	defer t.Stop()
	var seen int64 = -1
	var dirty time.Time // the first commit not yet checkpointed, or zero
	for {
		select {
		case <-db.closed:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := func() error {
			v, err := db.dataVersion(ctx)
			if err != nil {
				return err
			}
			if v != seen {
				if seen, dirty = v, cmp.Or(dirty, time.Now()); time.Since(dirty) < lag {
					return nil // commits go on: wait for a pause, or the lag
				}
			}
			if dirty.IsZero() {
				return nil
			}
			done, err := db.checkpoint(ctx)
			if done || err != nil {
				// A failure waits for the next commit (one warning per
				// burst of commits, not one per tick).
				dirty = time.Time{}
			}
			return err
		}()
		cancel()
		if err != nil {
			slog.Warn("sqlite: WAL checkpoint failed; the next one tries again", "err", err)
		}
	}
}

// dataVersion is a number that changes whenever another connection
// commits.
func (db *DB) dataVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := db.ckpt.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: data version: %w", err)
	}
	return v, nil
}

// checkpoint copies what it can of the WAL back into the database file;
// done is false when some of it is left (a reader still needs it, or
// another checkpoint was running), and the loop tries again on its next
// tick: a checkpoint copies only frames not yet copied, so a retry that
// can do nothing costs a read of the WAL index.
func (db *DB) checkpoint(ctx context.Context) (done bool, err error) {
	var busy, frames, copied int64
	if err := db.ckpt.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied); err != nil {
		return false, fmt.Errorf("sqlite: checkpoint: %w", err)
	}
	db.lastCkpt.Store(&ckptResult{busy, frames, copied})
	return busy == 0 && copied >= frames, nil
}

// ckptResult is the last checkpoint's row: whether it was blocked, the
// WAL's frames, and how many of them are in the database file.
type ckptResult struct{ busy, frames, copied int64 }
