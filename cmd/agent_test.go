//go:build unix

package cmd_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"ib/internal/ibtest"
)

// agentEnv is a client config dir logged in to srv, and the environment
// of an agent process that uses it.
func agentEnv(t *testing.T, srv *ibtest.Server) (conf string, env []string) {
	conf = t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	env = append(os.Environ(), "IB_CONFIG_DIR="+conf, "IB_CACHE_DIR="+filepath.Join(conf, "cache"), "IB_NOTIFY_BACKOFF=100ms")
	return conf, env
}

// agent runs the real binary's `ib agent ARGS…` with config file cfg.
func agent(t *testing.T, env []string, cfg string, args ...string) (string, string, int) {
	t.Helper()
	c := exec.Command(ibBinary, append([]string{"agent", "--config", cfg, "--state-dir", filepath.Join(filepath.Dir(cfg), "state")}, args...)...)
	c.Env = env
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if err != nil {
		code = c.ProcessState.ExitCode()
	}
	return out.String(), errb.String(), code
}

func writeAgentConfig(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Issue 18: two sets on @every 2s under the daemon both get backed up, a
// set's runs never overlap (its hooks log each run's start and end), SIGHUP
// reads the config again, and SIGTERM stops the daemon, the backup it
// interrupts running its post hook.
func TestAgentDaemon(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf, env := agentEnv(t, srv)
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs.log")
	var sets strings.Builder
	for _, n := range []string{"alpha", "beta"} {
		src := filepath.Join(dir, "src-"+n)
		ibtest.WriteFile(t, filepath.Join(src, "data.bin"), ibtest.RandomBytes(50_000), 0o644, time.Now())
		fmt.Fprintf(&sets, `
[[set]]
name = %q
path = %q
tags = { node = %q }
schedule = "@every 2s"
pre_hook = "echo start %s $(date +%%s%%N) >> %s; sleep 1"
post_hook = "echo end %s $(date +%%s%%N) $IB_STATUS >> %s"
`, n, src, n, n, runs, n, runs)
	}
	cfg := filepath.Join(dir, "agent.toml")
	writeAgentConfig(t, cfg, sets.String())
	d := exec.Command(ibBinary, "agent", "--config", cfg, "--state-dir", filepath.Join(dir, "state"), "run")
	d.Env = env
	logs := &ibtest.SyncBuffer{}
	d.Stderr = logs
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Process.Kill()
	count := func(node string) int {
		out, _, _ := ib(t, conf, "backup", "list", "--node="+node, "--json")
		var bs []json.RawMessage
		json.Unmarshal([]byte(out), &bs)
		return len(bs)
	}
	waitFor(t, 40*time.Second, "two backups of each set", func() bool { return count("alpha") >= 2 && count("beta") >= 2 })

	// SIGHUP: a third set appears.
	src := filepath.Join(dir, "src-gamma")
	ibtest.WriteFile(t, filepath.Join(src, "g"), []byte("gamma"), 0o644, time.Now())
	writeAgentConfig(t, cfg, sets.String()+fmt.Sprintf("\n[[set]]\nname = \"gamma\"\npath = %q\ntags = { node = \"gamma\" }\nschedule = \"@every 1s\"\n", src))
	d.Process.Signal(syscall.SIGHUP)
	waitFor(t, 20*time.Second, "a backup of the set added by SIGHUP", func() bool { return count("gamma") >= 1 })

	// SIGTERM while a backup runs (its pre hook sleeps): it is interrupted,
	// its post hook runs, the daemon exits 0.
	waitFor(t, 10*time.Second, "a running backup", func() bool {
		starts, ends := hookLog(t, runs)
		return len(starts["alpha"]) > len(ends["alpha"])
	})
	d.Process.Signal(syscall.SIGTERM)
	if err := d.Wait(); err != nil {
		t.Fatalf("daemon after SIGTERM: %v\n%s", err, logs)
	}
	// Per set, in time order: never two starts in a row (overlap), never
	// a start left without its end (a run stopped without its post hook).
	// An end without a start is a run interrupted before its pre hook
	// wrote.
	starts, ends := hookLog(t, runs)
	for _, n := range []string{"alpha", "beta"} {
		type ev struct {
			at    int64
			start bool
		}
		var evs []ev
		for _, at := range starts[n] {
			evs = append(evs, ev{at, true})
		}
		for _, at := range ends[n] {
			evs = append(evs, ev{at, false})
		}
		sort.Slice(evs, func(i, j int) bool { return evs[i].at < evs[j].at })
		open := false
		for i, e := range evs {
			if e.start && open {
				t.Errorf("%s: event %d: a run started before the one before it ended", n, i)
			}
			open = e.start
		}
		if open || len(starts[n]) < 2 {
			t.Errorf("%s: %d runs started, %d post hooks, the last run unfinished: %v", n, len(starts[n]), len(ends[n]), open)
		}
	}
	if b, _ := os.ReadFile(runs); !strings.Contains(string(b), " interrupted") {
		t.Errorf("no post hook saw IB_STATUS=interrupted:\n%s", b)
	}
	if !strings.Contains(logs.String(), "config reloaded") {
		t.Errorf("daemon log:\n%s", logs)
	}

	// status: each set's last run.
	out, errs, code := agent(t, env, cfg, "status", "--json")
	var st []struct {
		Set  string `json:"set"`
		Last *struct {
			Status   string `json:"status"`
			BackupID int64  `json:"backup_id"`
		} `json:"last"`
		Next time.Time `json:"next_run"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st) != 3 {
		t.Fatalf("status --json: exit %d %s %s", code, out, errs)
	}
	for _, s := range st {
		if s.Last == nil || s.Next.IsZero() || (s.Last.Status == "ok" && s.Last.BackupID == 0) {
			t.Errorf("status of %s: %+v", s.Set, s)
		}
	}
}

// hookLog reads the start and end times of each set's runs.
func hookLog(t *testing.T, path string) (starts, ends map[string][]int64) {
	starts, ends = map[string][]int64{}, map[string][]int64{}
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 3 {
			continue
		}
		ns, _ := strconv.ParseInt(fs[2], 10, 64)
		if fs[0] == "start" {
			starts[fs[1]] = append(starts[fs[1]], ns)
		} else {
			ends[fs[1]] = append(ends[fs[1]], ns)
		}
	}
	for _, m := range []map[string][]int64{starts, ends} {
		for _, v := range m {
			sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		}
	}
	return
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Issue 18: `run --once` is quiet on success; a second one while the first
// runs exits 4 at once, naming the lock.
func TestAgentOnceLocked(t *testing.T) {
	srv := ibtest.StartServer(t)
	_, env := agentEnv(t, srv)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Now())
	cfg := filepath.Join(dir, "agent.toml")
	writeAgentConfig(t, cfg, fmt.Sprintf("[[set]]\nname = \"n\"\npath = %q\ntags = { node = \"n\" }\nschedule = \"@daily\"\npre_hook = \"sleep 2\"\n", src))
	var wg sync.WaitGroup
	var out1, errs1 string
	var code1 int
	wg.Add(1)
	go func() { defer wg.Done(); out1, errs1, code1 = agent(t, env, cfg, "run", "--once") }()
	time.Sleep(700 * time.Millisecond)
	start := time.Now()
	_, errs2, code2 := agent(t, env, cfg, "run", "--once", "n")
	took := time.Since(start)
	wg.Wait()
	if code1 != 0 || out1 != "" || errs1 != "" {
		t.Errorf("first --once: exit %d, stdout %q, stderr %q (want 0 and silence)", code1, out1, errs1)
	}
	if code2 != 4 || !strings.Contains(errs2, "locked by another process") || !strings.Contains(errs2, "n.lock") {
		t.Errorf("second --once: exit %d, stderr %q (want 4, naming the lock)", code2, errs2)
	}
	if took > 1500*time.Millisecond {
		t.Errorf("the second --once waited %v for the first", took)
	}
	if _, errs, code := agent(t, env, cfg, "run", "--once", "nope"); code != 2 || !strings.Contains(errs, `no set "nope"`) {
		t.Errorf("unknown set: exit %d %q", code, errs)
	}
}

// Issue 18: a failing pre hook makes the webhook get a failure naming the
// set, and an email go out; fixed, the next run sends "recovered".
func TestAgentNotifications(t *testing.T) {
	srv := ibtest.StartServer(t)
	_, env := agentEnv(t, srv)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Now())

	var mu sync.Mutex
	var hooks []map[string]any
	fails := 1 // the first delivery gets a 503: retried
	hook := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		hooks = append(hooks, m)
	})}
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	go hook.Serve(hl)
	defer hook.Close()
	mails := startSMTP(t)

	cfg := filepath.Join(dir, "agent.toml")
	write := func(pre string) {
		writeAgentConfig(t, cfg, fmt.Sprintf(`
[[set]]
name = "validator"
path = %q
tags = { node = "v", network = "testnet" }
schedule = "@hourly"
pre_hook = %q

[[notify]]
webhook = "http://%s/hook"

[[notify]]
email = "ops@example.com"
smtp_host = "127.0.0.1"
smtp_port = %d
starttls = false
on = ["failure"]
`, src, pre, hl.Addr(), mails.port))
	}
	write("echo the snapshot tool is missing >&2; exit 7")
	_, errs, code := agent(t, env, cfg, "run", "--once")
	if code != 1 || !strings.Contains(errs, "set validator failed") || !strings.Contains(errs, "pre hook") {
		t.Fatalf("failing set: exit %d, stderr %q", code, errs)
	}
	write("true")
	if _, errs, code := agent(t, env, cfg, "run", "--once"); code != 0 {
		t.Fatalf("fixed set: exit %d %s", code, errs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hooks) != 2 {
		t.Fatalf("webhook got %d messages, want 2: %v", len(hooks), hooks)
	}
	if hooks[0]["event"] != "failure" || hooks[0]["set"] != "validator" || !strings.Contains(fmt.Sprint(hooks[0]["error"]), "pre hook") ||
		fmt.Sprint(hooks[0]["tags"]) != "map[network:testnet node:v]" {
		t.Errorf("failure message: %v", hooks[0])
	}
	if hooks[1]["event"] != "recovered" || hooks[1]["status"] != "ok" || hooks[1]["backup_id"] != float64(1) {
		t.Errorf("recovered message: %v", hooks[1])
	}
	msgs := mails.messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "To: ops@example.com") || !strings.Contains(msgs[0], "validator") || !strings.Contains(msgs[0], "FAILED") {
		t.Errorf("mails (want the one failure): %q", msgs)
	}
}

// Issue 18: every error of agent.toml, each with its line.
func TestAgentConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.toml")
	writeAgentConfig(t, cfg, `[[set]]
name = "a"
path = "relative"
tags = { node = "x" }
schedule = "@daily"

[[set]]
name = "a"
path = "/x"
tags = { node = "y" }
schedule = "61 * * * *"

[[notify]]
webhook = "http://h/x"
format = "teams"
`)
	_, errs, code := agent(t, os.Environ(), cfg, "check")
	for _, want := range []string{cfg + ":3: set \"a\": path", cfg + ":8: set \"a\" is named twice", cfg + ":11: set \"a\": schedule", cfg + ":15: notify #1: format"} {
		if !strings.Contains(errs, want) {
			t.Errorf("missing %q in:\n%s", want, errs)
		}
	}
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	writeAgentConfig(t, cfg, "[[set]]\nname = \"a\"\nschedul = \"@daily\"\n")
	if _, errs, _ := agent(t, os.Environ(), cfg, "check"); !strings.Contains(errs, cfg+`:3: unknown key "set.schedul"`) {
		t.Errorf("unknown key: %s", errs)
	}
	if out, errs, code := agent(t, os.Environ(), filepath.Join(dir, "new.toml"), "init"); code != 0 || !strings.Contains(out, "wrote") {
		t.Fatalf("init: %d %s", code, errs)
	}
	if _, errs, code := agent(t, os.Environ(), filepath.Join(dir, "new.toml"), "check"); code != 0 {
		t.Errorf("the example does not check: %s", errs)
	}
}

// smtpSink is an SMTP server in the test that keeps what it receives.
type smtpSink struct {
	port int
	mu   sync.Mutex
	msgs []string
}

func (s *smtpSink) messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

func (s *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{sink: s}, nil }

type smtpSession struct{ sink *smtpSink }

func (s *smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.sink.mu.Lock()
	s.sink.msgs = append(s.sink.msgs, string(b))
	s.sink.mu.Unlock()
	return err
}
func (s *smtpSession) Reset()        {}
func (s *smtpSession) Logout() error { return nil }

func startSMTP(t *testing.T) *smtpSink {
	sink := &smtpSink{}
	srv := smtp.NewServer(sink)
	srv.Domain = "localhost"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink.port = ln.Addr().(*net.TCPAddr).Port
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sink
}
