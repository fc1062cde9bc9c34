//go:build unix

package cmd_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ib/internal/ibtest"
)

// Issue 17: the .tar.lz4 is the same bytes every time; after one stream
// was sent whole it has a length, an ETag and ranges, so `curl -C -`
// resumes it, and it still unpacks with `lz4 -d | tar -x`.
func TestResumableTarLZ4(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	mt := time.Unix(1700000000, 0)
	ibtest.WriteFile(t, filepath.Join(src, "db", "000001.sst"), ibtest.RandomBytes(3<<20), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "logs", "node.log"), bytes.Repeat([]byte("height 1234 hash abcdef applied\n"), 200_000), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "config.json"), []byte(`{"a":1}`), 0o644, mt)
	mustIB(t, conf, "backup", "create", "-q", "--node=lz", src)
	url := srv.URL + "/api/v1/backups/1/archive.tar.lz4"

	// The first download is cut at a third: before any stream was sent
	// whole, `curl -C -` resumes it (its Range request waits for the
	// index pass the first GET started).
	first, body1 := get(t, url)
	if first.StatusCode != 200 || first.Header.Get("Content-Length") != "" || first.Header.Get("ETag") == "" {
		t.Fatalf("first stream: %s, Content-Length %q (want none yet), ETag %q", first.Status, first.Header.Get("Content-Length"), first.Header.Get("ETag"))
	}
	cutDir := t.TempDir()
	os.WriteFile(filepath.Join(cutDir, "n.tar.lz4"), body1[:len(body1)/3], 0o644)
	if out, err := exec.Command("curl", "-fsS", "-C", "-", "-o", filepath.Join(cutDir, "n.tar.lz4"), url).CombinedOutput(); err != nil {
		t.Fatalf("curl -C - of the first download: %v %s", err, out)
	}
	if got, _ := os.ReadFile(filepath.Join(cutDir, "n.tar.lz4")); !bytes.Equal(got, body1) {
		t.Fatal("the resumed first download differs")
	}
	// The sizes are kept on disk: a restarted server knows the length.
	srv.Stop()
	srv.Start(t)
	url = srv.URL + "/api/v1/backups/1/archive.tar.lz4"
	second, body2 := get(t, url)
	if second.StatusCode != 200 || second.Header.Get("Content-Length") != strconv.Itoa(len(body2)) || second.Header.Get("ETag") != first.Header.Get("ETag") {
		t.Fatalf("second stream after a restart: %s %v", second.Status, second.Header)
	}
	if !bytes.Equal(body1, body2) {
		t.Fatal("the two streams differ")
	}
	for _, off := range []int{0, 5, 7, 1 << 20, len(body2) / 2, len(body2) - 3} {
		r, part := get(t, url, "Range", fmt.Sprintf("bytes=%d-", off))
		if r.StatusCode != 206 || !bytes.Equal(part, body2[off:]) {
			t.Fatalf("Range from %d: %s, %d bytes", off, r.Status, len(part))
		}
	}
	head, _ := http.Head(url)
	if head.Header.Get("Content-Length") != strconv.Itoa(len(body2)) {
		t.Errorf("HEAD: Content-Length %q", head.Header.Get("Content-Length"))
	}
	// A download cut at a third, resumed by curl.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "n.tar.lz4"), body2[:len(body2)/3], 0o644)
	if out, err := exec.Command("curl", "-fsS", "-C", "-", "-o", filepath.Join(dir, "n.tar.lz4"), url).CombinedOutput(); err != nil {
		t.Fatalf("curl -C -: %v %s", err, out)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "n.tar.lz4"))
	if !bytes.Equal(got, body2) {
		t.Fatal("the resumed download differs")
	}
	run(t, dir, "mkdir out && lz4 -dc n.tar.lz4 | tar -x -C out")
	if b, err := os.ReadFile(filepath.Join(dir, "out", "db", "000001.sst")); err != nil || len(b) != 3<<20 {
		t.Fatalf("unpacked: %d bytes, %v", len(b), err)
	}
	_, tarBody := get(t, srv.URL+"/api/v1/backups/1/archive.tar")
	if out, err := exec.Command("sh", "-c", "lz4 -dc "+filepath.Join(dir, "n.tar.lz4")+" | cmp - "+writeTemp(t, tarBody)).CombinedOutput(); err != nil {
		t.Fatalf("the stream is not the tar: %v %s", err, out)
	}
	if !strings.Contains(second.Header.Get("Content-Type"), "lz4") {
		t.Errorf("Content-Type %q", second.Header.Get("Content-Type"))
	}
	// Deleting the backup removes its index.
	idx := filepath.Join(srv.DataDir, "lz4index", "1.lz4sizes")
	if _, err := os.Stat(idx); err != nil {
		t.Fatalf("index file: %v", err)
	}
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	mustIB(t, conf, "backup", "delete", "--yes", "1")
	if _, err := os.Stat(idx); !os.IsNotExist(err) {
		t.Errorf("index file after delete: %v", err)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, b, 0o644)
	return p
}
