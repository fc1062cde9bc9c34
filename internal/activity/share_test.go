package activity_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"ib/internal/activity"
	"ib/internal/manifest"
	"ib/internal/metadb/postgres"
	"ib/internal/pgtest"
)

// TestSharedLog: two servers' logs on one PostgreSQL database. A job
// started on one is seen starting, progressing and ending by a subscriber
// of the other; the other takes its progress and its end (a client's
// requests reach either); and neither keeps it running afterwards.
func TestSharedLog(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.NewDatabase(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := make([]*activity.Log, 2)
	for i := range logs {
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		logs[i] = activity.New(db, slog.New(slog.DiscardHandler), 0)
		logs[i].Share(ctx, db)
	}
	a, b := logs[0], logs[1]
	notices, stop, err := b.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	next := func(want string) activity.Notice {
		t.Helper()
		select {
		case n := <-notices:
			if n.Type != want {
				t.Fatalf("notice %q (job %+v), want %q", n.Type, n.Job, want)
			}
			return n
		case <-time.After(10 * time.Second):
			t.Fatalf("no %q notice from the other server", want)
		}
		return activity.Notice{}
	}
	time.Sleep(300 * time.Millisecond) // both listening
	job, err := a.Start(ctx, activity.KindBackup, manifest.Tags{"node": "n"}, "10.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := next("start"); n.Job.ID != job.ID {
		t.Fatalf("start of job %d, want %d", n.Job.ID, job.ID)
	}
	if err := a.Update(ctx, job.ID, activity.Progress{Phase: "upload", Files: 7}); err != nil {
		t.Fatal(err)
	}
	if n := next("progress"); n.Job.Progress == nil || n.Job.Progress.Files != 7 {
		t.Fatalf("progress from the other server: %+v", n.Job)
	}
	if run := b.Running(); len(run) != 1 || run[0].ID != job.ID {
		t.Fatalf("the other server's running jobs: %+v", run)
	}
	// The client's next requests reach b.
	if err := b.Update(ctx, job.ID, activity.Progress{Phase: "upload", Files: 9}); err != nil {
		t.Fatal(err)
	}
	next("progress")
	if err := b.Attach(ctx, job.ID, 42); err != nil {
		t.Fatal(err)
	}
	done, err := b.Finish(ctx, job.ID, activity.End{Status: activity.OK, Files: 9})
	if err != nil || done.BackupID != 42 {
		t.Fatalf("finish on the other server: %+v, %v", done, err)
	}
	next("end")
	deadline := time.Now().Add(10 * time.Second)
	for len(a.Running()) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the first server still runs %+v", a.Running())
		}
		time.Sleep(20 * time.Millisecond)
	}
	got, err := a.Job(ctx, job.ID)
	if err != nil || got.Status != activity.OK || got.BackupID != 42 || got.Files != 9 {
		t.Fatalf("the job as the first server reads it: %+v, %v", got, err)
	}
}
