//go:build unix

package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/manifest"
)

var ibBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ib-bin-")
	if err != nil {
		panic(err)
	}
	ibBinary = filepath.Join(dir, "ib")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", ibBinary, "ib")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("build ib: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// textTree writes n files of size bytes of compressible text, which LZ4 at
// its highest level compresses slowly enough to interrupt.
func textTree(t *testing.T, n, size int) string {
	t.Helper()
	root := t.TempDir()
	words := strings.Fields("block chain node ledger state commit height hash peer epoch cycle baker endorse level protocol")
	rng := rand.New(rand.NewPCG(uint64(n), uint64(size)))
	for i := range n {
		var b bytes.Buffer
		for b.Len() < size {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(" \n"[rng.IntN(2)])
			if rng.IntN(50) == 0 {
				b.WriteString(time.Unix(int64(rng.Uint32()), 0).UTC().String())
			}
		}
		ibtest.WriteFile(t, filepath.Join(root, "logs", string(rune('a'+i%26))+strings.Repeat("x", i/26)), b.Bytes()[:size], 0o644, time.Unix(1700000000+int64(i), 0))
	}
	return root
}

func blocksOn(t *testing.T, srv *ibtest.Server) int64 {
	t.Helper()
	return srv.Store.Stats().Blocks
}

func TestClientKilledMidUploadLeavesNoBackup(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := textTree(t, 24, 1<<20) // 24 MiB in 96 blocks of 256 KiB
	const total = 96

	c := exec.Command(ibBinary, "backup", "create", "-q", "--node=k", "--block-size", "256KiB", "-j", "1",
		"--server", srv.URL, "--token", srv.Token, src)
	c.Env = append(os.Environ(), "IB_CONFIG_DIR="+t.TempDir(), "IB_CACHE_DIR="+t.TempDir())
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	deadline := time.After(60 * time.Second)
	for blocksOn(t, srv) < 4 {
		select {
		case err := <-exited:
			t.Fatalf("the client finished (%v) before it could be killed mid-upload: %s", err, stderr.String())
		case <-deadline:
			t.Fatal("no upload within 60 s")
		case <-time.After(2 * time.Millisecond):
		}
	}
	c.Process.Kill()
	<-exited

	st := srv.Store.Stats()
	if st.Backups != 0 {
		t.Fatalf("a killed backup left %d backups", st.Backups)
	}
	if st.Blocks == 0 || st.Blocks >= total {
		t.Fatalf("killed mid-upload with %d of %d blocks stored", st.Blocks, total)
	}

	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	had := blocksOn(t, srv)
	out := mustIB(t, conf, "backup", "create", "-q", "--json", "--node=k", "--block-size", "256KiB", src)
	var res struct {
		Blocks    int64 `json:"blocks"`
		NewBlocks int64 `json:"new_blocks"`
	}
	json.Unmarshal([]byte(out), &res)
	if res.Blocks != total || res.NewBlocks != total-had {
		t.Fatalf("rerun: blocks %d new %d; want %d and %d (the server had %d)", res.Blocks, res.NewBlocks, total, total-had, had)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	mustIB(t, conf, "backup", "restore", "latest", "--node=k", dst, "-q")
	ibtest.TreesEqual(t, src, dst, nil)
}

func TestServerRestartMidUpload(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := textTree(t, 24, 1<<20)
	api, err := apiclient.New(srv.URL, srv.Token)
	if err != nil {
		t.Fatal(err)
	}
	var retries int
	api.OnRetry = func(string, error, time.Duration) { retries++ }
	type outcome struct {
		res backup.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := backup.Run(context.Background(), api, src, backup.Options{
			Tags: manifest.Tags{"node": "r"}, BlockSize: 256 << 10, Jobs: 2, IsNotFound: apiclient.IsNotFound,
		})
		done <- outcome{res, err}
	}()
	for blocksOn(t, srv) < 4 {
		select {
		case o := <-done:
			t.Fatalf("backup finished (%v) before the server could be stopped", o.err)
		case <-time.After(2 * time.Millisecond):
		}
	}
	srv.Stop()
	time.Sleep(5 * time.Second)
	srv.Start(t)
	o := <-done
	if o.err != nil {
		t.Fatalf("backup across a server restart: %v", o.err)
	}
	if retries == 0 {
		t.Fatal("no request was retried: the server was not down during the upload")
	}
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL)
	dst := filepath.Join(t.TempDir(), "dst")
	mustIB(t, conf, "backup", "restore", "latest", "--node=r", dst, "-q")
	ibtest.TreesEqual(t, src, dst, nil)
}

func TestCorruptBlockFailsRestore(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "small"), []byte(strings.Repeat("fine\n", 40)), 0o644, time.Unix(1700000000, 0)) // a block of its own, not inline
	ibtest.WriteFile(t, filepath.Join(src, "chain", "big.sst"), ibtest.RandomBytes(1<<20), 0o644, time.Unix(1700000000, 0))
	mustIB(t, conf, "backup", "create", "-q", "--node=c", src)

	// Flip one byte in the middle of the one block in the block store.
	var blockFile string
	filepath.WalkDir(filepath.Join(srv.DataDir, "blocks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "tmp" {
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() {
			blockFile = p
		}
		return nil
	})
	if blockFile == "" {
		t.Fatal("no block in the block store")
	}
	data, _ := os.ReadFile(blockFile)
	data[len(data)/2] ^= 0xff
	os.WriteFile(blockFile, data, 0o600)

	dst := filepath.Join(t.TempDir(), "dst")
	_, errs, code := ib(t, conf, "backup", "restore", "1", dst, "-q")
	cid := filepath.Base(blockFile)
	if code != 1 || !strings.Contains(errs, "chain/big.sst") || !strings.Contains(errs, cid) {
		t.Fatalf("restore of a corrupt block: exit %d, %q; want 1 naming chain/big.sst and %s", code, errs, cid)
	}
	ents, _ := os.ReadDir(filepath.Join(dst, "chain"))
	if len(ents) != 0 {
		t.Fatalf("bad bytes written: %s/chain holds %d entries", dst, len(ents))
	}

	// verify: every block is present, so only --deep sees the rot
	if out := mustIB(t, conf, "backup", "verify", "1"); !strings.Contains(out, "all present") {
		t.Fatalf("verify: %q", out)
	}
	out, errs, code := ib(t, conf, "backup", "verify", "1", "--deep")
	if code != 1 || !strings.Contains(out, "CORRUPT "+cid+" (chain/big.sst)") || !strings.Contains(errs, "1 corrupt") {
		t.Fatalf("verify --deep: exit %d, %q, %q", code, out, errs)
	}

	// the scrubber finds it too, and marks it so that the next backup
	// that holds the bytes uploads them again: the backup heals
	rep, err := srv.Store.Scrub(context.Background(), 0, nil)
	if err != nil || rep.Corrupt != 1 || rep.Blocks != 2 {
		t.Fatalf("scrub: %+v %v", rep, err)
	}
	res := mustIB(t, conf, "backup", "create", "-q", "--json", "--full", "--node=c", src)
	if !strings.Contains(res, `"new_blocks": 1`) {
		t.Fatalf("the backup after the scrub did not re-upload the rotten block: %s", res)
	}
	mustIB(t, conf, "backup", "verify", "1", "--deep")
	mustIB(t, conf, "backup", "restore", "1", filepath.Join(t.TempDir(), "healed"), "-q")
}
