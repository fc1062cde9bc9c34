package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"ib/internal/metadb"
)

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// StartJob adds a running job and returns its id. A job with j.Key
// (when not empty) is not added again: its id comes back with existed.
func (db *DB) StartJob(ctx context.Context, j metadb.Job) (id int64, existed bool, err error) {
	var key *string
	if j.Key != "" {
		key = &j.Key
	}
	err = db.pool.QueryRow(ctx, `INSERT INTO jobs (kind, tags, backup_id, client, started, status, key) VALUES ($1, $2, $3, $4, $5, 'running', $6)
ON CONFLICT (key) DO NOTHING RETURNING id`,
		j.Kind, metadb.TagsJSON(j.Tags), nullID(j.BackupID), j.Client, j.Started.UnixNano(), key).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		err, existed = db.pool.QueryRow(ctx, "SELECT id FROM jobs WHERE key = $1", j.Key).Scan(&id), true
	}
	if err != nil {
		return 0, false, fmt.Errorf("start job: %w", err)
	}
	return id, existed, nil
}

// FinishJob ends a running job; metadb.ErrNotFound if it is not running.
func (db *DB) FinishJob(ctx context.Context, j metadb.Job) error {
	tag, err := db.pool.Exec(ctx, `UPDATE jobs SET finished = $1, status = $2, backup_id = COALESCE($3, backup_id), bytes = $4, files = $5, error = $6
WHERE id = $7 AND status = 'running'`, j.Finished.UnixNano(), j.Status, nullID(j.BackupID), j.Bytes, j.Files, j.Error, j.ID)
	if err != nil {
		return fmt.Errorf("finish job %d: %w", j.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("job %d is not running: %w", j.ID, metadb.ErrNotFound)
	}
	return nil
}

// AddJobEvent appends a line to a job's log.
func (db *DB) AddJobEvent(ctx context.Context, id int64, e metadb.JobEvent) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO job_events (job_id, at, level, message) VALUES ($1, $2, $3, $4)`,
		id, e.At.UnixNano(), e.Level, e.Message); err != nil {
		return fmt.Errorf("job %d event: %w", id, err)
	}
	return nil
}

// Job returns one job and its log.
func (db *DB) Job(ctx context.Context, id int64) (metadb.Job, []metadb.JobEvent, error) {
	j, err := metadb.ScanJob(db.pool.QueryRow(ctx, `SELECT `+metadb.JobColumns+` FROM jobs WHERE id = $1`, id))
	if err != nil {
		if err == pgx.ErrNoRows {
			return metadb.Job{}, nil, fmt.Errorf("job %d: %w", id, metadb.ErrNotFound)
		}
		return metadb.Job{}, nil, fmt.Errorf("job %d: %w", id, err)
	}
	rows, err := db.pool.Query(ctx, `SELECT at, level, message FROM job_events WHERE job_id = $1 ORDER BY at LIMIT 1000`, id)
	if err != nil {
		return metadb.Job{}, nil, fmt.Errorf("job %d events: %w", id, err)
	}
	defer rows.Close()
	var evs []metadb.JobEvent
	for rows.Next() {
		var e metadb.JobEvent
		var at int64
		if err := rows.Scan(&at, &e.Level, &e.Message); err != nil {
			return metadb.Job{}, nil, err
		}
		e.At = time.Unix(0, at).UTC()
		evs = append(evs, e)
	}
	return j, evs, rows.Err()
}

// Jobs lists jobs, newest first (a tag filter may leave a page short).
func (db *DB) Jobs(ctx context.Context, f metadb.JobFilter) ([]metadb.Job, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Kind != "" {
		add("kind = $%d", f.Kind)
	}
	if f.Status != "" {
		add("status = $%d", f.Status)
	}
	if f.Before > 0 {
		add("id < $%d", f.Before)
	}
	q := `SELECT ` + metadb.JobColumns + ` FROM jobs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	defer rows.Close()
	jobs := []metadb.Job{}
	for rows.Next() {
		j, err := metadb.ScanJob(rows)
		if err != nil {
			return nil, err
		}
		if len(f.Tags) == 0 || j.Tags.Matches(f.Tags) {
			jobs = append(jobs, j)
		}
	}
	return jobs, rows.Err()
}

// ExpireJobs ends the running jobs lost says are lost and deletes jobs
// started before keep.
func (db *DB) ExpireJobs(ctx context.Context, now time.Time, lost func(metadb.Job) bool, keep time.Time) (lostIDs []int64, deleted int64, err error) {
	running, err := db.Jobs(ctx, metadb.JobFilter{Status: "running", Limit: 100000})
	if err != nil {
		return nil, 0, err
	}
	for _, j := range running {
		if !lost(j) {
			continue
		}
		tag, err := db.pool.Exec(ctx, `UPDATE jobs SET status = 'lost', finished = $1, error = 'no word from the client' WHERE id = $2 AND status = 'running'`, now.UnixNano(), j.ID)
		if err != nil {
			return lostIDs, 0, fmt.Errorf("expire job %d: %w", j.ID, err)
		}
		if tag.RowsAffected() > 0 {
			lostIDs = append(lostIDs, j.ID)
		}
	}
	tag, err := db.pool.Exec(ctx, `DELETE FROM jobs WHERE started < $1 AND status != 'running'`, keep.UnixNano())
	if err != nil {
		return lostIDs, 0, fmt.Errorf("delete old jobs: %w", err)
	}
	return lostIDs, tag.RowsAffected(), nil
}

// Alerts returns the firing alerts.
func (db *DB) Alerts(ctx context.Context) ([]metadb.Alert, error) {
	rows, err := db.pool.Query(ctx, `SELECT key, kind, message, since FROM alerts ORDER BY since`)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	defer rows.Close()
	var out []metadb.Alert
	for rows.Next() {
		var a metadb.Alert
		var since int64
		if err := rows.Scan(&a.Key, &a.Kind, &a.Message, &since); err != nil {
			return nil, err
		}
		a.Since = time.Unix(0, since).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// FireAlert records a firing alert.
func (db *DB) FireAlert(ctx context.Context, a metadb.Alert) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO alerts (key, kind, message, since) VALUES ($1, $2, $3, $4)
ON CONFLICT (key) DO UPDATE SET kind = EXCLUDED.kind, message = EXCLUDED.message, since = EXCLUDED.since`,
		a.Key, a.Kind, a.Message, a.Since.UnixNano()); err != nil {
		return fmt.Errorf("alert %s: %w", a.Key, err)
	}
	return nil
}

// ClearAlert removes an alert.
func (db *DB) ClearAlert(ctx context.Context, key string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM alerts WHERE key = $1`, key); err != nil {
		return fmt.Errorf("alert %s: %w", key, err)
	}
	return nil
}

// TouchJob records a word from a running job's client.
func (db *DB) TouchJob(ctx context.Context, id int64, at time.Time) error {
	if _, err := db.pool.Exec(ctx, `UPDATE jobs SET seen = $1 WHERE id = $2 AND status = 'running'`, at.UnixNano(), id); err != nil {
		return fmt.Errorf("job %d: %w", id, err)
	}
	return nil
}

// SetJobBackup records the backup a running job made.
func (db *DB) SetJobBackup(ctx context.Context, id, backupID int64) error {
	if _, err := db.pool.Exec(ctx, `UPDATE jobs SET backup_id = $1 WHERE id = $2 AND status = 'running'`, backupID, id); err != nil {
		return fmt.Errorf("job %d: %w", id, err)
	}
	return nil
}
