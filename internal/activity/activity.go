// Package activity is the server's activity log: every backup, restore,
// verify, whole-backup download, delete, prune, GC and scrub is a job in
// the database with its log; running jobs carry their live progress in
// memory, and subscribers (the Server-Sent Events stream) hear of each
// start, progress and end.
package activity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"ib/internal/manifest"
	"ib/internal/metadb"
)

// Kinds of jobs. Clients report the first three; the server records the
// others itself.
const (
	KindBackup  = "backup"
	KindRestore = "restore"
	KindVerify  = "verify"
	KindArchive = "archive" // a tar or tar.lz4 of a whole backup sent
	KindDelete  = "delete"
	KindPrune   = "prune"
	KindGC      = "gc"
	KindScrub   = "scrub"
)

// ClientKinds are the kinds a client may start.
var ClientKinds = []string{KindBackup, KindRestore, KindVerify}

// Kinds are all kinds.
var Kinds = []string{KindBackup, KindRestore, KindVerify, KindArchive, KindDelete, KindPrune, KindGC, KindScrub}

// Statuses of a job.
const (
	Running = "running"
	OK      = "ok"
	Warning = "warning"
	Failed  = "failed"
	Lost    = "lost" // its client stopped reporting
)

// Statuses are all statuses; EndStatuses those a job may end with.
var (
	Statuses    = []string{Running, OK, Warning, Failed, Lost}
	EndStatuses = []string{OK, Warning, Failed}
)

// Limits.
const (
	MaxRunning     = 1000    // running jobs at once (a client that starts jobs and never ends them is capped)
	MaxSubscribers = 256     // event streams at once
	MaxError       = 4 << 10 // bytes of a job's error
	LostAfter      = 10 * time.Minute
	DefaultKeep    = 90 * 24 * time.Hour
	subBuffer      = 256
)

var (
	ErrTooMany    = errors.New("too many")
	ErrNotRunning = errors.New("job is not running")
	errNoLog      = errors.New("no activity log") // a nil *Log records nothing
)

// Progress is what a running job has done.
type Progress struct {
	Phase         string    `json:"phase,omitempty"`
	Files         int64     `json:"files"`
	TotalFiles    int64     `json:"total_files,omitempty"`
	Bytes         int64     `json:"bytes"` // logical bytes done (hashed, reused, restored)
	TotalBytes    int64     `json:"total_bytes,omitempty"`
	BytesUploaded int64     `json:"bytes_uploaded"` // wire bytes sent or received
	At            time.Time `json:"at"`
}

// Job is a job as the API shows it.
type Job struct {
	ID       int64         `json:"id"`
	Kind     string        `json:"kind"`
	Tags     manifest.Tags `json:"tags,omitempty"`
	BackupID int64         `json:"backup_id,omitempty"`
	Client   string        `json:"client,omitempty"`
	Started  time.Time     `json:"started"`
	Finished *time.Time    `json:"finished,omitempty"`
	Status   string        `json:"status"`
	Bytes    int64         `json:"bytes"`
	Files    int64         `json:"files"`
	Error    string        `json:"error,omitempty"`
	Progress *Progress     `json:"progress,omitempty"`
	Events   []Event       `json:"events,omitempty"`
}

// Event is a line of a job's log.
type Event struct {
	At      time.Time `json:"at"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// Notice is what subscribers hear: a job started, progressed or ended.
type Notice struct {
	Type string `json:"type"` // start, progress, end
	Job  Job    `json:"job"`
}

// Rows are the activity log's rows in the metadata store.
type Rows interface {
	// StartJob adds a running job and returns its id; a job with j.Key
	// (not empty) is not added again: its id comes back with existed.
	StartJob(ctx context.Context, j metadb.Job) (id int64, existed bool, err error)
	// FinishJob ends a running job (its finish time, status, counts, error).
	FinishJob(ctx context.Context, j metadb.Job) error
	AddJobEvent(ctx context.Context, id int64, e metadb.JobEvent) error
	// Job returns one job and its events; metadb.ErrNotFound.
	Job(ctx context.Context, id int64) (metadb.Job, []metadb.JobEvent, error)
	Jobs(ctx context.Context, f metadb.JobFilter) ([]metadb.Job, error)
	// ExpireJobs marks the running jobs lost says are lost and deletes the
	// jobs finished before keep.
	ExpireJobs(ctx context.Context, now time.Time, lost func(metadb.Job) bool, keep time.Time) ([]int64, int64, error)
	// TouchJob records a word from a running job's client.
	TouchJob(ctx context.Context, id int64, at time.Time) error
	// SetJobBackup records the backup a running job made.
	SetJobBackup(ctx context.Context, id, backupID int64) error
}

// Log is the activity log of one server.
type Log struct {
	db   Rows
	log  *slog.Logger
	now  func() time.Time
	keep time.Duration

	mu      sync.Mutex
	live    map[int64]*Job // running jobs, with their last progress
	subs    map[chan Notice]struct{}
	touched map[int64]time.Time // when each live job's word last went to the database
	// OnEnd, if set, hears of every job that ends (alerts, metrics).
	OnEnd func(Job)
	// Leader, if set, says whether this server expires jobs (one server
	// of those sharing a database does).
	Leader func() bool
	// fanout, if set, carries notices to and from the other servers of a
	// shared database; origin tells this server's own apart.
	fanout Fanout
	origin string
}

// Fanout carries notices between the servers of one database.
type Fanout interface {
	Broadcast(ctx context.Context, channel string, payload []byte) error
	Listen(ctx context.Context, channel string, fn func([]byte), log *slog.Logger)
}

// fanoutChannel is the database channel of the notices.
const fanoutChannel = "ib_activity"

// wireNotice is a notice between servers.
type wireNotice struct {
	Origin string `json:"origin"`
	Notice
}

// Share sends this log's notices to the other servers of a shared
// database and hears theirs, until ctx ends: every server's event stream
// then shows every job, whichever server its client reaches.
func (l *Log) Share(ctx context.Context, f Fanout) {
	var id [8]byte
	rand.Read(id[:])
	l.mu.Lock()
	l.fanout, l.origin = f, hex.EncodeToString(id[:])
	l.mu.Unlock()
	go f.Listen(ctx, fanoutChannel, l.heard, l.log)
}

// heard applies a notice from another server to the live jobs and passes
// it to this server's subscribers.
func (l *Log) heard(payload []byte) {
	var w wireNotice
	if err := json.Unmarshal(payload, &w); err != nil {
		l.log.Warn("activity notice from another server", "err", err)
		return
	}
	l.mu.Lock()
	if w.Origin == l.origin {
		l.mu.Unlock()
		return
	}
	j := w.Job
	switch w.Type {
	case "start", "progress":
		if len(l.live) < MaxRunning || l.live[j.ID] != nil {
			l.live[j.ID] = &j
		}
	case "end":
		delete(l.live, j.ID)
		delete(l.touched, j.ID)
	}
	l.mu.Unlock()
	l.deliver(w.Notice)
}

// touchEvery spaces the heartbeats a running job's progress writes to
// the database: often enough that no server takes it for lost.
const touchEvery = LostAfter / 10

// New returns the log over db; jobs are kept for keep (0: DefaultKeep).
func New(db Rows, log *slog.Logger, keep time.Duration) *Log {
	if keep <= 0 {
		keep = DefaultKeep
	}
	return &Log{db: db, log: log, now: time.Now, keep: keep, live: map[int64]*Job{}, touched: map[int64]time.Time{}, subs: map[chan Notice]struct{}{}}
}

// SetClock replaces the clock (tests).
func (l *Log) SetClock(now func() time.Time) { l.now = now }

func fromRow(r metadb.Job) Job {
	j := Job{ID: r.ID, Kind: r.Kind, Tags: r.Tags, BackupID: r.BackupID, Client: r.Client, Started: r.Started,
		Status: r.Status, Bytes: r.Bytes, Files: r.Files, Error: r.Error}
	if !r.Finished.IsZero() {
		f := r.Finished
		j.Finished = &f
	}
	return j
}

// Start records a running job.
func (l *Log) Start(ctx context.Context, kind string, tags manifest.Tags, client string, backupID int64) (Job, error) {
	return l.StartKeyed(ctx, kind, tags, client, backupID, "")
}

// StartKeyed starts a job as Start does, once per key: a start retried
// with the key of a job it already started (its answer was lost) returns
// that job.
func (l *Log) StartKeyed(ctx context.Context, kind string, tags manifest.Tags, client string, backupID int64, key string) (Job, error) {
	if l == nil {
		return Job{}, errNoLog
	}
	if !slices.Contains(Kinds, kind) {
		return Job{}, fmt.Errorf("kind %q: want one of %v", kind, Kinds)
	}
	l.mu.Lock()
	n := len(l.live)
	l.mu.Unlock()
	if n >= MaxRunning {
		return Job{}, fmt.Errorf("%w: %d jobs running", ErrTooMany, n)
	}
	row := metadb.Job{Kind: kind, Tags: tags, Client: client, BackupID: backupID, Started: l.now().UTC(), Key: key}
	id, existed, err := l.db.StartJob(ctx, row)
	if err != nil {
		return Job{}, err
	}
	if existed {
		return l.started(ctx, id)
	}
	row.ID, row.Status = id, Running
	j := fromRow(row)
	l.mu.Lock()
	l.live[id] = &j
	l.mu.Unlock()
	l.publish(Notice{Type: "start", Job: j})
	return j, nil
}

// started returns a job started before, as the log holds it.
func (l *Log) started(ctx context.Context, id int64) (Job, error) {
	if err := l.adopt(ctx, id); err != nil && !errors.Is(err, ErrNotRunning) {
		return Job{}, err
	}
	l.mu.Lock()
	j, ok := l.live[id]
	l.mu.Unlock()
	if ok {
		return *j, nil
	}
	row, _, err := l.db.Job(ctx, id)
	if err != nil {
		return Job{}, err
	}
	return fromRow(row), nil
}

// Update sets a running job's progress.
func (l *Log) Update(ctx context.Context, id int64, p Progress) error {
	if err := l.adopt(ctx, id); err != nil {
		return err
	}
	p.At = l.now().UTC()
	l.mu.Lock()
	j, ok := l.live[id]
	if !ok {
		l.mu.Unlock()
		return fmt.Errorf("job %d: %w", id, ErrNotRunning)
	}
	j.Progress = &p
	snap := *j
	touch := p.At.Sub(l.touched[id]) >= touchEvery
	if touch {
		l.touched[id] = p.At
	}
	l.mu.Unlock()
	if touch {
		if err := l.db.TouchJob(ctx, id, p.At); err != nil {
			l.log.Warn("job heartbeat not recorded", "job", id, "err", err)
		}
	}
	l.publish(Notice{Type: "progress", Job: snap})
	return nil
}

// adopt makes a job that another server started (on the same database)
// live here, if it is running: a client's requests may reach any server.
func (l *Log) adopt(ctx context.Context, id int64) error {
	l.mu.Lock()
	_, ok := l.live[id]
	l.mu.Unlock()
	if ok {
		return nil
	}
	row, _, err := l.db.Job(ctx, id)
	if errors.Is(err, metadb.ErrNotFound) || (err == nil && row.Status != Running) {
		return fmt.Errorf("job %d: %w", id, ErrNotRunning)
	}
	if err != nil {
		return err
	}
	j := fromRow(row)
	l.mu.Lock()
	if _, ok := l.live[id]; !ok && len(l.live) < MaxRunning {
		l.live[id] = &j
		l.touched[id] = row.Seen
	}
	l.mu.Unlock()
	return nil
}

// Note adds a line to a job's log.
func (l *Log) Note(ctx context.Context, id int64, level, msg string) {
	if l == nil {
		return
	}
	if err := l.db.AddJobEvent(ctx, id, metadb.JobEvent{At: l.now().UTC(), Level: level, Message: msg}); err != nil {
		l.log.Warn("job event not recorded", "job", id, "err", err)
	}
}

// Attach records the backup a running job made.
func (l *Log) Attach(ctx context.Context, id, backupID int64) error {
	if l == nil {
		return errNoLog
	}
	if err := l.adopt(ctx, id); err != nil {
		return err
	}
	l.mu.Lock()
	j, ok := l.live[id]
	if ok {
		j.BackupID = backupID
	}
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("job %d: %w", id, ErrNotRunning)
	}
	// In the row too: the job's end may reach another server.
	return l.db.SetJobBackup(ctx, id, backupID)
}

// End is how a job ended.
type End struct {
	Status   string
	BackupID int64
	Bytes    int64
	Files    int64
	Error    string
}

// Finish ends a running job.
func (l *Log) Finish(ctx context.Context, id int64, e End) (Job, error) {
	if !slices.Contains(EndStatuses, e.Status) {
		return Job{}, fmt.Errorf("status %q: want one of %v", e.Status, EndStatuses)
	}
	if len(e.Error) > MaxError {
		e.Error = e.Error[:MaxError]
	}
	if err := l.adopt(ctx, id); err != nil {
		return Job{}, err
	}
	l.mu.Lock()
	j, ok := l.live[id]
	if ok && e.BackupID == 0 {
		e.BackupID = j.BackupID
	}
	l.mu.Unlock()
	if !ok {
		return Job{}, fmt.Errorf("job %d: %w", id, ErrNotRunning)
	}
	fin := l.now().UTC()
	if err := l.db.FinishJob(ctx, metadb.Job{ID: id, Finished: fin, Status: e.Status, BackupID: e.BackupID, Bytes: e.Bytes, Files: e.Files, Error: e.Error}); err != nil {
		return Job{}, err
	}
	l.mu.Lock()
	delete(l.live, id)
	delete(l.touched, id)
	done := *j
	l.mu.Unlock()
	done.Finished, done.Status, done.BackupID, done.Bytes, done.Files, done.Error = &fin, e.Status, e.BackupID, e.Bytes, e.Files, e.Error
	l.publish(Notice{Type: "end", Job: done})
	if l.OnEnd != nil {
		l.OnEnd(done)
	}
	return done, nil
}

// Record adds a job that is already over (a delete), started at started
// (zero: now).
func (l *Log) Record(ctx context.Context, kind string, tags manifest.Tags, client string, started time.Time, e End) {
	if l == nil {
		return
	}
	if started.IsZero() {
		started = l.now()
	}
	row := metadb.Job{Kind: kind, Tags: tags, Client: client, BackupID: e.BackupID, Started: started.UTC()}
	id, _, err := l.db.StartJob(ctx, row)
	if err == nil {
		row.ID, row.Status = id, Running
		j := fromRow(row)
		l.mu.Lock()
		l.live[id] = &j
		l.mu.Unlock()
		_, err = l.Finish(ctx, id, e)
	}
	if err != nil {
		l.log.Warn("job not recorded", "kind", kind, "err", err)
	}
}

// Jobs lists jobs, newest first; running ones carry their progress.
func (l *Log) Jobs(ctx context.Context, f metadb.JobFilter) ([]Job, error) {
	rows, err := l.db.Jobs(ctx, f)
	if err != nil {
		return nil, err
	}
	jobs := make([]Job, len(rows))
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, r := range rows {
		jobs[i] = fromRow(r)
		if live, ok := l.live[r.ID]; ok && r.Status == Running {
			jobs[i].Progress, jobs[i].BackupID = live.Progress, max(jobs[i].BackupID, live.BackupID)
		}
	}
	return jobs, nil
}

// Job returns one job with its log.
func (l *Log) Job(ctx context.Context, id int64) (Job, error) {
	r, evs, err := l.db.Job(ctx, id)
	if err != nil {
		return Job{}, err
	}
	j := fromRow(r)
	for _, e := range evs {
		j.Events = append(j.Events, Event{At: e.At, Level: e.Level, Message: e.Message})
	}
	l.mu.Lock()
	if live, ok := l.live[id]; ok {
		j.Progress = live.Progress
	}
	l.mu.Unlock()
	return j, nil
}

// Running returns the running jobs (for a new subscriber).
func (l *Log) Running() []Job {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Job, 0, len(l.live))
	for _, j := range l.live {
		out = append(out, *j)
	}
	slices.SortFunc(out, func(a, b Job) int { return int(a.ID - b.ID) })
	return out
}

// Subscribe returns a channel of notices; cancel it when done. A
// subscriber too slow to take its notices is dropped (its channel closed):
// it reconnects and starts again from the running jobs.
func (l *Log) Subscribe() (<-chan Notice, func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.subs) >= MaxSubscribers {
		return nil, nil, fmt.Errorf("%w: %d event streams open", ErrTooMany, len(l.subs))
	}
	ch := make(chan Notice, subBuffer)
	l.subs[ch] = struct{}{}
	return ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[ch]; ok {
			delete(l.subs, ch)
			close(ch)
		}
	}, nil
}

func (l *Log) publish(n Notice) {
	l.deliver(n)
	l.mu.Lock()
	f, origin := l.fanout, l.origin
	l.mu.Unlock()
	if f == nil {
		return
	}
	payload, err := json.Marshal(wireNotice{Origin: origin, Notice: n})
	if err == nil && len(payload) > maxNotify {
		err = fmt.Errorf("%d bytes", len(payload))
	}
	if err == nil {
		err = f.Broadcast(context.Background(), fanoutChannel, payload)
	}
	if err != nil {
		l.log.Warn("activity notice not sent to the other servers", "job", n.Job.ID, "err", err)
	}
}

// maxNotify bounds a notice between servers (PostgreSQL's NOTIFY takes
// 8,000 bytes).
const maxNotify = 7900

// deliver passes a notice to this server's subscribers.
func (l *Log) deliver(n Notice) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ch := range l.subs {
		select {
		case ch <- n:
		default:
			delete(l.subs, ch)
			close(ch)
		}
	}
}

// Expire ends as lost the running jobs that reported nothing for
// LostAfter, and deletes jobs older than the log keeps.
func (l *Log) Expire(ctx context.Context) error {
	now := l.now()
	// A job is lost when its client said nothing for LostAfter: not here
	// (its live progress) nor to any server (its row's heartbeat).
	heard := map[int64]time.Time{}
	l.mu.Lock()
	for id, j := range l.live {
		if j.Progress != nil {
			heard[id] = j.Progress.At
		}
	}
	l.mu.Unlock()
	isLost := func(r metadb.Job) bool {
		last := r.Started
		for _, t := range []time.Time{r.Seen, heard[r.ID]} {
			if t.After(last) {
				last = t
			}
		}
		return now.Sub(last) > LostAfter
	}
	ids, deleted, err := l.db.ExpireJobs(ctx, now, isLost, now.Add(-l.keep))
	for _, id := range ids {
		l.mu.Lock()
		j, ok := l.live[id]
		delete(l.live, id)
		l.mu.Unlock()
		if ok {
			fin := now.UTC()
			j.Finished, j.Status, j.Error = &fin, Lost, "no word from the client"
			l.publish(Notice{Type: "end", Job: *j})
			if l.OnEnd != nil {
				l.OnEnd(*j)
			}
		}
	}
	if len(ids) > 0 || deleted > 0 {
		l.log.Info("activity log expired", "lost", len(ids), "deleted", deleted)
	}
	return err
}

// dropEnded forgets live jobs whose row ended meanwhile (their end
// reached another server of the same database).
func (l *Log) dropEnded(ctx context.Context) {
	l.mu.Lock()
	ids := make([]int64, 0, len(l.live))
	for id := range l.live {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	for _, id := range ids {
		row, _, err := l.db.Job(ctx, id)
		if err != nil && !errors.Is(err, metadb.ErrNotFound) {
			continue
		}
		if err == nil && row.Status == Running {
			continue
		}
		l.mu.Lock()
		j, ok := l.live[id]
		delete(l.live, id)
		delete(l.touched, id)
		l.mu.Unlock()
		if ok && err == nil {
			done := *j
			fin := row.Finished
			done.Finished, done.Status, done.BackupID, done.Bytes, done.Files, done.Error = &fin, row.Status, row.BackupID, row.Bytes, row.Files, row.Error
			l.publish(Notice{Type: "end", Job: done})
		}
	}
}

// Run expires jobs every minute until ctx ends.
func (l *Log) Run(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		l.dropEnded(ctx)
		if l.Leader != nil && !l.Leader() {
			// another server expires the jobs
		} else if err := l.Expire(ctx); err != nil && ctx.Err() == nil {
			l.log.Warn("activity log", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
