package frontend_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/manifest"
)

// Issue 17: a restore cart (files and folders picked across folders, as
// one tar or one restore command) and a file's history in the details.
func TestWebUICartAndHistory(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := t.TempDir()
	mt := time.Unix(1700000000, 0)
	ibtest.WriteFile(t, filepath.Join(src, "config", "app.toml"), []byte("v1"), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "data", "x it's.db"), []byte("data"), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "other"), []byte("o"), 0o644, mt)
	api, _ := apiclient.New(srv.URL, srv.Token)
	tags := manifest.Tags{"node": "cart"}
	for _, v := range []string{"v1", "v2"} {
		ibtest.WriteFile(t, filepath.Join(src, "config", "app.toml"), []byte(v), 0o644, mt.Add(time.Duration(len(v))*time.Second+time.Duration(v[1])))
		if _, err := backup.Run(context.Background(), api, src, backup.Options{Tags: tags, IsNotFound: apiclient.IsNotFound}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := browser(t)
	text := func(js string) string { return evalString(t, ctx, js) }

	step(t, ctx, chromedp.Navigate(srv.URL+"/backups/2"), chromedp.WaitVisible(chromedp.CSS(`input[aria-label="select config"]`)),
		chromedp.Click(chromedp.CSS(`input[aria-label="select config"]`)), chromedp.WaitVisible(chromedp.CSS(".cart")))
	step(t, ctx, chromedp.Navigate(srv.URL+"/backups/2?path=data"), chromedp.WaitVisible(chromedp.CSS(`input[aria-label="select x it's.db"]`)),
		chromedp.Click(chromedp.CSS(`input[aria-label="select x it's.db"]`)))
	time.Sleep(200 * time.Millisecond)
	if n := text(`document.querySelector(".cart strong").textContent`); n != "2 selected" {
		t.Fatalf("cart: %q", n)
	}
	href := text(`document.querySelector(".cart a.button").getAttribute("href")`)
	if href != "/api/v1/backups/2/archive.tar?path=config&path=data%2Fx+it%27s.db" {
		t.Errorf("cart tar link %q", href)
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch(document.querySelector(".cart a.button").href).then(r => r.status + " " + r.headers.get("Content-Disposition"))`, chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasPrefix(got, "200 ") || !strings.Contains(got, "selection") {
		t.Errorf("cart tar: %q %v", got, err)
	}
	cmd := text(`document.querySelector(".cart pre.cmd").textContent`)
	if !strings.HasPrefix(cmd, "ib backup restore 2 ./restored --server '"+srv.URL+"'") || !strings.Contains(cmd, ` --path 'config'`) ||
		!strings.Contains(cmd, ` --path 'data/x it'\''s.db'`) {
		t.Errorf("cart command %q", cmd)
	}

	// The details of config/app.toml list its two versions, the newest
	// changed.
	step(t, ctx, chromedp.Navigate(srv.URL+"/backups/2?path=config"), chromedp.WaitVisible(chromedp.CSS(".tree td.name a")),
		chromedp.Click(chromedp.CSS(".tree td.name a")), chromedp.WaitVisible(chromedp.CSS(".history tbody tr")))
	time.Sleep(200 * time.Millisecond)
	rows := text(`[...document.querySelectorAll(".history tbody tr")].map(r => r.textContent.replace(/\s+/g, " ").trim()).join("|")`)
	parts := strings.Split(rows, "|")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "#2") || !strings.Contains(parts[0], "changed") || !strings.Contains(parts[1], "first") {
		t.Errorf("history rows %q", rows)
	}
}

// Issue 17: the compare view between two backups of a tag set, reached
// from the list, shows the lines of `ib backup diff ID1 ID2`.
func TestWebUICompare(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := t.TempDir()
	mt := time.Unix(1700000000, 0)
	ibtest.WriteFile(t, filepath.Join(src, "a.txt"), []byte("alpha"), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "gone.txt"), []byte("gone"), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "old", "t.sst"), []byte("the table"), 0o644, mt)
	api, _ := apiclient.New(srv.URL, srv.Token)
	tags := manifest.Tags{"node": "cmp"}
	if _, err := backup.Run(context.Background(), api, src, backup.Options{Tags: tags, IsNotFound: apiclient.IsNotFound}); err != nil {
		t.Fatal(err)
	}
	ibtest.WriteFile(t, filepath.Join(src, "a.txt"), []byte("ALPHA!"), 0o644, mt.Add(time.Hour))
	os.Remove(filepath.Join(src, "gone.txt"))
	ibtest.WriteFile(t, filepath.Join(src, "new.txt"), []byte("new"), 0o644, mt)
	os.MkdirAll(filepath.Join(src, "moved"), 0o755)
	os.Rename(filepath.Join(src, "old", "t.sst"), filepath.Join(src, "moved", "t.sst"))
	if _, err := backup.Run(context.Background(), api, src, backup.Options{Tags: tags, IsNotFound: apiclient.IsNotFound}); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	text := func(js string) string { return evalString(t, ctx, js) }
	step(t, ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("a.compare")),
		chromedp.Click(chromedp.CSS("a.compare")), chromedp.WaitVisible(chromedp.CSS(".changes")))
	if loc := text("location.pathname + location.search"); loc != "/compare?a=1&b=2" {
		t.Errorf("compare link went to %q", loc)
	}
	lines := text(`[...document.querySelectorAll(".changes tr")].map(r => [...r.cells].map(c => c.textContent.trim()).join(" ")).join("|")`)
	for _, want := range []string{"M a.txt", "+ moved/", "R old/t.sst → moved/t.sst", "+ new.txt", "- gone.txt"} {
		if !strings.Contains("|"+lines+"|", "|"+want+"|") {
			t.Errorf("compare lacks %q: %s", want, lines)
		}
	}
	if sum := text(`document.querySelector(".summary").textContent`); !strings.Contains(sum, "1 renamed") || !strings.Contains(sum, "1 removed") {
		t.Errorf("summary %q", sum)
	}
}
