//go:build unix

package cmd_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ib/internal/ibtest"
)

// hookEnv is a post hook that records what it was told.
func hookEnv(file string) string {
	return `printf 'status=%s id=%s tags=%s path=%s\n' "$IB_STATUS" "$IB_BACKUP_ID" "$IB_TAGS" "$IB_PATH" >> ` + file
}

// TestHooks: the pre hook's directives (label, tag, path) and other output,
// the post hook's environment after success and failure, a failing pre
// hook (exit 1, no backup, the post hook still runs), a hook past its
// timeout killed with its children. (Issue 16.)
func TestHooks(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src, snap := t.TempDir(), t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "live"), []byte("live data"), 0o644, time.Unix(1700000000, 0))
	ibtest.WriteFile(t, filepath.Join(snap, "snapshot"), []byte("snapshot data"), 0o644, time.Unix(1700000000, 0))
	rec := filepath.Join(t.TempDir(), "post")

	pre := `echo "stopping the node for $IB_TAGS"; echo "ib-label height=1234"; echo "ib-label app_hash=ABCD"; ` +
		`echo "ib-tag chain=test-1"; echo "ib-path ` + snap + `"`
	out, errs, code := ib(t, conf, "backup", "create", "-q", "--json", "--node=h", "--label", "note=manual",
		"--pre-hook", pre, "--post-hook", hookEnv(rec), src)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	res := createJSON(t, out)
	if res.Tags["chain"] != "test-1" || res.Labels["height"] != "1234" || res.Labels["app_hash"] != "ABCD" || res.Labels["note"] != "manual" {
		t.Fatalf("tags %v, labels %v", res.Tags, res.Labels)
	}
	if !strings.Contains(errs, "stopping the node for node=h") || strings.Contains(errs, "ib-label") {
		t.Errorf("the hook's output: %q", errs)
	}
	dest := filepath.Join(t.TempDir(), "r")
	mustIB(t, conf, "backup", "restore", "-q", "latest", "--node=h", "--chain=test-1", dest)
	if _, err := os.Stat(filepath.Join(dest, "snapshot")); err != nil {
		t.Fatalf("ib-path: the snapshot folder was not the one backed up: %v", err)
	}
	// The post hook hears the tags and the path the backup used.
	if got, _ := os.ReadFile(rec); string(got) != "status=ok id="+itoa(res.ID)+" tags=chain=test-1,node=h path="+snap+"\n" {
		t.Fatalf("post hook after success heard %q", got)
	}

	// A second backup with the same label-free tags reuses the first: labels
	// are not part of the tag set.
	out = mustIB(t, conf, "backup", "create", "-q", "--json", "--node=h", "--chain=test-1", "--label", "height=1235", snap)
	if again := createJSON(t, out); again.Labels["height"] != "1235" || again.Files != 1 {
		t.Fatalf("second backup: %+v", again)
	}
	if list := mustIB(t, conf, "backup", "list", "--node=h"); !strings.Contains(list, "[height=1235]") {
		t.Errorf("backup list shows no labels:\n%s", list)
	}

	// A failing pre hook: no backup, exit 1, the post hook told "failed".
	os.Remove(rec)
	_, errs, code = ib(t, conf, "backup", "create", "-q", "--node=h2", "--pre-hook", "echo cannot stop >&2; exit 7",
		"--post-hook", hookEnv(rec), src)
	if code != 1 || !strings.Contains(errs, "pre hook") || !strings.Contains(errs, "exit status 7") || !strings.Contains(errs, "cannot stop") {
		t.Fatalf("failing pre hook: exit %d %q", code, errs)
	}
	if got, _ := os.ReadFile(rec); !strings.HasPrefix(string(got), "status=failed id= ") {
		t.Fatalf("post hook after a failed pre hook heard %q", got)
	}
	if list := mustIB(t, conf, "backup", "list", "--node=h2"); strings.Count(list, "\n") != 1 {
		t.Fatalf("a backup was made after a failing pre hook:\n%s", list)
	}

	// A backup that fails (a path that is not there, from ib-path) tells
	// the post hook "failed".
	os.Remove(rec)
	_, _, code = ib(t, conf, "backup", "create", "-q", "--node=h3", "--pre-hook", "echo ib-path /nonexistent/ib",
		"--post-hook", hookEnv(rec), src)
	if got, _ := os.ReadFile(rec); code != 1 || !strings.HasPrefix(string(got), "status=failed") {
		t.Fatalf("failed backup: exit %d, post hook heard %q", code, got)
	}

	// A bad directive is an error of the hook.
	_, errs, code = ib(t, conf, "backup", "create", "-q", "--node=h4", "--pre-hook", "echo 'ib-label Height=1'", src)
	if code != 1 || !strings.Contains(errs, "ib-label") {
		t.Fatalf("bad directive: exit %d %q", code, errs)
	}

	// A hook past its timeout is killed, with what it started.
	marker := filepath.Join(t.TempDir(), "late")
	_, errs, code = ib(t, conf, "backup", "create", "-q", "--node=h5", "--hook-timeout", "1s",
		"--pre-hook", "(sleep 3; touch "+marker+") & sleep 3", src)
	if code != 1 || !strings.Contains(errs, "did not finish within 1s") {
		t.Fatalf("timeout: exit %d %q", code, errs)
	}
	time.Sleep(3 * time.Second)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the hook's child outlived the timeout")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestPostHookAfterInterrupt: SIGINT during the upload stops the backup
// (nothing committed) and the post hook still runs, told "interrupted".
// (Issue 16, test d.)
func TestPostHookAfterInterrupt(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := textTree(t, 24, 1<<20)
	dir := t.TempDir()
	rec, started := filepath.Join(dir, "post"), filepath.Join(dir, "pre")
	c := exec.Command(ibBinary, "backup", "create", "-q", "--node=int", "--block-size", "256KiB", "-j", "1",
		"--server", srv.URL, "--token", srv.Token,
		"--pre-hook", "touch "+started, "--post-hook", hookEnv(rec), src)
	c.Env = append(os.Environ(), "IB_CONFIG_DIR="+t.TempDir(), "IB_CACHE_DIR="+t.TempDir())
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := os.Stat(started); err == nil {
			break
		}
		if i == 400 {
			c.Process.Kill()
			t.Fatal("the pre hook did not run")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // into the upload
	c.Process.Signal(syscall.SIGINT)
	err := c.Wait()
	if exitCode(err) == 0 {
		t.Fatalf("interrupted backup exited 0: %s", stderr.String())
	}
	got, _ := os.ReadFile(rec)
	if !strings.HasPrefix(string(got), "status=interrupted id= tags=node=int") {
		t.Fatalf("post hook after SIGINT heard %q (stderr %s)", got, stderr.String())
	}
	if n := srv.Store.Stats().Backups; n != 0 {
		t.Fatalf("%d backups after the interrupt", n)
	}
}
