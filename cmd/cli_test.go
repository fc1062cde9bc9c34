//go:build unix

package cmd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ib/internal/ibtest"
)

func TestTokenShowCreatesPrivateConfig(t *testing.T) {
	conf := t.TempDir()
	tok1 := strings.TrimSpace(mustIB(t, conf, "server", "token", "show"))
	tok2 := strings.TrimSpace(mustIB(t, conf, "server", "token", "show"))
	if len(tok1) < 32 || tok1 != tok2 || strings.ContainsAny(tok1, " \n") {
		t.Fatalf("token show printed %q then %q", tok1, tok2)
	}
	fi, err := os.Stat(filepath.Join(conf, "server.toml"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("server.toml: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	// --config names the file explicitly
	other := filepath.Join(t.TempDir(), "elsewhere.toml")
	tok3 := strings.TrimSpace(mustIB(t, conf, "server", "token", "show", "--config", other))
	if tok3 == tok1 {
		t.Fatal("--config file got the same token as the default file")
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatal(err)
	}
}

func TestLoginWithoutTokenReadsOnly(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))

	writer := t.TempDir()
	mustIB(t, writer, "login", srv.URL, "--token", srv.Token)
	fi, err := os.Stat(filepath.Join(writer, "config.toml"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.toml: %v mode %v, want 0600", err, fi.Mode().Perm())
	}
	mustIB(t, writer, "backup", "create", "-q", "--node=a", src)

	reader := t.TempDir()
	mustIB(t, reader, "login", srv.URL)
	if out := mustIB(t, reader, "backup", "list", "--node=a"); !strings.Contains(out, "node=a") {
		t.Fatalf("list as reader: %q", out)
	}
	mustIB(t, reader, "backup", "restore", "latest", "--node=a", filepath.Join(t.TempDir(), "r"), "-q")
	out, errs, code := ib(t, reader, "backup", "create", "-q", "--node=a", src)
	if code == 0 || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.Contains(errs, "ib login") || !strings.Contains(errs, "--token") {
		t.Fatalf("create without token: exit %d, stdout %q, stderr %q; want one line telling to log in with a token", code, out, errs)
	}

	// a wrong token is refused at login, and nothing is saved
	bad := t.TempDir()
	if _, errs, code := ib(t, bad, "login", srv.URL, "--token", "wrong"); code != 1 || !strings.Contains(errs, "401") {
		t.Fatalf("login with a wrong token: exit %d %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(bad, "config.toml")); !os.IsNotExist(err) {
		t.Fatalf("failed login wrote a config (%v)", err)
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	dir := t.TempDir()
	for _, args := range [][]string{
		{"backup", "create", "--Node=tezos", dir},
		{"backup", "create", "--node=", dir},
		{"backup", "create", "--tag", "novalue", dir},
		{"backup", "create", "--node=a", "--node=b", dir},
		{"backup", "create", "--block-size", "1GiB", dir},
		{"backup", "create", "--block-size", "12XB", dir},
		{"backup", "create", "--level", "11", dir},
		{"backup", "create"},
		{"backup", "list", "--bad_Key=1"},
		{"backup", "show", "abc"},
		{"backup", "restore", "latest", dir},
		{"backup", "frobnicate"},
		{"backup", "list", "--no-such-flag"},
		{"login", "ftp://x"},
	} {
		out, errs, code := ib(t, conf, args...)
		lines := strings.Split(strings.TrimSpace(errs), "\n")
		if code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "ib: ") || out != "" {
			t.Errorf("ib %s: exit %d, stdout %q, stderr %q; want exit 2 and one line", strings.Join(args, " "), code, out, errs)
		}
	}
	// a tag that collides with an own flag goes through --tag
	ibtest.WriteFile(t, filepath.Join(dir, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	mustIB(t, conf, "backup", "create", "-q", "--tag", "level=high", "--json", dir)
	if out := mustIB(t, conf, "backup", "list", "--tag", "level=high", "--json"); !strings.Contains(out, `"level": "high"`) {
		t.Fatalf("--tag level=high not stored: %s", out)
	}
}

func TestShowListDelete(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	dir := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(dir, "f"), []byte("hello"), 0o644, time.Unix(1700000000, 0))
	mustIB(t, conf, "backup", "create", "-q", "--node=a", dir)
	mustIB(t, conf, "backup", "create", "-q", "--node=b", dir)
	out := mustIB(t, conf, "backup", "list", "--json")
	if !strings.HasPrefix(strings.TrimSpace(out), "[") || strings.Index(out, `"b"`) > strings.Index(out, `"a"`) {
		t.Fatalf("list --json is not newest first: %s", out)
	}
	for _, k := range []string{`"id"`, `"tags"`, `"created_at"`, `"files"`, `"bytes"`} {
		if !strings.Contains(out, k) {
			t.Errorf("list --json lacks %s", k)
		}
	}
	if strings.Contains(out, `"dirs"`) {
		t.Errorf("list --json has more than its five fields: %s", out)
	}
	if out := mustIB(t, conf, "backup", "show", "1", "--json"); !strings.Contains(out, `"bytes": 5`) {
		t.Fatalf("show --json: %s", out)
	}
	mustIB(t, conf, "backup", "delete", "1", "--yes")
	if _, errs, code := ib(t, conf, "backup", "show", "1"); code != 1 || !strings.Contains(errs, "no such backup") {
		t.Fatalf("show after delete: %d %q", code, errs)
	}
	if _, errs, code := ib(t, conf, "backup", "delete", "1", "--yes"); code != 1 || !strings.Contains(errs, "no such backup") {
		t.Fatalf("second delete: %d %q", code, errs)
	}
	if out := mustIB(t, conf, "version"); !strings.HasPrefix(out, "ib ") {
		t.Fatalf("version: %q", out)
	}
}
