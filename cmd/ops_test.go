//go:build unix

package cmd_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/manifest"
)

// proc is an `ib server serve` process.
type proc struct {
	URL, Token string
	port       int
	args       []string
	conf       string
	cmd        *exec.Cmd
	log        *ibtest.SyncBuffer
	exited     chan error
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startProc runs the real binary as a server with its own config and data
// dirs; scheme is "http" or "https".
func startProc(t *testing.T, scheme string, args ...string) *proc {
	t.Helper()
	return startProcIn(t, scheme, t.TempDir(), args...)
}

// startProcIn is startProc with a config dir of the caller's (a
// server.toml in it gives the server its token).
func startProcIn(t *testing.T, scheme, conf string, args ...string) *proc {
	t.Helper()
	p := &proc{port: freePort(t), conf: conf, args: args}
	p.URL = scheme + "://127.0.0.1:" + strconv.Itoa(p.port)
	out, err := exec.Command(ibBinary, "server", "token", "show", "--config", filepath.Join(p.conf, "server.toml")).Output()
	if err != nil {
		t.Fatal(err)
	}
	p.Token = strings.TrimSpace(string(out))
	p.args = append([]string{"server", "serve", "--config", filepath.Join(p.conf, "server.toml"),
		"--listen", "127.0.0.1:" + strconv.Itoa(p.port), "--data-dir", filepath.Join(p.conf, "data"), "--log-format", "json"}, args...)
	p.start(t)
	t.Cleanup(func() {
		if p.cmd != nil {
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

func (p *proc) start(t *testing.T) {
	t.Helper()
	p.log = &ibtest.SyncBuffer{}
	p.cmd = exec.Command(ibBinary, p.args...)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.exited = make(chan error, 1)
	go func() { p.exited <- p.cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(p.log.String(), "ib server started") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start:\n%s", p.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMetrics(t *testing.T) {
	mport := freePort(t)
	p := startProc(t, "http", "--metrics-port", strconv.Itoa(mport))
	conf := t.TempDir()
	mustIB(t, conf, "login", p.URL, "--token", p.Token)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "small"), ibtest.RandomBytes(100_000), 0o644, time.Unix(1700000000, 0))
	ibtest.WriteFile(t, filepath.Join(src, "large"), ibtest.RandomBytes(400_000), 0o644, time.Unix(1700000000, 0))
	const size = 500_000
	mustIB(t, conf, "backup", "create", "-q", "--node=m", src)
	mustIB(t, conf, "backup", "restore", "1", filepath.Join(t.TempDir(), "r"), "-q")

	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(mport) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	expo, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	value := func(name string) float64 {
		for line := range strings.SplitSeq(string(expo), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		t.Fatalf("no series %s in:\n%s", name, expo)
		return 0
	}
	for _, name := range []string{"ib_blocks_total", "ib_blocks"} {
		if v := value(name); v != 2 {
			t.Errorf("%s = %v, want 2", name, v)
		}
	}
	for _, name := range []string{"ib_manifests_total", "ib_manifests"} {
		if v := value(name); v != 1 {
			t.Errorf("%s = %v, want 1", name, v)
		}
	}
	// SQLite's one writer: the commit, the block rows and the jobs used it
	if v := value(`go_sql_max_open_connections{db_name="sqlite_writer"}`); v != 1 {
		t.Errorf("the writer pool has %v connections, want 1", v)
	}
	if v := value(`go_sql_open_connections{db_name="sqlite_writer"}`); v != 1 {
		t.Errorf("the writer pool has %v open connections, want 1", v)
	}
	value(`go_sql_wait_duration_seconds_total{db_name="sqlite_writer"}`)
	// how long runnable goroutines waited for a core: some did
	if v := value("go_sched_latencies_seconds_count"); v <= 0 {
		t.Errorf("go_sched_latencies_seconds_count = %v, want > 0", v)
	}
	if v := value("ib_storage_bytes"); v < size {
		t.Errorf("ib_storage_bytes = %v, want at least %d (random data)", v, size)
	}
	if v := value("ib_bandwidth_upload_bytes_total"); v < size {
		t.Errorf("ib_bandwidth_upload_bytes_total = %v, want at least %d", v, size)
	}
	if v := value("ib_bandwidth_download_bytes_total"); v < size {
		t.Errorf("ib_bandwidth_download_bytes_total = %v, want at least %d", v, size)
	}
	for _, s := range []string{`ib_last_backup_timestamp_seconds{tags="node=m"}`, `ib_http_request_duration_seconds_count{method="PUT",route="/api/v1/blocks/:cid",status="204"} 1`, `ib_http_request_duration_seconds_count{method="POST",route="/api/v1/blocks",status="200"} 1`, "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(string(expo), s) {
			t.Errorf("exposition lacks %s", s)
		}
	}
	// not on the public port
	resp, err = http.Get(p.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	public, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(public), "ib_blocks") || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("/metrics on the public port: %d %s, want the web UI's page, not metrics", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// promtool accepts the exposition
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is needed (Debian's prometheus package; .ci/run installs it)")
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(expo)
	if out, err := check.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	// The deployed rules and dashboard: promtool passes the rules and
	// their unit tests, and every ib_ metric they name is in this
	// exposition.
	for _, args := range [][]string{{"check", "rules", "../deploy/prometheus-rules.yml"}, {"test", "rules", "../deploy/prometheus-rules.test.yml"}} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, f := range []string{"../deploy/prometheus-rules.yml", "../deploy/grafana-dashboard.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".json") && !json.Valid(b) {
			t.Errorf("%s is not JSON", f)
		}
		for _, name := range regexp.MustCompile(`\bib_[a-z_]+`).FindAllString(string(b), -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count")
			if !strings.Contains(string(expo), "# TYPE "+base+" ") {
				t.Errorf("%s names %s, which the server does not export", f, name)
			}
		}
	}
	// and the stats agree
	var st map[string]any
	json.Unmarshal([]byte(mustIB(t, conf, "server", "info", "--json")), &st)
	if st["blocks"] != 2.0 || st["backups"] != 1.0 || st["inline_blocks"] != 1.0 || st["tag_sets"] != 1.0 {
		t.Errorf("server info: %v", st)
	}
}

// tlsFiles writes a CA, and a server certificate for 127.0.0.1 signed by it.
func tlsFiles(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ib test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "ib server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", leafDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := tlsFiles(t, dir)
	p := startProc(t, "https", "--tls-cert", cert, "--tls-key", key)
	conf := t.TempDir()
	mustIB(t, conf, "login", p.URL, "--token", p.Token, "--ca-cert", ca)
	src := filepath.Join(t.TempDir(), "src")
	buildTree(t, src)
	mustIB(t, conf, "backup", "create", "-q", "--node=tls", src)
	dst := filepath.Join(t.TempDir(), "dst")
	mustIB(t, conf, "backup", "restore", "latest", "--node=tls", dst, "-q")
	ibtest.TreesEqual(t, src, dst, ibtest.SkipSpecial)

	// a wrong CA: one clear line, exit 1, at once (no retries)
	otherCA, _, _ := tlsFiles(t, t.TempDir())
	start := time.Now()
	_, errs, code := ib(t, conf, "backup", "list", "--ca-cert", otherCA)
	if code != 1 || !strings.Contains(errs, "TLS certificate is not trusted") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
		t.Fatalf("wrong CA: exit %d, %q", code, errs)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("a TLS refusal was retried for %s", time.Since(start))
	}
	if _, errs, code := ib(t, t.TempDir(), "login", p.URL, "--ca-cert", otherCA); code != 1 || !strings.Contains(errs, "not trusted") {
		t.Fatalf("login with a wrong CA: exit %d, %q", code, errs)
	}
}

func TestGracefulShutdown(t *testing.T) {
	p := startProc(t, "http")
	src := textTree(t, 24, 1<<20)
	api, err := apiclient.New(p.URL, p.Token)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := backup.Run(context.Background(), api, src, backup.Options{
			Tags: manifest.Tags{"node": "g"}, BlockSize: 256 << 10, Jobs: 4, IsNotFound: apiclient.IsNotFound,
		})
		done <- err
	}()
	for {
		var st struct{ Blocks int }
		if resp, err := http.Get(p.URL + "/api/v1/stats"); err == nil {
			json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
		}
		if st.Blocks >= 4 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("backup finished (%v) before SIGTERM", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("server exit after SIGTERM: %v\n%s", err, p.log)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("server did not stop within its 30 s bound")
	}
	logs := p.log.String()
	if !strings.Contains(logs, "shutting down") || !strings.Contains(logs, "ib server stopped") {
		t.Fatalf("no orderly shutdown in the log:\n%s", logs)
	}
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, `"status":5`) {
			t.Errorf("a request failed during shutdown: %s", line)
		}
	}
	p.start(t)
	if err := <-done; err != nil {
		t.Fatalf("backup across a graceful restart: %v", err)
	}
	conf := t.TempDir()
	mustIB(t, conf, "login", p.URL)
	dst := filepath.Join(t.TempDir(), "dst")
	mustIB(t, conf, "backup", "restore", "latest", "--node=g", dst, "-q")
	ibtest.TreesEqual(t, src, dst, nil)
}
