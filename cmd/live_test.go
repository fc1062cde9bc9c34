//go:build unix

package cmd_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"ib/internal/ibtest"
	"ib/internal/manifest"
)

// Issue 16: backups of a running node.

var kvnode struct {
	once sync.Once
	path string
	err  error
}

// kvnodeBinary builds testdata/kvnode, a Pebble store written without
// pause, with a checkpoint command (its own module: Pebble is a test
// dependency only).
func kvnodeBinary(t *testing.T) string {
	t.Helper()
	kvnode.once.Do(func() {
		dir, err := os.MkdirTemp("", "kvnode-")
		if err != nil {
			kvnode.err = err
			return
		}
		kvnode.path = filepath.Join(dir, "kvnode")
		b := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", kvnode.path, ".")
		b.Dir = filepath.Join("testdata", "kvnode")
		b.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		if out, err := b.CombinedOutput(); err != nil {
			kvnode.err = fmt.Errorf("build kvnode: %v\n%s", err, out)
		}
	})
	if kvnode.err != nil {
		t.Fatal(kvnode.err)
	}
	return kvnode.path
}

// kvWriter is a running kvnode writer.
type kvWriter struct {
	addr string // the file with its address
	cmd  *exec.Cmd
}

func (w *kvWriter) stop() {
	w.cmd.Process.Kill()
	w.cmd.Wait()
}

// startNode runs a kvnode writer on dir; it is killed when the test ends.
func startNode(t *testing.T, dir string) *kvWriter {
	t.Helper()
	bin := kvnodeBinary(t)
	addr := filepath.Join(t.TempDir(), "addr")
	c := exec.Command(bin, "run", dir, addr)
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	w := &kvWriter{addr: addr, cmd: c}
	t.Cleanup(w.stop)
	for i := 0; ; i++ {
		if _, err := os.Stat(addr); err == nil {
			break
		}
		if i == 200 {
			t.Fatal("kvnode did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // some data, and a flush or two
	return w
}

func nodeHeight(t *testing.T, addrFile string) uint64 {
	addr, _ := os.ReadFile(addrFile)
	_, body := get(t, "http://"+string(addr)+"/last")
	n, err := strconv.ParseUint(string(body), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type createResult struct {
	ID        int64             `json:"id"`
	Tags      map[string]string `json:"tags"`
	Labels    map[string]string `json:"labels"`
	Files     int64             `json:"files"`
	Bytes     int64             `json:"bytes"`
	Uploaded  int64             `json:"uploaded_bytes"`
	NewBlocks int64             `json:"new_blocks"`
	Hardlinks int64             `json:"hardlinks"`
	Changed   []string          `json:"changed_during_read"`
	Rereads   int64             `json:"rereads"`
}

func createJSON(t *testing.T, out string) createResult {
	t.Helper()
	var r createResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("backup create --json: %v\n%s", err, out)
	}
	return r
}

// TestCheckpointHookOfARunningNode: a pre hook takes a Pebble checkpoint
// of a store that never stops writing and points the backup at it; the
// restored store opens and holds exactly the keys up to the checkpoint's
// height, which the backup carries as a label; the post hook removes the
// checkpoint. (Issue 16, test a.)
func TestCheckpointHookOfARunningNode(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	home := t.TempDir()
	addr := startNode(t, filepath.Join(home, "db")).addr
	cp := filepath.Join(t.TempDir(), "checkpoint")
	bin := kvnodeBinary(t)
	out, errs, code := ib(t, conf, "backup", "create", "-q", "--json", "--node=kv",
		"--pre-hook", bin+" checkpoint "+addr+" "+cp, "--post-hook", "rm -rf "+cp, home)
	if code != 0 {
		t.Fatalf("backup with a checkpoint hook: exit %d\n%s", code, errs)
	}
	res := createJSON(t, out)
	height, err := strconv.ParseUint(res.Labels["height"], 10, 64)
	if err != nil || height == 0 {
		t.Fatalf("labels %v: want the checkpoint's height", res.Labels)
	}
	if len(res.Changed) != 0 {
		t.Fatalf("a checkpoint changed while read: %v", res.Changed)
	}
	if !strings.Contains(errs, "taking a checkpoint at height") {
		t.Errorf("the hook's other output is not passed on: %q", errs)
	}
	if _, err := os.Stat(cp); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the post hook did not remove the checkpoint: %v", err)
	}
	if now := nodeHeight(t, addr); now <= height {
		t.Fatalf("the writer stopped: height %d after the backup, %d at the checkpoint", now, height)
	}
	dest := filepath.Join(t.TempDir(), "restored")
	mustIB(t, conf, "backup", "restore", "-q", "latest", "--node=kv", dest)
	if msg, err := exec.Command(bin, "check", dest, res.Labels["height"]).CombinedOutput(); err != nil {
		t.Fatalf("restored checkpoint: %v\n%s", err, msg)
	}
	show := mustIB(t, conf, "backup", "show", "latest", "--node=kv")
	if !strings.Contains(show, "height="+res.Labels["height"]) {
		t.Errorf("backup show does not show the label:\n%s", show)
	}
	list := mustIB(t, conf, "backup", "list", "--json")
	if !strings.Contains(list, `"height": "`+res.Labels["height"]+`"`) {
		t.Errorf("backup list --json has no labels:\n%s", list)
	}
}

// TestRunningNodeWithoutHook: the same store backed up live, with no hook:
// ib says the database is open, reads the node's log again as it grows, and
// exits 3 with the log it appends to marked in the manifest; --on-change
// fail commits nothing and exits 1. (Issue 16, test b.)
func TestRunningNodeWithoutHook(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	db := filepath.Join(t.TempDir(), "db")
	startNode(t, db)

	out, errs, code := ib(t, conf, "backup", "create", "-q", "--json", "--node=live", "--change-retries", "2", db)
	if code != 3 {
		t.Fatalf("live backup without a hook: exit %d, want 3\n%s", code, errs)
	}
	if !strings.Contains(errs, "LevelDB/RocksDB/Pebble database in . is open by a running process") {
		t.Errorf("no warning of the open database: %q", errs)
	}
	if !strings.Contains(errs, "kept changing while read") {
		t.Errorf("no warning of the changed files: %q", errs)
	}
	res := createJSON(t, out)
	// node.log is appended every half millisecond: never still.
	wal := "node.log"
	if !slices.Contains(res.Changed, wal) || res.Rereads < 2 {
		t.Fatalf("changed %v, rereads %d: want node.log, read again twice", res.Changed, res.Rereads)
	}
	_, body := get(t, fmt.Sprintf("%s/api/v1/backups/%d/manifest", srv.URL, res.ID))
	var m struct{ Entries []manifest.Entry }
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	marked := 0
	for _, e := range m.Entries {
		if e.ChangedDuringRead {
			marked++
			if e.Path == wal {
				wal = ""
			}
		}
	}
	if wal != "" || marked != len(res.Changed) {
		t.Fatalf("manifest marks %d entries, the result names %v", marked, res.Changed)
	}

	_, errs, code = ib(t, conf, "backup", "create", "-q", "--node=live", "--change-retries", "0", "--on-change", "fail", db)
	if code != 1 || !strings.Contains(errs, "kept changing while read") || !strings.Contains(errs, "nothing was committed") {
		t.Fatalf("--on-change fail: exit %d %q", code, errs)
	}
	if list := mustIB(t, conf, "backup", "list", "--json"); strings.Count(list, `"id"`) != 1 {
		t.Fatalf("--on-change fail committed a backup:\n%s", list)
	}
}

// inodeGroups maps each file to the sorted names that share its inode.
func inodeGroups(t *testing.T, root string) map[string]string {
	t.Helper()
	byIno := map[uint64][]string{}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		ino := fi.Sys().(*syscall.Stat_t).Ino
		byIno[ino] = append(byIno[ino], rel)
		return nil
	})
	out := map[string]string{}
	for _, names := range byIno {
		for _, n := range names {
			out[n] = strings.Join(names, " ")
		}
	}
	return out
}

// TestCheckpointHardLinksStoredOnce: a node's home holding its store and
// a checkpoint of it (hard links to the same tables) is read and uploaded
// once per inode, and restores with the same links. (Issue 16, test c.)
func TestCheckpointHardLinksStoredOnce(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	home := t.TempDir()
	w := startNode(t, filepath.Join(home, "db"))
	out, err := exec.Command(kvnodeBinary(t), "checkpoint", w.addr, filepath.Join(home, "checkpoint")).Output()
	if err != nil {
		t.Fatal(err)
	}
	_, height, _ := strings.Cut(string(out), "ib-label height=")
	height, _, _ = strings.Cut(height, "\n")
	w.stop() // what is linked stays linked
	before := inodeGroups(t, home)
	links := 0
	var unique int64
	seen := map[string]bool{}
	for n, g := range before {
		if strings.Contains(g, " ") {
			links++
		}
		if !seen[g] {
			seen[g] = true
			fi, _ := os.Stat(filepath.Join(home, n))
			unique += fi.Size()
		}
	}
	if links < 2 {
		t.Fatalf("the checkpoint shares no table with the store: %v", before)
	}
	res := createJSON(t, mustIB(t, conf, "backup", "create", "-q", "--json", "--node=links", home))
	if res.Hardlinks == 0 || res.Uploaded > unique+unique/10+64<<10 {
		t.Fatalf("hardlinks %d, uploaded %d bytes for %d bytes of distinct inodes (%d bytes in all)", res.Hardlinks, res.Uploaded, unique, res.Bytes)
	}
	dest := filepath.Join(t.TempDir(), "r")
	mustIB(t, conf, "backup", "restore", "-q", "latest", "--node=links", dest)
	after := inodeGroups(t, dest)
	for n, g := range before {
		if after[n] != g {
			t.Errorf("%s: linked with %q after restore, %q before", n, after[n], g)
		}
	}
	if msg, err := exec.Command(kvnodeBinary(t), "check", filepath.Join(dest, "checkpoint"), height).CombinedOutput(); err != nil {
		t.Fatalf("restored checkpoint: %v\n%s", err, msg)
	}
	// The tar download carries hard link entries.
	_, tarBytes := get(t, fmt.Sprintf("%s/api/v1/backups/%d/archive.tar", srv.URL, res.ID))
	x := t.TempDir()
	tf := filepath.Join(x, "a.tar")
	os.WriteFile(tf, tarBytes, 0o644)
	run(t, x, "mkdir out && tar -xf a.tar -C out")
	if got := inodeGroups(t, filepath.Join(x, "out")); len(got) != len(before) {
		t.Fatalf("tar holds %d files, want %d", len(got), len(before))
	} else {
		for n, g := range before {
			if got[n] != g {
				t.Errorf("tar: %s linked with %q, %q before", n, got[n], g)
			}
		}
	}
}
