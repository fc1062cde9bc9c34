//go:build unix

package cmd_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"ib/internal/ibtest"
)

// Issue 17: the archive of a selection (a restore cart): several folders
// and files as one deterministic, resumable tar, by GET ?path=…&path=… or
// POST {"paths": […]}.
func TestArchiveOfASelection(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	mt := time.Unix(1700000000, 0)
	for p, n := range map[string]int{"a/x": 300_000, "a/y": 10, "b/z": 20, "c/w": 30} {
		ibtest.WriteFile(t, filepath.Join(src, p), ibtest.RandomBytes(n), 0o644, mt)
	}
	if err := os.Link(filepath.Join(src, "a/x"), filepath.Join(src, "c/link")); err != nil {
		t.Fatal(err)
	}
	mustIB(t, conf, "backup", "create", "-q", "--node=cart", src)

	resp, full := get(t, srv.URL+"/api/v1/backups/1/archive.tar?path=c&path=a")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != fmt.Sprint(len(full)) || !strings.Contains(resp.Header.Get("Content-Disposition"), "selection") {
		t.Fatalf("GET selection: %s %v", resp.Status, resp.Header)
	}
	body := `{"paths": ["c", "a/x", "a"]}`
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/backups/1/archive.tar", strings.NewReader(body))
	pr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var posted bytes.Buffer
	posted.ReadFrom(pr.Body)
	pr.Body.Close()
	if pr.StatusCode != 200 || !bytes.Equal(posted.Bytes(), full) || pr.Header.Get("ETag") != resp.Header.Get("ETag") {
		t.Fatalf("POST of the same selection: %s, %d bytes (GET: %d), ETag %q vs %q", pr.Status, posted.Len(), len(full), pr.Header.Get("ETag"), resp.Header.Get("ETag"))
	}
	// Resumable: the second half by Range is the same bytes.
	half := len(full) / 2
	r2, tail := get(t, srv.URL+"/api/v1/backups/1/archive.tar?path=a&path=c", "Range", fmt.Sprintf("bytes=%d-", half))
	if r2.StatusCode != 206 || !bytes.Equal(tail, full[half:]) {
		t.Fatalf("Range of the selection: %s, %d bytes", r2.Status, len(tail))
	}
	x := t.TempDir()
	os.WriteFile(filepath.Join(x, "s.tar"), full, 0o644)
	run(t, x, "mkdir out && tar -xf s.tar -C out")
	var got []string
	filepath.Walk(filepath.Join(x, "out"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(filepath.Join(x, "out"), p)
			got = append(got, rel)
		}
		return nil
	})
	sort.Strings(got)
	if strings.Join(got, " ") != "a/x a/y c/link c/w" {
		t.Fatalf("the selection holds %v", got)
	}
	if groups := inodeGroups(t, filepath.Join(x, "out")); groups["c/link"] != "a/x c/link" {
		t.Errorf("c/link is not a hard link to a/x in the tar: %q", groups["c/link"])
	}
	// c alone: its link's target is outside, so it is a file of its own.
	_, conly := get(t, srv.URL+"/api/v1/backups/1/archive.tar?path=c")
	os.WriteFile(filepath.Join(x, "c.tar"), conly, 0o644)
	run(t, x, "mkdir c && tar -xf c.tar -C c")
	if b, _ := os.ReadFile(filepath.Join(x, "c", "c", "link")); len(b) != 300_000 {
		t.Errorf("c/link alone: %d bytes", len(b))
	}
	for name, b := range map[string]string{"escape": `{"paths": ["../x"]}`, "unknown field": `{"path": "a"}`, "missing": `{"paths": ["nope"]}`} {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/backups/1/archive.tar", strings.NewReader(b))
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 400 && r.StatusCode != 404 {
			t.Errorf("%s: %s", name, r.Status)
		}
	}
	many := strings.Repeat("&path=a", 1001)
	if r, _ := get(t, srv.URL+"/api/v1/backups/1/archive.tar?x=1"+many); r.StatusCode != 400 {
		t.Errorf("1001 paths: %s", r.Status)
	}
}

// Issue 17: a file's history across the backups of its tag set, from one
// query.
func TestFileHistory(t *testing.T) {
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	src := t.TempDir()
	f := filepath.Join(src, "config", "app.toml")
	for i, c := range []string{"v1", "v1", "v2"} {
		ibtest.WriteFile(t, f, []byte(c), 0o644, time.Unix(1700000000+int64(i), 0))
		mustIB(t, conf, "backup", "create", "-q", "--node=h", src)
	}
	mustIB(t, conf, "backup", "create", "-q", "--node=other", src) // another tag set: not in the history
	_, body := get(t, srv.URL+"/api/v1/backups/2/history?path=config/app.toml")
	var h struct {
		Versions []struct {
			Backup         struct{ ID int64 }
			Entry          struct{ Size int64 }
			ContentChanged bool `json:"content_changed"`
		}
	}
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range h.Versions {
		got = append(got, fmt.Sprintf("%d:%v", v.Backup.ID, v.ContentChanged))
	}
	if strings.Join(got, " ") != "1:false 2:false 3:true" {
		t.Fatalf("history: %s\n%s", got, body)
	}
	if r, _ := get(t, srv.URL+"/api/v1/backups/99/history?path=config/app.toml"); r.StatusCode != 404 {
		t.Errorf("history of a missing backup: %s", r.Status)
	}
	if r, _ := get(t, srv.URL+"/api/v1/backups/1/history?path=../x"); r.StatusCode != 400 {
		t.Errorf("history of a bad path: %s", r.Status)
	}
}
