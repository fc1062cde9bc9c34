package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"ib/internal/metadb"
)

// StartJob adds a running job and returns its id. A job with j.Key
// (when not empty) is not added again: its id comes back with existed.
func (db *DB) StartJob(ctx context.Context, j metadb.Job) (id int64, existed bool, err error) {
	res, err := db.w.ExecContext(ctx, `INSERT INTO jobs (kind, tags, backup_id, client, started, status, key) VALUES (?, ?, ?, ?, ?, 'running', ?)
		ON CONFLICT (key) DO NOTHING`,
		j.Kind, metadb.TagsJSON(j.Tags), nullID(j.BackupID), j.Client, j.Started.UnixNano(), nullText(j.Key))
	if err != nil {
		return 0, false, fmt.Errorf("start job: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		id, err = res.LastInsertId()
		return id, false, err
	}
	if err := db.w.QueryRowContext(ctx, "SELECT id FROM jobs WHERE key = ?", j.Key).Scan(&id); err != nil {
		return 0, false, fmt.Errorf("start job %q: %w", j.Key, err)
	}
	return id, true, nil
}

func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// FinishJob ends a running job; metadb.ErrNotFound if it is not running.
func (db *DB) FinishJob(ctx context.Context, j metadb.Job) error {
	res, err := db.w.ExecContext(ctx, `UPDATE jobs SET finished = ?, status = ?, backup_id = COALESCE(?, backup_id), bytes = ?, files = ?, error = ?
		WHERE id = ? AND status = 'running'`,
		j.Finished.UnixNano(), j.Status, nullID(j.BackupID), j.Bytes, j.Files, j.Error, j.ID)
	if err != nil {
		return fmt.Errorf("finish job %d: %w", j.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("job %d is not running: %w", j.ID, metadb.ErrNotFound)
	}
	return nil
}

// AddJobEvent appends a line to a job's log.
func (db *DB) AddJobEvent(ctx context.Context, id int64, e metadb.JobEvent) error {
	if _, err := db.w.ExecContext(ctx, `INSERT INTO job_events (job_id, at, level, message) VALUES (?, ?, ?, ?)`,
		id, e.At.UnixNano(), e.Level, e.Message); err != nil {
		return fmt.Errorf("job %d event: %w", id, err)
	}
	return nil
}

// metadb.Job returns one job and its log.
func (db *DB) Job(ctx context.Context, id int64) (metadb.Job, []metadb.JobEvent, error) {
	j, err := metadb.ScanJob(db.r.QueryRowContext(ctx, `SELECT `+metadb.JobColumns+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return metadb.Job{}, nil, fmt.Errorf("job %d: %w", id, metadb.ErrNotFound)
	}
	if err != nil {
		return metadb.Job{}, nil, fmt.Errorf("job %d: %w", id, err)
	}
	rows, err := db.r.QueryContext(ctx, `SELECT at, level, message FROM job_events WHERE job_id = ? ORDER BY at LIMIT 1000`, id)
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

// Jobs lists jobs, newest first. A tag filter is applied to the rows the
// other conditions select, so a page may hold fewer than Limit; the last
// id seen pages on.
func (db *DB) Jobs(ctx context.Context, f metadb.JobFilter) ([]metadb.Job, error) {
	var where []string
	var args []any
	if f.Kind != "" {
		where, args = append(where, "kind = ?"), append(args, f.Kind)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.Before > 0 {
		where, args = append(where, "id < ?"), append(args, f.Before)
	}
	q := `SELECT ` + metadb.JobColumns + ` FROM jobs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, f.Limit)
	rows, err := db.r.QueryContext(ctx, q, args...)
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

// RunningJobs counts the running jobs.
func (db *DB) RunningJobs(ctx context.Context) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT count(*) FROM jobs WHERE status = 'running'`).Scan(&n)
	return n, err
}

// ExpireJobs ends running jobs started before lost as "lost" (their
// client went away without a word) and deletes jobs started before keep.
func (db *DB) ExpireJobs(ctx context.Context, now time.Time, lost func(metadb.Job) bool, keep time.Time) (lostIDs []int64, deleted int64, err error) {
	running, err := db.Jobs(ctx, metadb.JobFilter{Status: "running", Limit: 100000})
	if err != nil {
		return nil, 0, err
	}
	for _, j := range running {
		if !lost(j) {
			continue
		}
		if _, err := db.w.ExecContext(ctx, `UPDATE jobs SET status = 'lost', finished = ?, error = 'no word from the client' WHERE id = ? AND status = 'running'`, now.UnixNano(), j.ID); err != nil {
			return lostIDs, 0, fmt.Errorf("expire job %d: %w", j.ID, err)
		}
		lostIDs = append(lostIDs, j.ID)
	}
	res, err := db.w.ExecContext(ctx, `DELETE FROM jobs WHERE started < ? AND status != 'running'`, keep.UnixNano())
	if err != nil {
		return lostIDs, 0, fmt.Errorf("delete old jobs: %w", err)
	}
	deleted, _ = res.RowsAffected()
	return lostIDs, deleted, nil
}

// TouchJob records a word from a running job's client.
func (db *DB) TouchJob(ctx context.Context, id int64, at time.Time) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE jobs SET seen = ? WHERE id = ? AND status = 'running'`, at.UnixNano(), id); err != nil {
		return fmt.Errorf("job %d: %w", id, err)
	}
	return nil
}

// SetJobBackup records the backup a running job made.
func (db *DB) SetJobBackup(ctx context.Context, id, backupID int64) error {
	if _, err := db.w.ExecContext(ctx, `UPDATE jobs SET backup_id = ? WHERE id = ? AND status = 'running'`, backupID, id); err != nil {
		return fmt.Errorf("job %d: %w", id, err)
	}
	return nil
}
