//go:build unix

package cmd_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/manifest"
)

// crashSeed is printed on every run; IB_CRASH_SEED replays one.
func crashSeed(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("IB_CRASH_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("crash points from seed %d (replay with IB_CRASH_SEED=%d)", seed, seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// freshText writes n files of size bytes of new compressible text under
// dir/fresh, so that a round has blocks to upload.
func freshText(t *testing.T, dir string, rng *rand.Rand, n, size int) {
	t.Helper()
	words := []string{"block", "chain", "node", "ledger", "state", "commit", "height", "hash", "peer", "epoch"}
	for i := range n {
		b := make([]byte, 0, size+16)
		for len(b) < size {
			b = append(b, words[rng.IntN(len(words))]...)
			b = append(b, " \n"[rng.IntN(2)])
		}
		ibtest.WriteFile(t, filepath.Join(dir, "fresh", strconv.Itoa(i)), b[:size], 0o644, time.Unix(1700000000+int64(rng.IntN(1e6)), 0))
	}
}

// The client is killed at random points of a backup, three times; each
// time no backup may appear, and the rerun must complete and restore.
func TestClientKilledAtRandomPoints(t *testing.T) {
	rng := crashSeed(t)
	srv := ibtest.StartServer(t)
	src := textTree(t, 12, 1<<20)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	for round := range 3 {
		freshText(t, src, rng, 6, 1<<20)
		delay := time.Duration(rng.IntN(1500)) * time.Millisecond
		before := srv.Store.Stats().Backups
		c := exec.Command(ibBinary, "backup", "create", "-q", "--full", "--node=kill", "--block-size", "256KiB", "-j", "2",
			"--server", srv.URL, "--token", srv.Token, src)
		c.Env = append(os.Environ(), "IB_CONFIG_DIR="+t.TempDir(), "IB_CACHE_DIR="+t.TempDir())
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		c.Process.Kill()
		err := c.Wait()
		after := srv.Store.Stats().Backups
		if err != nil && after != before {
			t.Fatalf("round %d: killed after %s, yet %d backups appeared", round, delay, after-before)
		}
		t.Logf("round %d: killed after %s (%v); %d blocks on the server", round, delay, err, srv.Store.Stats().Blocks)
		mustIB(t, conf, "backup", "create", "-q", "--node=kill", "--block-size", "256KiB", src)
		dst := filepath.Join(t.TempDir(), "dst")
		mustIB(t, conf, "backup", "restore", "latest", "--node=kill", dst, "-q")
		ibtest.TreesEqual(t, src, dst, nil)
	}
}

// The server is killed (-9) at random points of uploads and commits and
// started again; the client rides it out, SQLite reopens cleanly, every
// committed backup restores, and no half backup is listed.
func TestServerKilledAtRandomPoints(t *testing.T) {
	rng := crashSeed(t)
	p := startProc(t, "http")
	// many small files make the commit long enough to be hit too
	src := textTree(t, 6, 1<<20)
	for i := range 3000 {
		ibtest.WriteFile(t, filepath.Join(src, "small", strconv.Itoa(i%30), strconv.Itoa(i)), []byte(strconv.Itoa(i*i)), 0o644, time.Unix(1700000000, 0))
	}
	api, err := apiclient.New(p.URL, p.Token)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for round := range 3 {
		freshText(t, src, rng, 6, 1<<20)
		done := make(chan error, 1)
		var res backup.Result
		go func() {
			var err error
			res, err = backup.Run(context.Background(), api, src, backup.Options{
				Tags: manifest.Tags{"node": "crash"}, BlockSize: 256 << 10, Jobs: 4, Full: true, IsNotFound: apiclient.IsNotFound})
			done <- err
		}()
		delay := time.Duration(rng.IntN(2500)) * time.Millisecond
		time.Sleep(delay)
		p.cmd.Process.Kill()
		<-p.exited
		t.Logf("round %d: server killed after %s", round, delay)
		p.start(t)
		if err := <-done; err != nil {
			t.Fatalf("round %d: backup across a server crash: %v", round, err)
		}
		ids = append(ids, res.ID)
	}
	// every committed backup is listed once, and the last restores
	// byte-exact (the others hold the fresh files of their round)
	conf := t.TempDir()
	mustIB(t, conf, "login", p.URL)
	var list []struct{ ID int64 }
	json.Unmarshal([]byte(mustIB(t, conf, "backup", "list", "--json")), &list)
	if len(list) != len(ids) {
		t.Fatalf("%d backups listed after %d completed runs: %+v", len(list), len(ids), list)
	}
	for i, b := range list {
		dst := filepath.Join(t.TempDir(), "dst")
		mustIB(t, conf, "backup", "restore", strconv.FormatInt(b.ID, 10), dst, "-q")
		if i == 0 {
			ibtest.TreesEqual(t, src, dst, nil)
		}
	}
	// the database is whole
	p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
	db, err := sql.Open("sqlite", filepath.Join(p.conf, "data", "ib.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check after crashes: %q %v", check, err)
	}
}
