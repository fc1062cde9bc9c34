package frontend_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/manifest"
)

// Issue 16: the UI shows a backup's labels (in the list and on the
// backup), hard links with their target, and files that changed while
// read.
func TestWebUILiveCapture(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "a.sst"), []byte("table"), 0o644, time.Unix(1700000000, 0))
	if err := os.Link(filepath.Join(src, "a.sst"), filepath.Join(src, "b.sst")); err != nil {
		t.Fatal(err)
	}
	api, _ := apiclient.New(srv.URL, srv.Token)
	res, err := backup.Run(context.Background(), api, src, backup.Options{Tags: manifest.Tags{"node": "ui"},
		Labels: manifest.Tags{"height": "4242"}, IsNotFound: apiclient.IsNotFound})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"tags":{"node":"ui2"},"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"},` +
		`{"path":"LOG","type":"file","mode":420,"mtime":"2024-01-01T00:00:00Z","size":0,"changed_during_read":true}]}`
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/backups", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+srv.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("commit with a changed file: %v %v", resp.Status, err)
	}
	resp.Body.Close()

	ctx := browser(t)
	text := func(js string) string { return evalString(t, ctx, js) }
	step(t, ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(".tagset .label")))
	if l := text(`document.querySelector(".tagset .label").textContent`); l != "height=4242" {
		t.Errorf("list label %q", l)
	}
	step(t, ctx, chromedp.Navigate(srv.URL+"/backups/"+strconv.FormatInt(res.ID, 10)), chromedp.WaitVisible(chromedp.CSS(".tree .ico.hardlink")))
	if l := text(`document.querySelector(".labels").textContent`); !strings.Contains(l, "height=4242") {
		t.Errorf("backup page labels %q", l)
	}
	if row := text(`document.querySelector(".tree .ico.hardlink").closest("tr").textContent`); !strings.Contains(row, "b.sst") || !strings.Contains(row, "⇔ a.sst") || !strings.Contains(row, "download") {
		t.Errorf("hard link row %q", row)
	}
	step(t, ctx, chromedp.Navigate(srv.URL+"/backups/"+strconv.FormatInt(res.ID+1, 10)), chromedp.WaitVisible(chromedp.CSS(".tree .warn")))
	if w := text(`document.querySelector(".tree .warn").closest("tr").textContent`); !strings.Contains(w, "LOG") || !strings.Contains(w, "changed while read") {
		t.Errorf("changed file row %q", w)
	}
}
