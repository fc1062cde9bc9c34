//go:build unix

package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ib/internal/activity"
	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/block"
	"ib/internal/blockstore"
	"ib/internal/ibtest"
	"ib/internal/manifest"
	"ib/internal/s3test"
	"ib/internal/server"
)

func s3Server(t *testing.T) (*ibtest.Server, *s3test.Server, *blockstore.S3) {
	t.Helper()
	s3 := s3test.Start(t)
	cfg := blockstore.S3Config{Endpoint: s3.Endpoint, Bucket: "ib-e2e", AccessKey: s3.AccessKey, SecretKey: s3.SecretKey, Region: "us-east-1", Prefix: "blocks"}
	srv := ibtest.StartServer(t, func(o *server.Options) { o.S3 = &cfg; o.GCGrace = 0 })
	bucket, err := blockstore.OpenS3(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv, s3, bucket
}

func bucketKeys(t *testing.T, b *blockstore.S3) []string {
	t.Helper()
	var keys []string
	if err := b.List(context.Background(), func(i blockstore.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestS3OffloadEndToEnd(t *testing.T) {
	srv, _, bucket := s3Server(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	mt := time.Unix(1700000000, 42)
	for name, size := range map[string]int{"a-200B": 200, "b-262143B": 262143, "c-300KB": 300_000, "d-3MiB": 3 << 20} {
		ibtest.WriteFile(t, filepath.Join(src, name), ibtest.RandomBytes(size), 0o644, mt)
	}
	mustIB(t, conf, "backup", "create", "-q", "--node=s3", "--block-size", "4MiB", src)
	if keys := bucketKeys(t, bucket); len(keys) != 2 {
		t.Fatalf("bucket holds %d objects, want the 2 blocks of 256 KiB and more: %v", len(keys), keys)
	}
	if n := objects(t, srv); n != 0 {
		t.Fatalf("%d blocks in the local block directory with S3 configured", n)
	}
	st := srv.Store.Stats()
	if st.Blocks != 4 || st.InlineBlocks != 2 {
		t.Fatalf("stats %+v: want 4 blocks, 2 inline", st)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	mustIB(t, conf, "backup", "restore", "1", dst, "-q")
	ibtest.TreesEqual(t, src, dst, nil)

	// delete, GC: the bucket is empty
	prunes := func() (n, running int) {
		jobs := jobsOf(t, srv, "kind=prune", "")
		for _, j := range jobs {
			if j.Status == activity.Running {
				running++
			}
		}
		return len(jobs), running
	}
	before, _ := prunes()
	mustIB(t, conf, "backup", "delete", "1", "--yes")
	deadline := time.Now().Add(10 * time.Second)
	for len(bucketKeys(t, bucket)) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("bucket not emptied by GC: %v", bucketKeys(t, bucket))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The prune the delete started lists the bucket for orphans after its
	// GC: wait for its end, or it may sweep the orphan put below.
	for n, running := prunes(); n <= before || running > 0; n, running = prunes() {
		if time.Now().After(deadline) {
			t.Fatalf("the prune after the delete did not end: %d prune jobs (%d before), %d running", n, before, running)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// an object without a row (a crash between the S3 write and the SQLite
	// write) is found by listing and removed
	orphan := ibtest.RandomBytes(300 << 10)
	if err := bucket.Put(context.Background(), block.Sum(orphan).String(), bytes.NewReader(orphan), int64(len(orphan))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // S3 times have a one-second resolution
	out := mustIB(t, conf, "backup", "prune", "--keep-last", "1", "--json", "--all", "--yes")
	if keys := bucketKeys(t, bucket); len(keys) != 0 || !strings.Contains(out, `"orphans_deleted": 1`) {
		t.Fatalf("orphan not swept: %v\n%s", keys, out)
	}
}

func TestS3Outage(t *testing.T) {
	srv, s3, bucket := s3Server(t)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "big"), ibtest.RandomBytes(1<<20), 0o644, time.Unix(1700000000, 0))
	api, err := apiclient.New(srv.URL, srv.Token)
	if err != nil {
		t.Fatal(err)
	}
	api.Retry = apiclient.Retry{Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond, MaxElapsed: 3 * time.Second}
	opts := backup.Options{Tags: manifest.Tags{"node": "down"}, IsNotFound: apiclient.IsNotFound}

	s3.Stop()
	_, err = backup.Run(context.Background(), api, src, opts)
	if err == nil || !strings.Contains(err.Error(), "503") || !strings.Contains(err.Error(), "s3 ") {
		t.Fatalf("backup with S3 down: %v; want a 503 naming the S3 store", err)
	}
	if st := srv.Store.Stats(); st.Backups != 0 || st.Blocks != 0 {
		t.Fatalf("a failed backup left %d backups and %d blocks", st.Backups, st.Blocks)
	}
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "s3 ") {
		t.Fatalf("/healthz with S3 down: %d %s", resp.StatusCode, body)
	}

	s3.Restart(t)
	res, err := backup.Run(context.Background(), api, src, opts)
	if err != nil || res.NewBlocks != 1 {
		t.Fatalf("backup after S3 came back, without restarting ib: %+v %v", res, err)
	}
	if keys := bucketKeys(t, bucket); len(keys) != 1 {
		t.Fatalf("bucket holds %v", keys)
	}
	var h map[string]string
	resp, _ = http.Get(srv.URL + "/healthz")
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 200 || h["status"] != "ok" {
		t.Fatalf("/healthz after recovery: %d %v", resp.StatusCode, h)
	}
}
