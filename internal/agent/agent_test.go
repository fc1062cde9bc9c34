package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ib/internal/notify"
)

func mustSet(t *testing.T, schedule, jitter string) *Set {
	t.Helper()
	cfg, err := Parse("agent.toml", []byte(fmt.Sprintf("[[set]]\nname = \"s\"\npath = \"/x\"\ntags = { node = \"n\" }\nschedule = %q\njitter = %q\n", schedule, jitter)))
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.Sets[0]
}

// Jitter: a host's offset is fixed (a restart does not move it), inside
// the jitter, and 500 hosts spread over it.
func TestJitterSpreadsHosts(t *testing.T) {
	set := mustSet(t, "@daily", "1h")
	day := time.Date(2026, 12, 1, 12, 0, 0, 0, time.Local)
	midnight := time.Date(2026, 12, 2, 0, 0, 0, 0, time.Local)
	minutes := map[int]bool{}
	for i := range 500 {
		host := fmt.Sprintf("node-%03d", i)
		next := set.Next(day, host)
		if next.Before(midnight) || !next.Before(midnight.Add(time.Hour)) || !next.Equal(set.Next(day, host)) {
			t.Fatalf("%s: next run %v (want a fixed time in the hour after midnight)", host, next)
		}
		minutes[next.Minute()] = true
	}
	if len(minutes) < 50 {
		t.Errorf("500 hosts fall on %d distinct minutes of the hour", len(minutes))
	}
}

// A run missed while the machine was asleep runs once, at once; otherwise
// the next time after the last run.
func TestNextRun(t *testing.T) {
	set := mustSet(t, "0 3 * * *", "0s")
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.Local)
	cases := []struct {
		last *time.Time
		want time.Time
	}{
		{nil, time.Date(2026, 12, 6, 3, 0, 0, 0, time.Local)},
		{ptr(time.Date(2026, 12, 5, 3, 0, 0, 0, time.Local)), time.Date(2026, 12, 6, 3, 0, 0, 0, time.Local)},
		{ptr(time.Date(2026, 12, 2, 3, 0, 0, 0, time.Local)), now}, // asleep for three days: one run now
	}
	for _, c := range cases {
		st := State{Set: "s"}
		if c.last != nil {
			st.Last = &Run{Start: *c.last}
		}
		if got := NextRun(set, st, now, "h"); !got.Equal(c.want) {
			t.Errorf("last %v: next %v, want %v", c.last, got, c.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// sd_notify: READY=1 on $NOTIFY_SOCKET, as systemd's Type=notify waits for.
func TestSDNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	notifyReady()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 64)
	n, err := c.Read(b)
	if err != nil || string(b[:n]) != "READY=1" {
		t.Fatalf("read %q, %v", b[:n], err)
	}
}

func TestEventOf(t *testing.T) {
	for _, c := range []struct {
		status       string
		failedBefore bool
		want         string
	}{
		{StatusFailed, true, EventFailure}, {StatusOK, true, EventRecovered}, {StatusWarning, true, EventRecovered},
		{StatusWarning, false, EventWarning}, {StatusOK, false, EventSuccess},
	} {
		if got := eventOf(Run{Status: c.status}, c.failedBefore); got != c.want {
			t.Errorf("%s after failure=%v: %s, want %s", c.status, c.failedBefore, got, c.want)
		}
	}
}

// Each webhook format, as the services take it.
func TestWebhookFormats(t *testing.T) {
	type got struct {
		ctype, title, prio string
		body               string
	}
	ch := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- got{r.Header.Get("Content-Type"), r.Header.Get("Title"), r.Header.Get("Priority"), string(b)}
	}))
	defer srv.Close()
	set := &Set{Name: "geth", Tags: map[string]string{"node": "geth"}}
	run := Run{Start: time.Now(), End: time.Now().Add(3 * time.Second), Status: StatusFailed, Error: "pre hook: exit 1"}
	n := &Notifier{Sender: notify.Sender{Log: slog.New(slog.DiscardHandler)}}
	for format, want := range map[string]string{
		"json":    `"event":"failure","set":"geth","host":"h1","tags":{"node":"geth"},"status":"failed"`,
		"slack":   `{"text":"ib backup of geth (node=geth) on h1 FAILED: pre hook: exit 1"}`,
		"discord": `{"content":"ib backup of geth (node=geth) on h1 FAILED: pre hook: exit 1"}`,
		"ntfy":    `ib backup of geth (node=geth) on h1 FAILED: pre hook: exit 1`,
	} {
		n.Targets = []Notify{{Target: notify.Target{Webhook: srv.URL, Format: format}}}
		n.Send(context.Background(), EventFailure, set, run, "h1")
		n.Wait()
		g := <-ch
		if !strings.Contains(g.body, want) {
			t.Errorf("%s: body %s", format, g.body)
		}
		if format == "ntfy" && (g.title != "ib: geth failure" || g.prio != "high" || !strings.HasPrefix(g.ctype, "text/plain")) {
			t.Errorf("ntfy headers: %+v", g)
		}
	}
}

// A set's encryption keys become backup create's flags, and are checked
// when the config is read: files without a recipient, a recipient without
// files, and a recipient that is no age key are errors on their lines.
func TestSetEncryption(t *testing.T) {
	const r = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
	c, err := Parse("agent.toml", []byte(`[[set]]
name = "val"
path = "/srv/node"
tags = { node = "val" }
schedule = "@daily"
encrypt_to = ["`+r+`"]
encrypt = ["keystore/", "priv_validator_key.json"]
limit_upload = "20MiB"
`))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.Sets[0].args(), " ")
	if !strings.Contains(got, "--encrypt-to "+r+" --encrypt keystore/ --encrypt priv_validator_key.json -- /srv/node") || !strings.Contains(got, "--limit-upload 20MiB") {
		t.Fatalf("args: %s", got)
	}
	for body, want := range map[string]string{
		"encrypt_all = true\n":                              "agent.toml:6: set \"val\": encrypt/encrypt_all need encrypt_to",
		"encrypt_to = [\"" + r + "\"]\n":                    "agent.toml:6: set \"val\": encrypt_to: say which files",
		"encrypt_all = true\nencrypt_to = [\"age1nope\"]\n": "agent.toml:7: set \"val\": encrypt_to:",
		"limit_upload = \"fast\"\n":                         "agent.toml:6: set \"val\": limit_upload: invalid rate",
	} {
		_, err := Parse("agent.toml", []byte("[[set]]\nname = \"val\"\npath = \"/srv/node\"\ntags = { node = \"val\" }\nschedule = \"@daily\"\n"+body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", body, err, want)
		}
	}
}
