//go:build unix

package cmd_test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ib/internal/auth"
	"ib/internal/ibtest"
)

// recorder is a stand-in ib server that records the Authorization header
// of every request; private makes it refuse reads without its token.
type recorder struct {
	URL     string
	token   string
	private bool
	mu      sync.Mutex
	seen    []string // "METHOD PATH AUTH"
}

func startRecorder(t *testing.T, token string, private bool) *recorder {
	t.Helper()
	r := &recorder{token: token, private: private}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, q *http.Request) {
		auth := q.Header.Get("Authorization")
		r.mu.Lock()
		r.seen = append(r.seen, q.Method+" "+q.URL.Path+" "+auth)
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch {
		case q.URL.Path == "/healthz":
			w.Write([]byte(`{"status":"ok"}`))
		case q.URL.Path == "/api/v1/whoami": // as a server of before scoped tokens
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"no such route"}`))
		case auth != "Bearer "+r.token && (q.Method != "GET" || r.private):
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"missing or wrong token"}`))
		case q.URL.Path == "/api/v1/blocks/missing":
			w.Write([]byte(`{"missing":[]}`))
		default:
			w.Write([]byte(`[]`))
		}
	})}
	ln := listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	r.URL = "http://" + ln.Addr().String()
	return r
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// Finding 3: a token goes to its own server only, and on writes only (or
// on reads of a private server, after it asked).
func TestTokensStayWithTheirServer(t *testing.T) {
	srv := ibtest.StartServer(t)
	other := startRecorder(t, "other-token", false)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)

	// a pasted command naming another server carries none of our token
	mustIB(t, conf, "backup", "list", "--server", other.URL)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	if _, errs, code := ib(t, conf, "backup", "create", "-q", "--node=a", "--server", other.URL, src); code == 0 || !strings.Contains(errs, "token") {
		t.Errorf("create against a server without a kept token: exit %d %q", code, errs)
	}
	for _, r := range other.requests() {
		if strings.Contains(r, srv.Token) {
			t.Errorf("the other server got our token: %s", r)
		}
	}

	// reads carry no token; writes do
	mine := startRecorder(t, "my-token", false)
	mustIB(t, conf, "login", mine.URL, "--token", "my-token")
	mustIB(t, conf, "backup", "list")
	for _, r := range mine.requests() {
		write := strings.HasPrefix(r, "POST ") || strings.HasPrefix(r, "GET /api/v1/whoami ")
		if write != strings.HasSuffix(r, "Bearer my-token") {
			t.Errorf("request %q: the token must go with writes only", r)
		}
	}

	// a private server asks for the token on reads: it gets it then
	private := startRecorder(t, "private-token", true)
	mustIB(t, conf, "login", private.URL, "--token", "private-token")
	mustIB(t, conf, "backup", "list")
	got := private.requests()
	if last := got[len(got)-1]; last != "GET /api/v1/backups Bearer private-token" {
		t.Errorf("private server: last request %q, want the list with the token; all: %q", last, got)
	}

	// both servers keep their tokens: back to the first one
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	mustIB(t, conf, "backup", "create", "-q", "--node=a", src)
	mustIB(t, conf, "backup", "list", "--server", mine.URL)
	if cfg, _ := os.ReadFile(filepath.Join(conf, "config.toml")); !strings.Contains(string(cfg), "my-token") || !strings.Contains(string(cfg), srv.Token) {
		t.Errorf("config.toml lost a server's token:\n%s", cfg)
	}
}

// The config of before per-server tokens (server + token) is migrated: the
// token stays with its server and goes nowhere else.
func TestOldClientConfigMigrates(t *testing.T) {
	srv := ibtest.StartServer(t)
	other := startRecorder(t, "x", false)
	conf := t.TempDir()
	old := "server = '" + srv.URL + "'\ntoken = '" + srv.Token + "'\n"
	if err := os.WriteFile(filepath.Join(conf, "config.toml"), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	mustIB(t, conf, "backup", "create", "-q", "--node=m", src)
	cfg, _ := os.ReadFile(filepath.Join(conf, "config.toml"))
	if !strings.Contains(string(cfg), "[servers.") || strings.Count(string(cfg), srv.Token) != 1 {
		t.Errorf("config.toml after migration:\n%s", cfg)
	}
	ib(t, conf, "backup", "create", "-q", "--node=m", "--server", other.URL, src)
	for _, r := range other.requests() {
		if strings.Contains(r, srv.Token) {
			t.Errorf("the migrated token went to another server: %s", r)
		}
	}
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// Finding 11 (b, c): named tokens with scopes, kept hashed, created and
// revoked while the server runs; a private server wants a token for reads.
func TestScopedTokensAndPrivateServer(t *testing.T) {
	p := startProc(t, "http", "--private")
	serverToml := filepath.Join(p.conf, "server.toml")
	create := func(name, scope string) string {
		out, err := exec.Command(ibBinary, "server", "token", "create", "--name", name, "--scope", scope, "--config", serverToml).Output()
		if err != nil {
			t.Fatalf("token create %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	node, reader := create("node1", "append"), create("ui", "read")
	if cfg, _ := os.ReadFile(serverToml); strings.Contains(string(cfg), node) || strings.Contains(string(cfg), reader) || !strings.Contains(string(cfg), auth.Hash(node)) {
		t.Fatalf("server.toml must keep the tokens' hashes only:\n%s", cfg)
	}
	out, _ := exec.Command(ibBinary, "server", "token", "list", "--config", serverToml).Output()
	if !strings.Contains(string(out), "node1") || !strings.Contains(string(out), "append") || strings.Contains(string(out), node) {
		t.Errorf("token list:\n%s", out)
	}
	time.Sleep(1100 * time.Millisecond) // the server reads its tokens again at most once a second

	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("secret"), 0o644, time.Unix(1700000000, 0))
	nodeConf := t.TempDir()
	mustIB(t, nodeConf, "login", p.URL, "--token", node)
	mustIB(t, nodeConf, "backup", "create", "-q", "--node=n", src)
	mustIB(t, nodeConf, "backup", "list") // reads of a private server: the token after a 401
	if _, errs, code := ib(t, nodeConf, "backup", "delete", "1", "--yes"); code != 1 || !strings.Contains(errs, "403") {
		t.Errorf("delete with an append token: exit %d %q, want 403", code, errs)
	}
	if _, errs, code := ib(t, nodeConf, "backup", "prune", "--keep-last", "0", "--node=n", "--yes"); code != 1 || !strings.Contains(errs, "403") {
		t.Errorf("prune with an append token: exit %d %q, want 403", code, errs)
	}
	readConf := t.TempDir()
	mustIB(t, readConf, "login", p.URL, "--token", reader)
	mustIB(t, readConf, "backup", "restore", "latest", "--node=n", filepath.Join(t.TempDir(), "r"), "-q")
	if _, errs, code := ib(t, readConf, "backup", "create", "-q", "--node=n", src); code != 1 || !strings.Contains(errs, "scope read") {
		t.Errorf("create with a read token: exit %d %q, want a refusal naming the scope", code, errs)
	}
	if st, _, _ := getRaw(t, p.URL+"/api/v1/backups/1", "Authorization", "Bearer "+reader); st != 200 {
		t.Errorf("read token: %d", st)
	}
	if st := do(t, "POST", p.URL+"/api/v1/blocks/missing", reader, `{"cids":[]}`); st != 403 {
		t.Errorf("POST /blocks/missing with a read token: %d, want 403", st)
	}
	if st := do(t, "DELETE", p.URL+"/api/v1/backups/1", node, ""); st != 403 {
		t.Errorf("DELETE with an append token: %d, want 403", st)
	}

	// anonymous: the UI loads, reads are refused
	for path, want := range map[string]int{"/": 200, "/app.js": 200, "/healthz": 200, "/api/v1/backups": 401,
		"/api/v1/backups/1/files/f": 401, "/api/v1/search?q=f": 401, "/api/v1/stats": 401, "/api/v1/backups/latest/archive.tar?node=n": 401} {
		if st, _, body := getRaw(t, p.URL+path); st != want {
			t.Errorf("anonymous GET %s: %d %.100s, want %d", path, st, body, want)
		}
	}
	if st, _, body := getRaw(t, p.URL+"/api/v1/backups/1/files/f", "Authorization", "Bearer "+reader); st != 200 || body != "secret" {
		t.Errorf("GET a file with a read token: %d %q", st, body)
	}

	// revoked: refused within a second or so, by the running server
	exec.Command(ibBinary, "server", "token", "revoke", "node1", "--config", serverToml).Run()
	time.Sleep(1100 * time.Millisecond)
	if _, errs, code := ib(t, nodeConf, "backup", "create", "-q", "--node=n", src); code != 1 || !strings.Contains(errs, "401") {
		t.Errorf("create with a revoked token: exit %d %q, want 401", code, errs)
	}
	// the admin token (token show) still does everything
	adminConf := t.TempDir()
	mustIB(t, adminConf, "login", p.URL, "--token", p.Token)
	mustIB(t, adminConf, "backup", "delete", "1", "--yes")
}

// Finding 11a: a backup that stores files looking like private keys in the
// clear says so, naming them and the ways out.
func TestBackupWarnsOfPrivateKeys(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	mt := time.Unix(1700000000, 0)
	ibtest.WriteFile(t, filepath.Join(src, "config", "priv_validator_key.json"), []byte(`{"priv_key":{}}`), 0o600, mt)
	ibtest.WriteFile(t, filepath.Join(src, "keystore", "UTC--2024"), []byte(`{}`), 0o600, mt)
	ibtest.WriteFile(t, filepath.Join(src, "data", "blockstore.db"), []byte("x"), 0o644, mt)
	_, errs, code := ib(t, conf, "backup", "create", "-q", "--node=k", src)
	if code != 0 || !strings.Contains(errs, "WARNING: 2 file(s)") || !strings.Contains(errs, "config/priv_validator_key.json") ||
		!strings.Contains(errs, "keystore/UTC--2024") || !strings.Contains(errs, ".ibignore") || strings.Contains(errs, "blockstore.db") {
		t.Errorf("backup with keys: exit %d, stderr:\n%s", code, errs)
	}
	ibtest.WriteFile(t, filepath.Join(src, ".ibignore"), []byte("priv_validator_key.json\nkeystore/\n"), 0o644, mt)
	if _, errs, code := ib(t, conf, "backup", "create", "-q", "--node=k", src); code != 0 || strings.Contains(errs, "WARNING") {
		t.Errorf("backup with the keys ignored: exit %d, stderr:\n%s", code, errs)
	}
}

func do(t *testing.T, method, url, token, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
