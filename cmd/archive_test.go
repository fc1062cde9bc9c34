//go:build unix

package cmd_test

import (
	"bytes"
	"io"
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

func get(t *testing.T, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func run(t *testing.T, dir, shell string) {
	t.Helper()
	c := exec.Command("sh", "-c", shell)
	c.Dir = dir
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, out)
	}
}

// The tar of a backup extracts with GNU tar to the original tree, with
// nanosecond mtimes (PAX records), the same bytes on every request.
func TestArchiveTar(t *testing.T) {
	for _, tool := range []string{"tar", "curl", "lz4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (.ci/run installs it)", tool)
		}
	}
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := filepath.Join(t.TempDir(), "src")
	buildTree(t, src)
	mustIB(t, conf, "backup", "create", "-q", "--block-size", "64KiB", "--node=tar", src)
	url := srv.URL + "/api/v1/backups/1/archive.tar"

	resp1, tar1 := get(t, url)
	resp2, tar2 := get(t, url)
	if resp1.StatusCode != 200 || !bytes.Equal(tar1, tar2) {
		t.Fatalf("two requests: %d, %d bytes vs %d bytes, equal=%v", resp1.StatusCode, len(tar1), len(tar2), bytes.Equal(tar1, tar2))
	}
	if cl := resp1.Header.Get("Content-Length"); cl != strconv.Itoa(len(tar1)) || resp1.Header.Get("ETag") == "" || resp2.Header.Get("ETag") != resp1.Header.Get("ETag") {
		t.Fatalf("headers: Content-Length %q for %d bytes, ETag %q/%q", cl, len(tar1), resp1.Header.Get("ETag"), resp2.Header.Get("ETag"))
	}

	// GNU tar extracts the original tree: content, modes, mtimes, symlinks
	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "b.tar"), tar1, 0o644)
	out := filepath.Join(work, "out")
	os.Mkdir(out, 0o755)
	run(t, out, "tar -xpf ../b.tar")
	os.Chtimes(out, mtimeOf(t, src), mtimeOf(t, src)) // the root itself is not in the archive
	os.Chmod(out, 0o755)
	ibtest.TreesEqual(t, src, out, ibtest.SkipSpecial)

	// a Range request returns the right bytes
	resp, part := get(t, url, "Range", "bytes=1000-4999")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, tar1[1000:5000]) {
		t.Fatalf("range: %d, %d bytes, equal=%v", resp.StatusCode, len(part), bytes.Equal(part, tar1[1000:5000]))
	}
	// a download cut in the middle and resumed with curl -C - is whole
	os.WriteFile(filepath.Join(work, "resumed.tar"), tar1[:len(tar1)/2+123], 0o644)
	run(t, work, "curl -sSf -C - -o resumed.tar '"+url+"'")
	if got, _ := os.ReadFile(filepath.Join(work, "resumed.tar")); !bytes.Equal(got, tar1) {
		t.Fatalf("resumed download differs (%d bytes, want %d)", len(got), len(tar1))
	}

	// curl …/archive.tar.lz4 | lz4 -d | tar -x gives the same tree
	out2 := filepath.Join(work, "out2")
	os.Mkdir(out2, 0o755)
	run(t, out2, "curl -sSf '"+url+".lz4' | lz4 -dc | tar -xpf -")
	os.Chtimes(out2, mtimeOf(t, src), mtimeOf(t, src))
	ibtest.TreesEqual(t, src, out2, ibtest.SkipSpecial)

	// one folder of it
	_, sub := get(t, url+"?path=a/b")
	os.WriteFile(filepath.Join(work, "sub.tar"), sub, 0o644)
	out3 := filepath.Join(work, "out3")
	os.Mkdir(out3, 0o755)
	run(t, out3, "tar -xpf ../sub.tar")
	ibtest.TreesEqual(t, filepath.Join(src, "a", "b"), filepath.Join(out3, "a", "b"), nil)
	if _, err := os.Stat(filepath.Join(out3, "a", "run.sh")); !os.IsNotExist(err) {
		t.Fatalf("?path=a/b archived a/run.sh too")
	}
}

func mtimeOf(t *testing.T, p string) time.Time {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

func TestFileDownloadAndPermalink(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	data := ibtest.RandomBytes(5*65536 + 999) // six blocks of 64 KiB
	ibtest.WriteFile(t, filepath.Join(src, "chain", "big file.sst"), data, 0o644, time.Unix(1700000000, 0))
	mustIB(t, conf, "backup", "create", "-q", "--block-size", "64KiB", "--node=p", src)

	url := srv.URL + "/api/v1/backups/1/files/chain/big%20file.sst"
	resp, got := get(t, url)
	if resp.StatusCode != 200 || !bytes.Equal(got, data) || resp.Header.Get("Content-Length") != strconv.Itoa(len(data)) {
		t.Fatalf("file download: %d, %d bytes, equal=%v", resp.StatusCode, len(got), bytes.Equal(got, data))
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "big%20file.sst") {
		t.Errorf("Content-Disposition %q", cd)
	}
	// a range across a block boundary
	resp, part := get(t, url, "Range", "bytes=65000-140000")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, data[65000:140001]) {
		t.Fatalf("range: %d, equal=%v", resp.StatusCode, bytes.Equal(part, data[65000:140001]))
	}
	for path, want := range map[string]int{"/api/v1/backups/1/files/chain": 400, "/api/v1/backups/1/files/nope": 404, "/api/v1/backups/9/files/x": 404} {
		if resp, _ := get(t, srv.URL+path); resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}

	// the latest permalink follows a new backup
	perma := srv.URL + "/api/v1/backups/latest/archive.tar?node=p"
	_, first := get(t, perma)
	ibtest.WriteFile(t, filepath.Join(src, "new.txt"), []byte("new"), 0o644, time.Unix(1700000001, 0))
	mustIB(t, conf, "backup", "create", "-q", "--node=p", src)
	resp, second := get(t, perma)
	if resp.Request.URL.Path != "/api/v1/backups/2/archive.tar" || bytes.Equal(first, second) || !bytes.Contains(second, []byte("new.txt")) {
		t.Fatalf("permalink after a new backup went to %s", resp.Request.URL.Path)
	}
	if resp, _ := get(t, srv.URL+"/api/v1/backups/latest/archive.tar?node=none"); resp.StatusCode != 404 {
		t.Fatalf("permalink of an unknown tag set: %d", resp.StatusCode)
	}
}
