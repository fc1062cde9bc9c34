//go:build unix

package cmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"ib/cmd"
	"ib/internal/ibtest"
)

// ib runs the command line in-process with its own config dir and returns
// stdout, stderr and the exit status.
func ib(t *testing.T, confDir string, args ...string) (string, string, int) {
	t.Helper()
	t.Setenv("IB_CONFIG_DIR", confDir)
	t.Setenv("IB_CACHE_DIR", filepath.Join(confDir, "cache"))
	var out, errb bytes.Buffer
	code := cmd.Execute(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func mustIB(t *testing.T, confDir string, args ...string) string {
	t.Helper()
	out, errs, code := ib(t, confDir, args...)
	if code != 0 {
		t.Fatalf("ib %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// buildTree makes the tree the core issue names: nested dirs, an empty file
// and an empty dir, modes 0600/0755/2775, nanosecond mtimes on files and
// dirs, relative, dir and dangling symlinks, a FIFO, and a file of several
// blocks.
func buildTree(t *testing.T, root string) {
	t.Helper()
	mt := func(i int) time.Time { return time.Unix(1700000000+int64(i)*3600, int64(i)*111111111+7).UTC() }
	ibtest.WriteFile(t, filepath.Join(root, "a", "b", "c", "deep.txt"), []byte("deep\n"), 0o644, mt(1))
	ibtest.WriteFile(t, filepath.Join(root, "a", "secret.key"), []byte("k3y"), 0o600, mt(2))
	ibtest.WriteFile(t, filepath.Join(root, "a", "run.sh"), []byte("#!/bin/sh\necho hi\n"), 0o755, mt(3))
	ibtest.WriteFile(t, filepath.Join(root, "empty"), nil, 0o644, mt(4))
	ibtest.WriteFile(t, filepath.Join(root, "chain", "big.sst"), ibtest.RandomBytes(3*65536+1234), 0o644, mt(5))
	ibtest.WriteFile(t, filepath.Join(root, "a.txt"), []byte(strings.Repeat("log line\n", 5000)), 0o644, mt(6))
	if err := os.MkdirAll(filepath.Join(root, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "shared"), 0o2775); err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{{"a/b.txt", "link-rel"}, {"a/b", "link-dir"}, {"does/not/exist", "link-dangling"}} {
		if err := os.Symlink(l[0], filepath.Join(root, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "a", "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	// symlink and directory mtimes last, deepest first
	for i, l := range []string{"link-rel", "link-dir", "link-dangling"} {
		ts := []syscall.Timespec{syscall.NsecToTimespec(mt(10 + i).UnixNano()), syscall.NsecToTimespec(mt(10 + i).UnixNano())}
		if err := lutimes(filepath.Join(root, l), ts); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range []string{"a/b/c", "a/b", "a", "chain", "emptydir", "shared", "."} {
		if err := os.Chtimes(filepath.Join(root, d), mt(20+i), mt(20+i)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBackupRestoreExact(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	src := filepath.Join(t.TempDir(), "src")
	buildTree(t, src)
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)

	out := mustIB(t, conf, "backup", "create", "--node=tezos", "--version=24.0", "--block-size", "64KiB", "--json", "-q", src)
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("create --json: %v\n%s", err, out)
	}
	// The contract's keys, then issue 16's (labels, changed_during_read and
	// live_databases appear only when there are any).
	wantKeys := []string{"id", "tags", "created_at", "files", "dirs", "symlinks", "bytes", "blocks", "new_blocks", "uploaded_bytes", "reused_files", "duration_ms",
		"read_bytes", "hardlinks", "changed_count", "rereads", "vanished", "renamed"}
	if len(res) != len(wantKeys) {
		t.Errorf("create --json has %d keys, want %d: %s", len(res), len(wantKeys), out)
	}
	for _, k := range wantKeys {
		if _, ok := res[k]; !ok {
			t.Errorf("create --json lacks %q", k)
		}
	}
	// 6 files, 6 dirs (".", a, a/b, a/b/c, chain, emptydir, shared = 7), 3 symlinks
	if res["files"] != 6.0 || res["dirs"] != 7.0 || res["symlinks"] != 3.0 {
		t.Errorf("counts: files %v dirs %v symlinks %v, want 6 7 3", res["files"], res["dirs"], res["symlinks"])
	}
	// big.sst has 4 blocks of 64 KiB (3 full + 1234 bytes); the others one each but the empty file
	if res["blocks"] != 4.0+4 {
		t.Errorf("blocks = %v, want 8", res["blocks"])
	}

	dst := filepath.Join(t.TempDir(), "dst")
	mustIB(t, conf, "backup", "restore", "latest", "--node=tezos", "--version=24.0", dst, "-q")
	ibtest.TreesEqual(t, src, dst, ibtest.SkipSpecial)

	// The same through the download alias and an explicit ID.
	dst2 := filepath.Join(t.TempDir(), "dst2")
	mustIB(t, conf, "backup", "download", "1", dst2, "-q")
	ibtest.TreesEqual(t, src, dst2, ibtest.SkipSpecial)
}

func TestRestoreRefusesNonEmptyDest(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("new"), 0o644, time.Unix(1700000000, 0))
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	mustIB(t, conf, "backup", "create", "-q", "--n=1", src)

	dst := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(dst, "f"), []byte("old"), 0o644, time.Unix(1600000000, 0))
	_, errs, code := ib(t, conf, "backup", "restore", "1", dst, "-q")
	if code != 1 || !strings.Contains(errs, "not empty") {
		t.Fatalf("restore into non-empty dest: exit %d, %q", code, errs)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "old" {
		t.Fatalf("refused restore changed the file: %q", b)
	}
	mustIB(t, conf, "backup", "restore", "1", dst, "--force", "-q")
	if b, _ := os.ReadFile(filepath.Join(dst, "f")); string(b) != "new" {
		t.Fatalf("--force restore: %q", b)
	}
}

func TestRestoreSubPath(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	src := filepath.Join(t.TempDir(), "src")
	buildTree(t, src)
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	mustIB(t, conf, "backup", "create", "-q", "--n=1", src)
	dst := filepath.Join(t.TempDir(), "dst")
	mustIB(t, conf, "backup", "restore", "1", dst, "--path", "a/b", "-q")
	ibtest.TreesEqual(t, filepath.Join(src, "a", "b"), filepath.Join(dst, "a", "b"), nil)
	if _, err := os.Stat(filepath.Join(dst, "a", "run.sh")); !os.IsNotExist(err) {
		t.Errorf("--path a/b restored a/run.sh too (%v)", err)
	}
	_, errs, code := ib(t, conf, "backup", "restore", "1", filepath.Join(t.TempDir(), "x"), "--path", "nope")
	if code != 1 || !strings.Contains(errs, "not in the backup") {
		t.Errorf("--path nope: exit %d %q", code, errs)
	}
}

// TestManifestCacheDir: backup create keeps the manifest under
// $IB_CACHE_DIR/manifests/<server>/, and --no-cache neither reads nor writes
// it; the second backup reuses every file either way.
func TestManifestCacheDir(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	src := filepath.Join(t.TempDir(), "src")
	buildTree(t, src)
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	cached := func() []string {
		m, _ := filepath.Glob(filepath.Join(conf, "cache", "manifests", "*", "*.json"))
		return m
	}
	mustIB(t, conf, "backup", "create", "--node=n", "--no-cache", "-q", src)
	if c := cached(); len(c) != 0 {
		t.Fatalf("--no-cache wrote %v", c)
	}
	for range 2 {
		out := mustIB(t, conf, "backup", "create", "--node=n", "--json", "-q", src)
		var res struct {
			ReusedFiles int `json:"reused_files"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.ReusedFiles != 5 {
			t.Fatalf("backup reused %d files (%v), want 5 (all but the empty one)\n%s", res.ReusedFiles, err, out)
		}
		if c := cached(); len(c) != 1 {
			t.Fatalf("cache files %v, want one", c)
		}
	}
}
