//go:build unix

package cmd_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ib/internal/block"
	"ib/internal/ibtest"
)

// tinyTree writes files of 1 to block.InlineMax bytes (named by inline
// CIDs), one byte more, a small file, an empty one and a larger one; it
// returns the tiny files' contents by path.
func tinyTree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	mt := time.Unix(1700000000, 42).UTC()
	tiny := map[string][]byte{}
	for i, n := range []int{1, 2, 16, 36, 64, 100, 127, block.InlineMax} {
		p := fmt.Sprintf("d%d/t%03d", i%2, n)
		tiny[p] = ibtest.RandomBytes(n)
		ibtest.WriteFile(t, filepath.Join(root, filepath.FromSlash(p)), tiny[p], 0o640, mt)
	}
	ibtest.WriteFile(t, filepath.Join(root, "over"), ibtest.RandomBytes(block.InlineMax+1), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(root, "small"), ibtest.RandomBytes(4000), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(root, "empty"), nil, 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(root, "big"), ibtest.RandomBytes(300_000), 0o644, mt)
	return tiny
}

func serverBlocks(t *testing.T, srvURL string) int64 {
	t.Helper()
	resp, err := http.Get(srvURL + "/api/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct{ Blocks int64 }
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks
}

// TestTinyFilesAreInline: files of at most block.InlineMax bytes are named
// by identity CIDs, so the server stores no block for them; every way out
// (restore, one file over HTTP, the tar, cat, verify) gives their bytes.
func TestTinyFilesAreInline(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	src := filepath.Join(t.TempDir(), "src")
	tiny := tinyTree(t, src)
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)

	out := mustIB(t, conf, "backup", "create", "--node=n", "--block-size", "64KiB", "--json", "-q", src)
	var res struct {
		ID        int64 `json:"id"`
		Blocks    int64 `json:"blocks"`
		NewBlocks int64 `json:"new_blocks"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	// over and small: 1 block each, big: 5 of 64 KiB; the 8 tiny files
	// are in the manifest alone.
	if res.Blocks != 8+7 || res.NewBlocks != 7 {
		t.Fatalf("blocks %d, new %d: want 15 and 7", res.Blocks, res.NewBlocks)
	}
	if n := serverBlocks(t, srv.URL); n != 7 {
		t.Fatalf("the server holds %d blocks, want 7", n)
	}
	m := fetchManifest(t, srv.URL, res.ID)
	for p, data := range tiny {
		if c := m[p]; c != block.Inline(data).String() {
			t.Errorf("%s: CID %s, want its inline CID", p, c)
		}
	}
	if c := m["over"]; block.IsInline(c) || len(c) != 59 {
		t.Errorf("a file of %d bytes got CID %s", block.InlineMax+1, c)
	}

	dst := filepath.Join(t.TempDir(), "dst")
	mustIB(t, conf, "backup", "restore", "latest", "--node=n", "-q", dst)
	ibtest.TreesEqual(t, src, dst, nil)

	p := "d1/t128"
	if got := mustIB(t, conf, "backup", "cat", "latest", "--node=n", p); got != string(tiny[p]) {
		t.Errorf("cat %s: %d bytes, want %d", p, len(got), len(tiny[p]))
	}
	if got := httpGet(t, fmt.Sprintf("%s/api/v1/backups/%d/files/%s", srv.URL, res.ID, p)); !bytes.Equal(got, tiny[p]) {
		t.Errorf("GET files/%s: %q", p, got)
	}
	tarred, _ := untar(t, httpGet(t, fmt.Sprintf("%s/api/v1/backups/%d/archive.tar", srv.URL, res.ID)))
	for p, want := range tiny {
		if got, ok := tarred[p]; !ok || !bytes.Equal(got, want) {
			t.Errorf("tar %s: %q (there: %v), want %q", p, got, ok, want)
		}
	}
	if out := mustIB(t, conf, "backup", "verify", "latest", "--node=n", "--deep"); !strings.Contains(out, "7 blocks") {
		t.Errorf("verify --deep: %s", out)
	}

	// Nothing changed: nothing new, still 7 blocks.
	out = mustIB(t, conf, "backup", "create", "--node=n", "--block-size", "64KiB", "--json", "-q", src)
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.NewBlocks != 0 {
		t.Fatalf("second backup: %s", out)
	}
}

// TestInlineCIDsNeedTheServersWord: a server that does not say it takes
// inline CIDs (one older than them, here behind a front that drops the
// word) gets every file as a block with its sha2-256 CID; a server never
// takes an upload of an inline CID.
func TestInlineCIDsNeedTheServersWord(t *testing.T) {
	srv := ibtest.StartServer(t)
	u, _ := url.Parse(srv.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/whoami" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"scope":"append","name":"old"}`)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	defer front.Close()
	conf := t.TempDir()
	src := filepath.Join(t.TempDir(), "src")
	tinyTree(t, src)
	mustIB(t, conf, "login", front.URL, "--token", srv.Token)
	out := mustIB(t, conf, "backup", "create", "--node=n", "--block-size", "64KiB", "--json", "-q", src)
	var res struct {
		ID        int64 `json:"id"`
		NewBlocks int64 `json:"new_blocks"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.NewBlocks != 15 {
		t.Fatalf("backup to an older server: %s (want 15 new blocks)", out)
	}
	for p, c := range fetchManifest(t, srv.URL, res.ID) {
		if block.IsInline(c) {
			t.Errorf("%s has inline CID %s", p, c)
		}
	}
	dst := filepath.Join(t.TempDir(), "dst")
	mustIB(t, conf, "backup", "restore", "latest", "--node=n", "-q", dst)
	ibtest.TreesEqual(t, src, dst, nil)

	c := block.Inline([]byte("hi")).String()
	wire, _ := block.Encode([]byte("hi"), block.FastLevel)
	req, _ := http.NewRequest("PUT", srv.URL+"/api/v1/blocks/"+c, bytes.NewReader(wire))
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "nothing to upload") {
		t.Errorf("PUT of an inline CID: %d %s", resp.StatusCode, body)
	}
}

// fetchManifest returns the first block's CID of each file of backup id.
func fetchManifest(t *testing.T, srvURL string, id int64) map[string]string {
	t.Helper()
	var m struct {
		Entries []struct {
			Path   string
			Blocks []struct{ CID string }
		}
	}
	if err := json.Unmarshal(httpGet(t, fmt.Sprintf("%s/api/v1/backups/%d/manifest", srvURL, id)), &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range m.Entries {
		if len(e.Blocks) > 0 {
			out[e.Path] = e.Blocks[0].CID
		}
	}
	return out
}

func httpGet(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return b
}

// untar reads a tar archive: each member's bytes and link target by name.
func untar(t *testing.T, data []byte) (files map[string][]byte, links map[string]string) {
	t.Helper()
	files, links = map[string][]byte{}, map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, links
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name], links[h.Name] = b, h.Linkname
	}
}
