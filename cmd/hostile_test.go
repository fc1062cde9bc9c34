//go:build linux

package cmd_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ib/internal/ibtest"
)

// hostileServer is the real binary serving two backups: "big" holds one
// 32 MiB random file in one block and a text file of several blocks.
type hostileServer struct {
	*proc
	conf   string
	src    string
	big    []byte
	text   []byte
	backup int64
}

func startHostile(t *testing.T, args ...string) *hostileServer {
	t.Helper()
	h := &hostileServer{proc: startProc(t, "http", args...), conf: t.TempDir(), src: t.TempDir()}
	mustIB(t, h.conf, "login", h.URL, "--token", h.Token)
	h.big = ibtest.RandomBytes(32 << 20)
	var text bytes.Buffer
	for i := 0; text.Len() < 5<<20; i++ {
		fmt.Fprintf(&text, "height=%d hash=%x msg=\"applied block\"\n", i, sha256.Sum256([]byte(strconv.Itoa(i))))
	}
	h.text = text.Bytes()
	ibtest.WriteFile(t, filepath.Join(h.src, "big"), h.big, 0o644, time.Unix(1700000000, 0))
	ibtest.WriteFile(t, filepath.Join(h.src, "logs", "node.log"), h.text, 0o644, time.Unix(1700000000, 0))
	out := mustIB(t, h.conf, "backup", "create", "-q", "--json", "--node=hostile", "--block-size", "128MiB", h.src)
	var res struct{ ID int64 }
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	h.backup = res.ID
	return h
}

// alive fails the test unless the server process runs and /healthz is 200.
func (h *hostileServer) alive(t *testing.T) {
	t.Helper()
	select {
	case err := <-h.exited:
		h.cmd = nil // nothing left for the cleanup to wait for
		t.Fatalf("the server process died (%v):\n%s", err, h.log)
	default:
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(h.URL + "/healthz")
	if err != nil {
		t.Fatalf("healthz: %v\n%s", err, h.log)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
}

// restoresExactly restores the backup and compares it with its source.
func (h *hostileServer) restoresExactly(t *testing.T) {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "r")
	mustIB(t, h.conf, "backup", "restore", strconv.FormatInt(h.backup, 10), dst, "-q")
	ibtest.TreesEqual(t, h.src, dst, nil)
}

func (h *hostileServer) fileURL(name string) string {
	return fmt.Sprintf("%s/api/v1/backups/%d/files/%s", h.URL, h.backup, name)
}

// cpuSeconds is the user and system time the server process has used.
func (h *hostileServer) cpuSeconds(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", h.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks (USER_HZ is 100 on Linux)
}

func manyRanges(n int, r string) string {
	return "bytes=" + strings.TrimSuffix(strings.Repeat(r+",", n), ",")
}

// Finding 1: a multi-range request whose client goes away, and one over a
// corrupt block, killed the process (a panic on ServeContent's goroutine).
func TestHostileRangesDoNotCrash(t *testing.T) {
	h := startHostile(t)
	for range 5 {
		req, _ := http.NewRequest("GET", h.fileURL("big"), nil)
		req.Header.Set("Range", manyRanges(200, "-1"))
		c := &http.Client{Timeout: 300 * time.Millisecond}
		if resp, err := c.Do(req); err == nil {
			time.Sleep(50 * time.Millisecond)
			resp.Body.Close() // goes away mid-body
		}
	}
	h.alive(t)

	// Corrupt the big block on disk: every read of it now fails mid-body.
	var blocks []string
	filepath.Walk(filepath.Join(h.proc.conf, "data"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > 30<<20 {
			blocks = append(blocks, p)
		}
		return nil
	})
	if len(blocks) != 1 {
		t.Fatalf("want the one stored 32 MiB block, found %v", blocks)
	}
	f, err := os.OpenFile(blocks[0], os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("garbage!"), 20<<20)
	f.Close()
	for _, r := range []string{"bytes=0-10,30000000-30000010", manyRanges(2, "-1"), "bytes=0-"} {
		req, _ := http.NewRequest("GET", h.fileURL("big"), nil)
		req.Header.Set("Range", r)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var got int64
			got, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Errorf("Range %s of a corrupt block: %d, %d bytes, no error", r, resp.StatusCode, got)
			}
		}
	}
	h.alive(t)
}

// Finding 2: one range per request, started at the right frame block.
func TestHostileRangesAreBounded(t *testing.T) {
	h := startHostile(t)
	// get is archive_test.go's, with a Range header (none when empty)
	get := func(url, rng string) (int, []byte) {
		resp, b := get(t, url, "Range", rng)
		return resp.StatusCode, b
	}
	// several ranges: the whole file, 200, as nginx's max_ranges 1
	if st, b := get(h.fileURL("big"), manyRanges(40, "-1")); st != 200 || !bytes.Equal(b, h.big) {
		t.Errorf("40 ranges: %d with %d bytes, want 200 and the whole file", st, len(b))
	}
	if st, _ := get(h.fileURL("big"), "bytes="+strings.Repeat("0", 300)+"-1"); st != 200 {
		t.Errorf("an absurd Range header: %d, want 200", st)
	}
	// single ranges, mid-block, in both kinds of file
	for _, c := range []struct {
		name       string
		data       []byte
		start, end int
	}{
		{"big", h.big, 20<<20 + 5, 20<<20 + 70_000},
		{"big", h.big, 32<<20 - 100, 32<<20 - 1},
		{"logs/node.log", h.text, 3<<20 + 17, 4<<20 + 5},
		{"logs/node.log", h.text, 1, 2},
	} {
		st, b := get(h.fileURL(c.name), fmt.Sprintf("bytes=%d-%d", c.start, c.end))
		if st != http.StatusPartialContent || !bytes.Equal(b, c.data[c.start:c.end+1]) {
			t.Errorf("%s bytes %d-%d: %d with %d bytes, want 206 and the file's bytes", c.name, c.start, c.end, st, len(b))
		}
	}
	// the tar, resumed in the middle of the big file
	st, whole := get(fmt.Sprintf("%s/api/v1/backups/%d/archive.tar", h.URL, h.backup), "")
	if st != 200 {
		t.Fatalf("archive: %d", st)
	}
	for _, off := range []int{len(whole) / 2, len(whole) - 3000, 7} {
		st, b := get(fmt.Sprintf("%s/api/v1/backups/%d/archive.tar", h.URL, h.backup), fmt.Sprintf("bytes=%d-", off))
		if st != http.StatusPartialContent || !bytes.Equal(b, whole[off:]) {
			t.Errorf("archive from %d: %d with %d bytes, want 206 and the tail", off, st, len(b))
		}
	}
	// The cost of a range is its bytes and one frame block: 100 requests
	// for the last bytes of the 32 MiB block decoded and hashed 3.2 GB
	// before (over 2 s of CPU here); now about 100 MiB are read.
	before := h.cpuSeconds(t)
	for range 100 {
		get(h.fileURL("big"), "bytes=-10")
	}
	used := h.cpuSeconds(t) - before
	if used > 1 {
		t.Errorf("100 one-range requests cost the server %.2f s of CPU", used)
	}
	t.Logf("100 requests for the last 10 bytes of a 32 MiB block: %.2f s of server CPU", used)
	h.alive(t)
	h.restoresExactly(t)
}

// getRaw sends a GET with headers and returns the status, headers and body.
func getRaw(t *testing.T, url string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	resp, b := get(t, url, hdr...)
	return resp.StatusCode, resp.Header, string(b)
}

// Findings 7, 8, 9: limits of queries, UI status and headers, proxies,
// what /stats tells.
func TestHostileQueriesAndHeaders(t *testing.T) {
	h := startHostile(t)
	var q []string
	for i := range 500 {
		q = append(q, fmt.Sprintf("t%d=v", i))
	}
	if st, _, body := getRaw(t, h.URL+"/api/v1/backups?"+strings.Join(q, "&")); st != 400 || strings.Contains(strings.ToLower(body), "sql") {
		t.Errorf("500 tag filters: %d %s, want 400 without SQL in it", st, body)
	}
	for _, bad := range []string{"%00", "a%0Ab", "%1b[2J", "%ff%fe"} {
		if st, _, body := getRaw(t, h.URL+"/api/v1/search?q="+bad); st != 400 {
			t.Errorf("search q=%s: %d %s, want 400", bad, st, body)
		}
	}
	if st, _, body := getRaw(t, h.URL+"/api/v1/search?q=node.log"); st != 200 || !strings.Contains(body, "logs/node.log") {
		t.Errorf("search q=node.log: %d %s", st, body)
	}

	// Every UI page answers 200; unknown API paths 404 JSON; all carry
	// the security headers.
	for _, c := range []struct {
		path, ctype string
		status      int
	}{
		{"/", "text/html", 200},
		{fmt.Sprintf("/backups/%d?path=logs", h.backup), "text/html", 200},
		{"/search?q=x", "text/html", 200},
		{"/app.js", "javascript", 200},
		{"/api/v1/nothing", "application/json", 404},
		{"/api/v1/backups", "application/json", 200},
	} {
		st, hdr, body := getRaw(t, h.URL+c.path)
		if st != c.status || !strings.Contains(hdr.Get("Content-Type"), c.ctype) {
			t.Errorf("GET %s: %d %s, want %d %s (%.80s)", c.path, st, hdr.Get("Content-Type"), c.status, c.ctype, body)
		}
		for name, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "Content-Security-Policy": "script-src 'self'"} {
			if !strings.Contains(hdr.Get(name), want) {
				t.Errorf("GET %s: %s %q, want %q in it", c.path, name, hdr.Get(name), want)
			}
		}
		if strings.Contains(hdr.Get("Content-Security-Policy"), "unsafe-inline") {
			t.Errorf("GET %s: the CSP allows inline code", c.path)
		}
	}

	// /stats and /healthz tell the kind of block store, not its path.
	_, _, stats := getRaw(t, h.URL+"/api/v1/stats")
	_, _, health := getRaw(t, h.URL+"/healthz")
	for _, body := range []string{stats, health} {
		if !strings.Contains(body, `"block_store":"local"`) || strings.Contains(body, h.proc.conf) {
			t.Errorf("answer names the block store's path: %s", body)
		}
	}

	// X-Forwarded-For is believed from trusted proxies only.
	getRaw(t, h.URL+"/api/v1/stats", "X-Forwarded-For", "6.6.6.6")
	getRaw(t, h.URL+"/api/v1/stats") // its log line comes after the first one's
	time.Sleep(100 * time.Millisecond)
	if strings.Contains(h.log.String(), "6.6.6.6") {
		t.Errorf("X-Forwarded-For from an untrusted client reached the log")
	}
	p := startProc(t, "http", "--trusted-proxies", "127.0.0.0/8")
	getRaw(t, p.URL+"/api/v1/stats", "X-Forwarded-For", "6.6.6.6")
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !strings.Contains(p.log.String(), `"client":"6.6.6.6"`); {
		time.Sleep(20 * time.Millisecond) // the request's log line comes after its answer
	}
	if !strings.Contains(p.log.String(), `"client":"6.6.6.6"`) {
		t.Errorf("X-Forwarded-For from a trusted proxy is not the client:\n%s", p.log)
	}
	h.alive(t)
}

// Finding 9: serving plain HTTP off loopback warns.
func TestServeWarnsOfPlainHTTPOffLoopback(t *testing.T) {
	p := startProc(t, "http", "--listen", "0.0.0.0:"+strconv.Itoa(freePort(t)))
	if !strings.Contains(p.log.String(), "warning: serving plain HTTP") {
		t.Errorf("no warning for plain HTTP on 0.0.0.0:\n%s", p.log)
	}
	q := startProc(t, "http")
	if strings.Contains(q.log.String(), "warning: serving plain HTTP") {
		t.Errorf("a warning for plain HTTP on loopback:\n%s", q.log)
	}
	out, err := exec.Command(ibBinary, "server", "serve", "--trusted-proxies", "not-an-ip", "--config", filepath.Join(t.TempDir(), "s.toml")).CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "not-an-ip") {
		t.Errorf("--trusted-proxies not-an-ip: exit %d: %s", code, out)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// Finding 5: --chown is checked before anything is fetched.
func TestRestoreOwnerFlags(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL)
	for _, bad := range []string{"nobody", "no-such-user-x:root", "root:no-such-group-x", ":"} {
		if _, errs, code := ib(t, conf, "backup", "restore", "1", t.TempDir(), "--chown", bad); code != 2 || !strings.Contains(errs, "--chown") {
			t.Errorf("--chown %q: exit %d %q, want a usage error", bad, code, errs)
		}
	}
}

// TestHammer fires every hostile request kind of the hardening review at a
// live server from several goroutines at once; the server process must
// live, /healthz answer 200, and the backup restore byte-exact afterwards.
func TestHammer(t *testing.T) {
	h := startHostile(t)
	base := fmt.Sprintf("%s/api/v1/backups/%d", h.URL, h.backup)
	var filters []string
	for i := range 600 {
		filters = append(filters, fmt.Sprintf("k%d=v", i))
	}
	type hostile struct {
		method, url string
		hdr         []string
		body        string
		cut         time.Duration // client gives up this soon (0: reads all)
	}
	kinds := []hostile{
		{method: "GET", url: h.fileURL("big"), hdr: []string{"Range", manyRanges(200, "-1")}, cut: 50 * time.Millisecond},
		{method: "GET", url: h.fileURL("big"), hdr: []string{"Range", manyRanges(2, "0-")}},
		{method: "GET", url: h.fileURL("big"), hdr: []string{"Range", "bytes=" + strings.Repeat("9", 500) + "-"}},
		{method: "GET", url: h.fileURL("logs/node.log"), hdr: []string{"Range", "bytes=4000000-"}},
		{method: "GET", url: h.fileURL("big"), hdr: []string{"X-Junk", strings.Repeat("x", 100<<10)}},
		{method: "GET", url: h.URL + "/api/v1/backups?" + strings.Join(filters, "&")},
		{method: "GET", url: h.URL + "/api/v1/search?q=%00"},
		{method: "GET", url: h.URL + "/api/v1/search?q=" + strings.Repeat("a", 5000)},
		{method: "GET", url: h.fileURL("../../../etc/passwd")},
		{method: "GET", url: base + "/tree?path=../x&limit=-5&after=zz"},
		{method: "GET", url: base + "/archive.tar?path=%2e%2e"},
		{method: "GET", url: base + "/archive.tar", cut: 30 * time.Millisecond},
		{method: "GET", url: base + "/archive.tar.lz4", cut: 30 * time.Millisecond},
		{method: "GET", url: base + "/archive.tar", hdr: []string{"Range", "bytes=33554000-33560000"}},
		{method: "HEAD", url: base + "/archive.tar"},
		{method: "GET", url: h.URL + "/api/v1/backups/latest/archive.tar?node=hostile&x=%ff"},
		{method: "GET", url: h.URL + "/api/v1/backups/99999999999999999999/manifest"},
		{method: "GET", url: h.URL + "/api/v1/blocks/bafkrei" + strings.Repeat("a", 52)},
		{method: "GET", url: h.URL + "/api/v1/blocks/..%2f..%2fib.db"},
		{method: "POST", url: h.URL + "/api/v1/blocks/fetch", body: `{"cids":["x","y"]}`},
		{method: "POST", url: h.URL + "/api/v1/blocks/fetch", body: `{"cids":` + strings.Repeat("[", 10000)},
		{method: "POST", url: h.URL + "/api/v1/backups", hdr: []string{"Authorization", "Bearer wrong"}, body: `{"tags":{},"entries":[]}`},
		{method: "POST", url: h.URL + "/api/v1/blocks", hdr: []string{"Authorization", "Bearer " + h.Token}, body: "\x05hello\xff\xff\xff\xff\x0f"},
		{method: "PUT", url: h.URL + "/api/v1/blocks/bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e", hdr: []string{"Authorization", "Bearer " + h.Token}, body: "not lz4"},
		{method: "DELETE", url: base, hdr: []string{"Authorization", "Bearer " + h.Token + "x"}},
		{method: "GET", url: h.URL + "/api/v1/stats", hdr: []string{"X-Forwarded-For", "1.2.3.4, <script>"}},
		{method: "GET", url: h.URL + "/backups/1?path=%24(touch%20%2Ftmp%2Fpwned)"},
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 3 * len(kinds) {
				k := kinds[(g*7+i)%len(kinds)]
				req, _ := http.NewRequest(k.method, k.url, strings.NewReader(k.body))
				for j := 0; j+1 < len(k.hdr); j += 2 {
					req.Header.Set(k.hdr[j], k.hdr[j+1])
				}
				c := &http.Client{Timeout: 30 * time.Second}
				if k.cut > 0 {
					c.Timeout = k.cut
				}
				resp, err := c.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s %.120s: %d", k.method, k.url, resp.StatusCode))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for _, f := range failures {
		t.Errorf("a hostile request got a server error: %s", f)
	}
	h.alive(t)
	h.restoresExactly(t)
}

// Over HTTP/2 (TLS) no connection is taken over: a body that fails midway
// resets its stream, and the same connection serves the next request.
func TestCutOverHTTP2(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := tlsFiles(t, dir)
	p := startProc(t, "https", "--tls-cert", cert, "--tls-key", key)
	conf := t.TempDir()
	mustIB(t, conf, "login", p.URL, "--token", p.Token, "--ca-cert", ca)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "big"), ibtest.RandomBytes(8<<20), 0o644, time.Unix(1700000000, 0))
	mustIB(t, conf, "backup", "create", "-q", "--node=h2", "--block-size", "128MiB", src)
	var blocks []string
	filepath.Walk(filepath.Join(p.conf, "data"), func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && fi.Size() > 7<<20 {
			blocks = append(blocks, path)
		}
		return nil
	})
	if len(blocks) != 1 {
		t.Fatalf("want the one stored 8 MiB block, found %v", blocks)
	}
	f, _ := os.OpenFile(blocks[0], os.O_RDWR, 0)
	f.WriteAt([]byte("garbage!"), 4<<20)
	f.Close()
	pem, _ := os.ReadFile(ca)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := c.Get(p.URL + "/api/v1/backups/1/files/big")
	if err != nil {
		t.Fatal(err)
	}
	n, rerr := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || rerr == nil {
		t.Fatalf("a corrupt file over %s: %d bytes, read error %v; want HTTP/2 and a reset stream", resp.Proto, n, rerr)
	}
	h, err := c.Get(p.URL + "/healthz")
	if err != nil || h.StatusCode != 200 || h.ProtoMajor != 2 {
		t.Fatalf("healthz over HTTP/2 after the reset: %v", err)
	}
	h.Body.Close()
}
