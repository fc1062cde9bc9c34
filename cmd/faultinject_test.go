//go:build unix

package cmd_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/blockstore"
	"ib/internal/ibtest"
	"ib/internal/manifest"
	"ib/internal/restore"
	"ib/internal/server"
)

func faultTree(t *testing.T) string {
	t.Helper()
	src := t.TempDir()
	// 20 files of 400 KiB: enough uploads at once that a proxy cutting
	// every 3rd connection always has connections to cut.
	for i := range 20 {
		ibtest.WriteFile(t, filepath.Join(src, "db", string(rune('a'+i))+".sst"), ibtest.RandomBytes(400<<10+i), 0o644, time.Unix(1700000000, int64(i)))
		// small, but over block.InlineMax: uploaded in a pack
		ibtest.WriteFile(t, filepath.Join(src, "small", string(rune('a'+i))), ibtest.RandomBytes(200+i), 0o644, time.Unix(1700000000, int64(i)))
	}
	return src
}

func client(t *testing.T, url, token string, elapsed time.Duration) *apiclient.Client {
	t.Helper()
	api, err := apiclient.New(url, token)
	if err != nil {
		t.Fatal(err)
	}
	api.Retry = apiclient.Retry{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond, MaxElapsed: elapsed}
	return api
}

func doBackup(api *apiclient.Client, src, node string) (backup.Result, error) {
	return backup.Run(context.Background(), api, src, backup.Options{
		Tags: manifest.Tags{"node": node}, BlockSize: 256 << 10, Jobs: 4, IsNotFound: apiclient.IsNotFound})
}

func restoreAndCompare(t *testing.T, api *apiclient.Client, id int64, src string) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "dst")
	if _, err := restore.Run(context.Background(), api, id, dst, restore.Options{}); err != nil {
		t.Fatalf("restore %d: %v", id, err)
	}
	ibtest.TreesEqual(t, src, dst, nil)
}

func TestFaultyBlockStore(t *testing.T) {
	var faulty *blockstore.Faulty
	srv := ibtest.StartServer(t, func(o *server.Options) {
		o.GCGrace = 0
		o.WrapBlocks = func(s blockstore.Store) blockstore.Store { faulty = blockstore.NewFaulty(s); return faulty }
	})
	src := faultTree(t)
	api := client(t, srv.URL, srv.Token, 20*time.Second)

	t.Run("failing and stalling puts are retried", func(t *testing.T) {
		faulty.SetFaults(blockstore.Fault{Op: blockstore.OpPut, N: 2, Times: 3, Fail: true},
			blockstore.Fault{Op: blockstore.OpPut, N: 7, Stall: 1500 * time.Millisecond})
		res, err := doBackup(api, src, "put")
		if err != nil {
			t.Fatalf("backup through failing puts: %v", err)
		}
		st := srv.Store.Stats()
		offloaded := int(st.Blocks - st.InlineBlocks)
		if got := faulty.Calls(blockstore.OpPut); offloaded == 0 || got < offloaded+3 {
			t.Fatalf("%d puts for %d offloaded blocks and 3 failures: the failures were not retried", got, offloaded)
		}
		restoreAndCompare(t, api, res.ID, src)
	})

	t.Run("failing gets are retried", func(t *testing.T) {
		before := faulty.Calls(blockstore.OpGet)
		faulty.SetFaults(blockstore.Fault{Op: blockstore.OpGet, N: before + 1, Times: 4, Fail: true})
		restoreAndCompare(t, api, 1, src)
	})

	t.Run("a store that keeps failing fails the backup cleanly", func(t *testing.T) {
		faulty.SetFaults(blockstore.Fault{Op: blockstore.OpPut, N: 1, Times: 1 << 30, Fail: true})
		short := client(t, srv.URL, srv.Token, 2*time.Second)
		other := faultTree(t)
		before := srv.Store.Stats().Backups
		_, err := doBackup(short, other, "down")
		if err == nil || !strings.Contains(err.Error(), "503") {
			t.Fatalf("backup with a dead store: %v, want a 503 failure", err)
		}
		if got := srv.Store.Stats().Backups; got != before {
			t.Fatalf("a failed backup committed: %d backups, was %d", got, before)
		}
		faulty.SetFaults()
	})

	t.Run("failing deletes leave orphans that the next GC removes", func(t *testing.T) {
		ctx := context.Background()
		if _, err := srv.Store.Delete(ctx, 1); err != nil {
			t.Fatal(err)
		}
		faulty.SetFaults(blockstore.Fault{Op: blockstore.OpDelete, N: 1, Times: 1 << 30, Fail: true})
		rep, err := srv.Store.GC(ctx, 0)
		if err != nil || rep.BlocksDeleted == 0 {
			t.Fatalf("GC with failing deletes: %+v %v", rep, err)
		}
		left := objects(t, srv)
		faulty.SetFaults()
		time.Sleep(10 * time.Millisecond)
		rep, err = srv.Store.GC(ctx, 0)
		if err != nil || rep.OrphansDeleted == 0 || objects(t, srv) >= left {
			t.Fatalf("second GC: %+v %v; %d objects, %d before", rep, err, objects(t, srv), left)
		}
	})
}

func TestConnectionsCutMidBody(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := faultTree(t)
	up := ibtest.StartCuttingProxy(t, srv.Addr, 3, 100<<10) // every 3rd connection dies after 100 KiB
	res, err := doBackup(client(t, up.URL, srv.Token, 30*time.Second), src, "cut")
	if err != nil {
		t.Fatalf("backup through a cutting proxy: %v", err)
	}
	if up.Cuts.Load() == 0 {
		t.Fatal("no connection was cut")
	}
	down := ibtest.StartCuttingProxy(t, srv.Addr, 2, 150<<10)
	restoreAndCompare(t, client(t, down.URL, srv.Token, 30*time.Second), res.ID, src)
	if down.Cuts.Load() == 0 {
		t.Fatal("no download was cut")
	}
	// and a second backup (the previous manifest comes through the cuts)
	if _, err := doBackup(client(t, down.URL, srv.Token, 30*time.Second), src, "cut"); err != nil {
		t.Fatalf("second backup through cuts: %v", err)
	}
}

func TestServerErrorsForAWhile(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusInternalServerError} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := ibtest.StartServer(t)
			src := faultTree(t)
			front := ibtest.StartFailingFront(t, srv.URL, 10, status)
			api := client(t, front.URL, srv.Token, 30*time.Second)
			res, err := doBackup(api, src, "errors")
			if err != nil {
				t.Fatalf("backup while the server answers %d: %v", status, err)
			}
			if front.Failed.Load() != 10 {
				t.Fatalf("%d requests failed, want 10", front.Failed.Load())
			}
			restoreAndCompare(t, api, res.ID, src)
		})
	}
}

// A DELETE whose answer is lost after the server did it (a gateway's 502,
// a server killed before it answered) is retried; the retry's 404 means
// the work was done, not that the backup never was. Without a loss, a
// 404 is still an error.
func TestDeleteAnswerLost(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := faultTree(t)
	direct := client(t, srv.URL, srv.Token, 10*time.Second)
	for _, status := range []int{http.StatusBadGateway, http.StatusGatewayTimeout} {
		res, err := doBackup(direct, src, "lost")
		if err != nil {
			t.Fatal(err)
		}
		front := ibtest.StartLosingFront(t, srv.URL, 1, status)
		if err := client(t, front.URL, srv.Token, 10*time.Second).Delete(context.Background(), res.ID); err != nil {
			t.Fatalf("delete whose answer was lost (%d): %v", status, err)
		}
		if front.Failed.Load() != 1 {
			t.Fatalf("%d answers lost, want 1", front.Failed.Load())
		}
		if _, err := direct.Backup(context.Background(), res.ID); !apiclient.IsNotFound(err) {
			t.Fatalf("backup %d after its delete: %v, want not found", res.ID, err)
		}
		if err := direct.Delete(context.Background(), res.ID); !apiclient.IsNotFound(err) {
			t.Fatalf("delete of a deleted backup with nothing lost: %v, want not found", err)
		}
	}
}

// A job start whose answer is lost is retried with its Idempotency-Key and
// finds the job it started: one job, not a second one that would end as
// lost ten minutes later. A key the server cannot take is refused.
func TestJobStartAnswerLost(t *testing.T) {
	srv := ibtest.StartServer(t)
	front := ibtest.StartLosingFront(t, srv.URL, 1, http.StatusBadGateway)
	id, err := client(t, front.URL, srv.Token, 10*time.Second).StartJob(context.Background(), "backup", manifest.Tags{"node": "lost"})
	if err != nil {
		t.Fatal(err)
	}
	if front.Failed.Load() != 1 {
		t.Fatalf("%d answers lost, want 1", front.Failed.Load())
	}
	if jobs := jobsOf(t, srv, "", srv.Token); len(jobs) != 1 || jobs[0].ID != id || jobs[0].Status != "running" {
		t.Fatalf("jobs after a start retried: %+v, want job %d alone and running", jobs, id)
	}
	start := func(key string) (int, int64) {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/jobs", strings.NewReader(`{"kind":"restore"}`))
		req.Header.Set("Authorization", "Bearer "+srv.Token)
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var j struct {
			ID int64 `json:"id"`
		}
		json.NewDecoder(resp.Body).Decode(&j)
		return resp.StatusCode, j.ID
	}
	for _, bad := range []string{"../x", "a b", strings.Repeat("k", 65)} {
		if code, _ := start(bad); code != http.StatusBadRequest {
			t.Errorf("Idempotency-Key %q: %d, want 400", bad, code)
		}
	}
	c1, a := start("same-key")
	c2, b := start("same-key")
	c3, other := start("")
	if c1 != 201 || c2 != 201 || c3 != 201 || a != b || a == other || a == id {
		t.Fatalf("starts: %d %d %d, ids %d %d %d: want 201s, one job for the key and another without", c1, c2, c3, a, b, other)
	}
}
