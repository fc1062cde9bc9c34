package postgres

import (
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Advisory lock keys. Per-CID locks use the two-key form with cidLocks as
// the first key, so they never meet the single-key locks below.
const (
	cidLocks  = 0x1b03
	leaderKey = 0x1b_0004
)

func cidHash(cid string) int32 {
	h := fnv.New32a()
	h.Write([]byte(cid))
	return int32(h.Sum32())
}

// LockCIDs takes advisory transaction locks on the CIDs (shared or
// exclusive) on a connection of its own pool, held until unlock: across
// every server on the database, an upload storing a block's object and
// recording its row never interleaves with GC deleting both. Locks are
// taken in hash order (no deadlock); two CIDs of one hash share a lock,
// which only serialises them. The pool is separate so that uploads
// holding locks across their object writes never starve the row writes
// they wait for.
func (db *DB) LockCIDs(ctx context.Context, cids []string, exclusive bool) (func(), error) {
	hs := make([]int32, len(cids))
	for i, c := range cids {
		hs[i] = cidHash(c)
	}
	slices.Sort(hs)
	hs = slices.Compact(hs)
	tx, err := db.locks.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: lock blocks: %w", err)
	}
	fn := "pg_advisory_xact_lock_shared"
	if exclusive {
		fn = "pg_advisory_xact_lock"
	}
	// One statement for all: the sorted subquery feeds the aggregate in
	// order (a statement per lock made GC's batches of 1,000 cost 50 ms
	// each in round trips).
	if _, err := tx.Exec(ctx, "SELECT count("+fn+"($1, h)) FROM (SELECT h FROM unnest($2::int4[]) AS h ORDER BY h) AS s",
		int32(cidLocks), hs); err != nil {
		tx.Rollback(context.Background())
		return nil, fmt.Errorf("postgres: lock blocks: %w", err)
	}
	return func() { tx.Rollback(context.Background()) }, nil
}

// Leadership is one server's claim to run the database's singletons
// (retention, GC, scrub, alerts, job expiry): an advisory lock held by a
// session of its own. When the leader dies its session ends and the lock
// with it, and another server takes it within one campaign interval.
type Leadership struct {
	held atomic.Bool
}

// Held reports whether this server leads now.
func (l *Leadership) Held() bool { return l.held.Load() }

// Campaign tries for the leadership every interval until ctx ends, and
// checks each interval that a held one is still held.
func (db *DB) Campaign(ctx context.Context, every time.Duration, log *slog.Logger) *Leadership {
	l := &Leadership{}
	go func() {
		var conn *pgx.Conn
		defer func() {
			l.held.Store(false)
			if conn != nil {
				conn.Close(context.Background())
			}
		}()
		for {
			conn = db.campaignOnce(ctx, conn, l, log)
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
	}()
	return l
}

func (db *DB) campaignOnce(ctx context.Context, conn *pgx.Conn, l *Leadership, log *slog.Logger) *pgx.Conn {
	if conn == nil {
		c, err := pgx.ConnectConfig(ctx, db.connConfig)
		if err != nil {
			log.Warn("leader election: connect", "err", err)
			return nil
		}
		conn = c
	}
	if l.held.Load() {
		if err := conn.Ping(ctx); err != nil {
			l.held.Store(false)
			log.Warn("leadership lost", "err", err)
			conn.Close(context.Background())
			return nil
		}
		return conn
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", int64(leaderKey)).Scan(&got); err != nil {
		log.Warn("leader election", "err", err)
		conn.Close(context.Background())
		return nil
	}
	if got {
		l.held.Store(true)
		log.Info("leading: this server runs retention, GC, scrub, alerts and job expiry")
	}
	return conn
}

// Broadcast sends payload to every server listening on channel (NOTIFY;
// at most 8,000 bytes).
func (db *DB) Broadcast(ctx context.Context, channel string, payload []byte) error {
	if _, err := db.pool.Exec(ctx, "SELECT pg_notify($1, $2)", channel, string(payload)); err != nil {
		return fmt.Errorf("postgres: notify %s: %w", channel, err)
	}
	return nil
}

// Listen calls fn with every payload sent on channel by any server (this
// one included) until ctx ends, on a connection of its own, connecting
// again after losing it (what was sent meanwhile is lost).
func (db *DB) Listen(ctx context.Context, channel string, fn func([]byte), log *slog.Logger) {
	for ctx.Err() == nil {
		err := db.listen(ctx, channel, fn)
		if ctx.Err() != nil {
			return
		}
		log.Warn("listen: connection lost; connecting again", "channel", channel, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (db *DB) listen(ctx context.Context, channel string, fn func([]byte)) error {
	conn, err := pgx.ConnectConfig(ctx, db.connConfig)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn([]byte(n.Payload))
	}
}
