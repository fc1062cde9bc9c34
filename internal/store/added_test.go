package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/manifest"
)

// Issue 18: each backup says what it added to the server: the bytes of
// the blocks no backup had before it (shared blocks count for the first
// backup that had them only).
func TestAddedBytes(t *testing.T) {
	srv := ibtest.StartServer(t)
	api, _ := apiclient.New(srv.URL, srv.Token)
	ctx := context.Background()
	src := t.TempDir()
	mt := time.Unix(1700000000, 0)
	ibtest.WriteFile(t, filepath.Join(src, "a"), ibtest.RandomBytes(300_000), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "b"), ibtest.RandomBytes(1000), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "b-copy"), nil, 0o644, mt)
	run := func() int64 {
		res, err := backup.Run(ctx, api, src, backup.Options{Tags: manifest.Tags{"node": "added"}, IsNotFound: apiclient.IsNotFound})
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	added := func(id int64) int64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			b, err := api.Backup(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if b.AddedBytes != nil {
				return *b.AddedBytes
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("backup %d: no added_bytes", id)
		return 0
	}
	first := run()
	if got := added(first); got != 301_000 {
		t.Errorf("first backup added %d bytes, want 301000", got)
	}
	ibtest.WriteFile(t, filepath.Join(src, "c"), ibtest.RandomBytes(5000), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "b-copy"), nil, 0o644, mt.Add(time.Hour))
	second := run()
	if got := added(second); got != 5000 {
		t.Errorf("second backup added %d bytes, want 5000 (c only)", got)
	}
}
