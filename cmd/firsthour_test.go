//go:build unix

package cmd_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ib/internal/config"
	"ib/internal/ibtest"
	"ib/internal/lock"
	"ib/internal/manifest"
)

// Issue 15, first row: a mistyped flag is not taken for a tag.
func TestMistypedFlagIsNotATag(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	for _, c := range []struct{ arg, want string }{
		{"--levl=fast", "unknown flag --levl (did you mean --level?); a tag named levl needs --tag levl=fast"},
		{"--blocksize=1MiB", "did you mean --block-size?"},
		{"--serv=http://x", "did you mean --server?"},
		{"--jsn=true", "did you mean --json?"},
	} {
		_, errs, code := ib(t, conf, "backup", "create", "--node=cosmoshub", c.arg, src)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("create %s: exit %d %q, want 2 and %q", c.arg, code, errs, c.want)
		}
	}
	if st := srv.Store.Stats(); st.Backups != 0 {
		t.Fatalf("a mistyped flag made %d backups", st.Backups)
	}
	// tags that only look a little like flags are tags
	out := mustIB(t, conf, "backup", "create", "-q", "--json", "--node=x", "--version=1.0", "--network=main", "--tier=a",
		"--host=h", "--chain=c", "--env=e", "--role=r", "--region=eu", "--client=geth", src)
	var res struct{ Tags map[string]string }
	json.Unmarshal([]byte(out), &res)
	if len(res.Tags) != 10 {
		t.Errorf("tags %v, want all 10", res.Tags)
	}
}

// Issue 15: restore latest with part of a tag set names the sets and the
// command; show and verify take latest too.
func TestLatestWithPartOfTheTags(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	mustIB(t, conf, "backup", "create", "-q", "--node=cosmoshub", "--network=mainnet", src)
	mustIB(t, conf, "backup", "create", "-q", "--node=cosmoshub", "--network=mainnet", src)
	_, errs, code := ib(t, conf, "backup", "restore", "latest", "--node=cosmoshub", filepath.Join(t.TempDir(), "d"))
	want := "`ib backup restore latest --network=mainnet --node=cosmoshub DEST`"
	if code != 1 || !strings.Contains(errs, "network=mainnet node=cosmoshub (2 backups, newest #2)") || !strings.Contains(errs, want) {
		t.Errorf("restore latest with part of the tags: exit %d %q", code, errs)
	}
	if out := mustIB(t, conf, "backup", "show", "latest", "--node=cosmoshub", "--network=mainnet"); !strings.Contains(out, "backup    2") {
		t.Errorf("show latest: %q", out)
	}
	if out := mustIB(t, conf, "backup", "verify", "latest", "--node=cosmoshub", "--network=mainnet"); !strings.Contains(out, "backup 2:") {
		t.Errorf("verify latest: %q", out)
	}
	if _, errs, code := ib(t, conf, "backup", "show", "latest", "--node=nothing"); code != 1 || !strings.Contains(errs, "no backup has the tags node=nothing") {
		t.Errorf("show latest of no backup: exit %d %q", code, errs)
	}
}

// Issue 15: a question to a server that is down fails within seconds, in
// one line; a wrong token fails before anything is read.
func TestFastFailures(t *testing.T) {
	conf := t.TempDir()
	down := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	start := time.Now()
	_, errs, code := ib(t, conf, "backup", "list", "--server", down)
	took := time.Since(start)
	if code != 1 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "does not answer") ||
		!strings.Contains(errs, "is it running?") || strings.Contains(errs, "retrying") {
		t.Errorf("list with the server down: exit %d %q", code, errs)
	}
	if took > 40*time.Second { // the 90 s patience of backups was 85 s of retries here
		t.Errorf("list with the server down took %s", took)
	}
	srv := ibtest.StartServer(t)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	_, errs, code = ib(t, conf, "backup", "create", "--server", srv.URL, "--token", "WRONG", "--node=a", src)
	if code != 1 || !strings.Contains(errs, "refuses the token") || strings.Contains(errs, "retrying") || strings.Contains(errs, "files") {
		t.Errorf("create with a wrong token: exit %d %q", code, errs)
	}
}

// Issue 15: an empty backup, or one under half of the previous one, is
// refused unless --allow-shrink; nothing is committed.
func TestShrunkBackupRefused(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	for i := range 10 {
		ibtest.WriteFile(t, filepath.Join(src, "f"+strconv.Itoa(i)), []byte("some bytes"), 0o644, time.Unix(1700000000, 0))
	}
	mustIB(t, conf, "backup", "create", "-q", "--node=s", src)
	for i := range 8 {
		os.Remove(filepath.Join(src, "f"+strconv.Itoa(i)))
	}
	_, errs, code := ib(t, conf, "backup", "create", "-q", "--node=s", src)
	if code != 1 || !strings.Contains(errs, "backup refused: 2 files") || !strings.Contains(errs, "--allow-shrink") {
		t.Errorf("a backup of 2 files after 10: exit %d %q", code, errs)
	}
	empty := t.TempDir()
	if _, errs, code := ib(t, conf, "backup", "create", "-q", "--node=empty", empty); code != 1 || !strings.Contains(errs, "holds no files") {
		t.Errorf("an empty backup: exit %d %q", code, errs)
	}
	if st := srv.Store.Stats(); st.Backups != 1 {
		t.Fatalf("refused backups committed: %d backups", st.Backups)
	}
	mustIB(t, conf, "backup", "create", "-q", "--node=s", "--allow-shrink", src)
	if st := srv.Store.Stats(); st.Backups != 2 {
		t.Fatalf("--allow-shrink: %d backups", st.Backups)
	}
}

// Issue 15: a second backup of one tag set while one runs exits 4 at once.
func TestSecondBackupOfATagSetExits4(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	t.Setenv("IB_CACHE_DIR", filepath.Join(conf, "cache")) // as ib() sets it
	path, err := config.LockPath(srv.URL, manifest.Tags{"node": "l"}.Canonical())
	if err != nil {
		t.Fatal(err)
	}
	held, err := lock.Try(path) // as a running backup holds it
	if err != nil {
		t.Fatal(err)
	}
	_, errs, code := ib(t, conf, "backup", "create", "-q", "--node=l", src)
	if code != 4 || !strings.Contains(errs, "another backup of node=l") {
		t.Errorf("second backup of a tag set: exit %d %q, want 4", code, errs)
	}
	mustIB(t, conf, "backup", "create", "-q", "--node=other", src) // another tag set runs
	held.Release()
	mustIB(t, conf, "backup", "create", "-q", "--node=l", src)
}

// Issue 15: delete and prune ask first; off a terminal they need --yes,
// and a prune without a tag filter needs --all.
func TestDeleteAndPruneNeedConfirmation(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	for range 3 {
		mustIB(t, conf, "backup", "create", "-q", "--node=c", src)
	}
	if _, errs, code := ib(t, conf, "backup", "delete", "2"); code != 2 || !strings.Contains(errs, "Delete backup 2 (node=c; 1 file;") || !strings.Contains(errs, "--yes") {
		t.Errorf("delete off a terminal without --yes: exit %d %q", code, errs)
	}
	if _, errs, code := ib(t, conf, "backup", "prune", "--keep-last", "0"); code != 2 || !strings.Contains(errs, "--all") {
		t.Errorf("prune without tags: exit %d %q", code, errs)
	}
	if _, errs, code := ib(t, conf, "backup", "prune", "--keep-last", "1", "--node=c"); code != 2 || !strings.Contains(errs, "Delete these 2 backups") {
		t.Errorf("prune off a terminal without --yes: exit %d %q", code, errs)
	}
	if st := srv.Store.Stats(); st.Backups != 3 {
		t.Fatalf("unconfirmed deletions deleted: %d backups left", st.Backups)
	}
	mustIB(t, conf, "backup", "delete", "2", "--yes")
	mustIB(t, conf, "backup", "prune", "--keep-last", "0", "--all", "--yes")
	if st := srv.Store.Stats(); st.Backups != 0 {
		t.Fatalf("confirmed deletions: %d backups left", st.Backups)
	}
}

// Issue 15: --version, suggestions for mistyped commands, completion of
// backup IDs, help without doubled defaults, a start log that says what
// retention will delete.
func TestCommandLineNiceties(t *testing.T) {
	conf := t.TempDir()
	if out := mustIB(t, conf, "--version"); !strings.HasPrefix(out, "ib ") {
		t.Errorf("--version: %q", out)
	}
	if _, errs, code := ib(t, conf, "backup", "lsit"); code != 2 || !strings.Contains(errs, `did you mean "list"`) {
		t.Errorf("backup lsit: exit %d %q", code, errs)
	}
	if out := mustIB(t, conf, "server", "serve", "--help"); strings.Count(out[strings.Index(out, "--keep-latest"):strings.Index(out, "--listen")], "default") != 1 {
		t.Errorf("serve --help repeats a default:\n%s", out)
	}
	srv := ibtest.StartServer(t)
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	mustIB(t, conf, "backup", "create", "-q", "--node=comp", src)
	out := mustIB(t, conf, "__complete", "backup", "restore", "")
	if !strings.Contains(out, "latest\t") || !strings.Contains(out, "1\tnode=comp") {
		t.Errorf("completion of restore's first argument:\n%s", out)
	}
	if out := mustIB(t, conf, "__complete", "backup", "list", "--tag", ""); !strings.Contains(out, "node=comp\n") {
		t.Errorf("completion of --tag:\n%s", out)
	}
	p := startProc(t, "http")
	// The pruner says it as it starts, beside "ib server started".
	want := "retention 90d: backups older than that are deleted, but the newest 1 of each tag set; pruning every 1d"
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.log.String(), want) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(p.log.String(), want) {
		t.Errorf("start log does not state the retention:\n%s", p.log)
	}
}

// Issue 15: a backup that starts a new tag set says so and names the sets
// one tag away; a value with spaces is listed quoted.
func TestNewTagSetWarning(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	_, errs, _ := ib(t, conf, "backup", "create", "-q", "--node=cosmoshub", "--network=mainnet", src)
	if !strings.Contains(errs, "no backup has the tags network=mainnet node=cosmoshub yet") {
		t.Errorf("first backup of a tag set: %q", errs)
	}
	_, errs, _ = ib(t, conf, "backup", "create", "-q", "--node=cosmoshub", "--network=mainnet", src)
	if strings.Contains(errs, "warning") {
		t.Errorf("second backup of a tag set warns: %q", errs)
	}
	_, errs, _ = ib(t, conf, "backup", "create", "-q", "--nod=cosmoshub", "--network=mainnet", src)
	if !strings.Contains(errs, "no backup has the tags network=mainnet nod=cosmoshub yet") || !strings.Contains(errs, "differ in one tag: network=mainnet node=cosmoshub") {
		t.Errorf("a mistyped tag: %q", errs)
	}
	mustIB(t, conf, "backup", "create", "-q", "--node=cosmos hub", src)
	if out := mustIB(t, conf, "backup", "list", "--node=cosmos hub"); !strings.Contains(out, `node="cosmos hub"`) {
		t.Errorf("list of a value with a space: %q", out)
	}
}

// Issue 15: one count of what is backed up or restored: files only, the
// subtree's totals with --path, no progress line after a failure, plurals.
func TestCountsAgree(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	for _, p := range []string{"a/1", "a/2", "b/c/3", "b/c/4", "top"} {
		ibtest.WriteFile(t, filepath.Join(src, p), []byte("content "+p), 0o644, time.Unix(1700000000, 0))
	}
	out, errs, code := ib(t, conf, "backup", "create", "--node=n", src)
	if code != 0 || !strings.Contains(errs, "backed up 5/5 files") || !strings.Contains(out, "created: 5 files, 4 dirs, 0 symlinks") {
		t.Errorf("create: exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
	out, errs, code = ib(t, conf, "backup", "restore", "1", filepath.Join(t.TempDir(), "r"), "--path", "b/c/3")
	if code != 0 || !strings.Contains(errs, "restored 1/1 file,") || !strings.Contains(out, ": 1 file, ") {
		t.Errorf("restore --path: exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
	busy := t.TempDir()
	os.WriteFile(filepath.Join(busy, "x"), []byte("x"), 0o644)
	_, errs, code = ib(t, conf, "backup", "restore", "1", busy)
	if code != 1 || strings.Contains(errs, "restored ") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Errorf("a failed restore: exit %d, stderr %q (want the error alone)", code, errs)
	}
}

// Issue 15: the server refuses a second commit of one tag set from one host
// while the first is still streaming, unless --parallel.
func TestServerRefusesParallelCommits(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	// another machine account's backup of node=p, streaming its manifest
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/backups", pr)
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	req.Header.Set("X-Ib-Tags", manifest.Tags{"node": "p"}.Canonical())
	req.Header.Set("X-Ib-Idempotency-Key", "first")
	first := make(chan int, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			first <- 0
			return
		}
		resp.Body.Close()
		first <- resp.StatusCode
	}()
	pw.Write([]byte(`{"tags":{"node":"p"},"idempotency_key":"first","entries":[`))
	time.Sleep(300 * time.Millisecond) // the server is reading it
	big := t.TempDir()
	for i := range 40 {
		ibtest.WriteFile(t, filepath.Join(big, strconv.Itoa(i)), ibtest.RandomBytes(300<<10), 0o644, time.Unix(1700000000, 0))
	}
	_, errs, code := ib(t, conf, "backup", "create", "-q", "--node=p", big)
	if code != 1 || !strings.Contains(errs, "423") || !strings.Contains(errs, "--parallel") {
		t.Errorf("a second backup of node=p while one streams: exit %d %q", code, errs)
	}
	if n := srv.Store.Stats().Blocks; n >= 40 {
		t.Errorf("the refused backup uploaded all its %d blocks before it stopped", n)
	}
	mustIB(t, conf, "backup", "create", "-q", "--node=other", src) // another tag set commits
	mustIB(t, conf, "backup", "create", "-q", "--node=p", "--parallel", src)
	pw.CloseWithError(errors.New("gone"))
	<-first
	mustIB(t, conf, "backup", "create", "-q", "--node=p", src) // the first one is over
	if st := srv.Store.Stats(); st.Backups != 3 {
		t.Errorf("%d backups, want 3", st.Backups)
	}
}

// Issue 15: on a terminal (a pseudo-terminal made by script(1)), delete
// shows the backup and asks; "n" keeps it, "y" deletes it.
func TestDeleteAsksOnATerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Fatal("script(1) is needed (Debian's bsdutils)")
	}
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	mustIB(t, conf, "backup", "create", "-q", "--node=tty", src)
	onTTY := func(answer string) string {
		c := exec.Command("script", "-qec", ibBinary+" backup delete 1", "/dev/null")
		c.Env = append(os.Environ(), "IB_CONFIG_DIR="+conf, "IB_CACHE_DIR="+filepath.Join(conf, "cache"))
		c.Stdin = strings.NewReader(answer + "\n")
		out, _ := c.CombinedOutput()
		return string(out)
	}
	if out := onTTY("n"); !strings.Contains(out, "Delete backup 1 (node=tty; 1 file;") || !strings.Contains(out, "cancelled") {
		t.Errorf("answering n: %q", out)
	}
	if st := srv.Store.Stats(); st.Backups != 1 {
		t.Fatalf("n deleted the backup")
	}
	if out := onTTY("y"); !strings.Contains(out, "deleted backup 1") {
		t.Errorf("answering y: %q", out)
	}
	if st := srv.Store.Stats(); st.Backups != 0 {
		t.Fatalf("y kept the backup")
	}
}
