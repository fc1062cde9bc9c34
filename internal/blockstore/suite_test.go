package blockstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"ib/internal/block"
	"ib/internal/blockstore"
	"ib/internal/s3test"
)

// runSuite is the one test body every Store passes.
func runSuite(t *testing.T, s blockstore.Store) {
	ctx := context.Background()
	key := func(data []byte) string { return block.Sum(data).String() }
	get := func(t *testing.T, k string) []byte {
		t.Helper()
		rc, err := s.Get(ctx, k)
		if err != nil {
			t.Fatalf("Get(%s): %v", k, err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		return b
	}

	t.Run("put get stat delete", func(t *testing.T) {
		data := []byte("a small object")
		k := key(data)
		if err := s.Put(ctx, k, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		if got := get(t, k); !bytes.Equal(got, data) {
			t.Fatalf("Get = %q, want %q", got, data)
		}
		info, err := s.Stat(ctx, k)
		if err != nil || info.Size != int64(len(data)) || info.Key != k {
			t.Fatalf("Stat = %+v, %v", info, err)
		}
		if err := s.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Stat(ctx, k); !errors.Is(err, blockstore.ErrNotFound) {
			t.Fatalf("Stat after delete: %v, want ErrNotFound", err)
		}
		if err := s.Delete(ctx, k); err != nil {
			t.Fatalf("second Delete: %v", err)
		}
	})

	t.Run("missing keys", func(t *testing.T) {
		k := key([]byte("never stored"))
		if _, err := s.Get(ctx, k); !errors.Is(err, blockstore.ErrNotFound) {
			t.Errorf("Get: %v, want ErrNotFound", err)
		}
		if _, err := s.Stat(ctx, k); !errors.Is(err, blockstore.ErrNotFound) {
			t.Errorf("Stat: %v, want ErrNotFound", err)
		}
	})

	t.Run("overwrite is idempotent", func(t *testing.T) {
		data := []byte("same bytes twice")
		k := key(data)
		for range 2 {
			if err := s.Put(ctx, k, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
		}
		if got := get(t, k); !bytes.Equal(got, data) {
			t.Fatalf("Get = %q", got)
		}
	})

	t.Run("large object", func(t *testing.T) {
		data := make([]byte, 9<<20+17)
		rand.Read(data)
		k := key(data)
		if err := s.Put(ctx, k, bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		if got := get(t, k); !bytes.Equal(got, data) {
			t.Fatalf("large object differs (%d bytes back)", len(got))
		}
	})

	t.Run("concurrent puts of one key", func(t *testing.T) {
		data := make([]byte, 1<<20)
		rand.Read(data)
		k := key(data)
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				errs <- s.Put(ctx, k, bytes.NewReader(data), int64(len(data)))
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if got := get(t, k); !bytes.Equal(got, data) {
			t.Fatal("object differs after concurrent puts")
		}
	})

	t.Run("cancelled put stores nothing", func(t *testing.T) {
		data := make([]byte, 4<<20)
		rand.Read(data)
		k := key(data)
		cctx, cancel := context.WithCancel(ctx)
		r := &cancelAfter{r: bytes.NewReader(data), n: 1 << 20, cancel: cancel}
		if err := s.Put(cctx, k, r, int64(len(data))); err == nil {
			t.Fatal("Put with a context cancelled mid-way succeeded")
		}
		if _, err := s.Stat(ctx, k); !errors.Is(err, blockstore.ErrNotFound) {
			t.Fatalf("Stat after cancelled put: %v, want ErrNotFound", err)
		}
	})

	t.Run("list", func(t *testing.T) {
		want := map[string]bool{}
		for i := range 5 {
			data := []byte{byte(i), 'l', 'i', 's', 't'}
			k := key(data)
			want[k] = true
			if err := s.Put(ctx, k, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]bool{}
		if err := s.List(ctx, func(i blockstore.Info) error { seen[i.Key] = true; return nil }); err != nil {
			t.Fatal(err)
		}
		for k := range want {
			if !seen[k] {
				t.Errorf("List misses %s", k)
			}
		}
	})

	t.Run("check", func(t *testing.T) {
		if err := s.Check(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// cancelAfter cancels its context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	read   int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.read >= c.n {
		c.cancel()
	}
	if len(p) > 64<<10 {
		p = p[:64<<10]
	}
	n, err := c.r.Read(p)
	c.read += n
	return n, err
}

func TestLocalSuite(t *testing.T) {
	s, err := blockstore.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	runSuite(t, s)
}

func TestLocalRejectsBadKeys(t *testing.T) {
	s, _ := blockstore.OpenLocal(t.TempDir())
	for _, k := range []string{"", "../x", "a/b", `a\b`, ".."} {
		if err := s.Put(context.Background(), k, bytes.NewReader(nil), 0); err == nil {
			t.Errorf("Put(%q) accepted", k)
		}
	}
}

func openS3(t *testing.T, srv *s3test.Server, bucket, prefix string) *blockstore.S3 {
	t.Helper()
	s, err := blockstore.OpenS3(context.Background(), blockstore.S3Config{
		Endpoint: srv.Endpoint, Bucket: bucket, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey,
		Region: "us-east-1", Prefix: prefix,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3Suite(t *testing.T) {
	srv := s3test.Start(t)
	runSuite(t, openS3(t, srv, "ib-suite", "backups/ib"))
	// the bucket was created, objects sit under the prefix and a shard
	ents, err := os.ReadDir(filepath.Join(srv.Dir, "ib-suite", "backups", "ib"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("no shards under the prefix in the bucket: %v", err)
	}
}

func TestS3Unavailable(t *testing.T) {
	srv := s3test.Start(t)
	s := openS3(t, srv, "ib-down", "")
	srv.Stop()
	data := []byte("while down")
	err := s.Put(context.Background(), block.Sum(data).String(), bytes.NewReader(data), int64(len(data)))
	if err == nil || !strings.Contains(err.Error(), "s3 ") {
		t.Fatalf("put while S3 is down: %v, want an error naming the storage", err)
	}
	if err := s.Check(context.Background()); err == nil {
		t.Fatal("Check passed while S3 is down")
	}
	srv.Restart(t)
	if err := s.Put(context.Background(), block.Sum(data).String(), bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("put after S3 came back: %v", err)
	}
	if err := s.Check(context.Background()); err != nil {
		t.Fatalf("Check after S3 came back: %v", err)
	}
}

// PutFile moves a written temporary file into its shard folder, closing it,
// and makes the shard folder when it is missing (install renames first and
// makes folders only when the rename finds none).
func TestLocalPutFile(t *testing.T) {
	dir := t.TempDir()
	s, err := blockstore.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, data := range [][]byte{[]byte("first object"), []byte("second object, same shard folder gone")} {
		k := block.Sum(data).String()
		f, err := os.CreateTemp(s.TempDir(), "block-*")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if i == 1 { // a shard folder removed behind the store's back
			shards, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
			for _, p := range shards {
				if !strings.HasPrefix(p, s.TempDir()) {
					os.RemoveAll(filepath.Dir(p))
				}
			}
		}
		if err := s.PutFile(ctx, k, f); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("write after PutFile: %v, want the file closed", err)
		}
		if _, err := os.Stat(f.Name()); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the temporary name is still there: %v", err)
		}
		rc, err := s.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("Get = %q, want %q", got, data)
		}
	}
}
