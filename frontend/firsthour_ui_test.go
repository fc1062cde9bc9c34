package frontend_test

import (
	"context"
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

// Issue 15: tag values with spaces show quoted and filter exactly; the
// filter is kept in the URL; a missing backup is a page with a way back.
func TestWebUIFilterAndNotFound(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	api, _ := apiclient.New(srv.URL, srv.Token)
	for _, tags := range []manifest.Tags{{"node": "cosmos hub"}, {"node": "cosmos"}} {
		if _, err := backup.Run(context.Background(), api, src, backup.Options{Tags: tags, IsNotFound: apiclient.IsNotFound}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := browser(t)
	text := func(js string) string { return evalString(t, ctx, js) }
	step(t, ctx, chromedp.Navigate(srv.URL+`/?tags=node%3D%22cosmos%20hub%22`), chromedp.WaitVisible(chromedp.CSS(".tagset")))
	if heads := text(`[...document.querySelectorAll(".tagset .head")].map(e => e.textContent).join("|")`); !strings.Contains(heads, `node="cosmos hub"`) || strings.Contains(heads, "node=cosmos1") || strings.Count(heads, "node=") != 1 {
		t.Errorf(`filter node="cosmos hub" shows %q`, heads)
	}
	step(t, ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`input[aria-label="filter"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[aria-label="filter"]`), "node=cosmos"))
	time.Sleep(200 * time.Millisecond)
	if heads := text(`[...document.querySelectorAll(".tagset .head")].map(e => e.textContent).join("|")`); strings.Contains(heads, "hub") || !strings.Contains(heads, "node=cosmos") {
		t.Errorf("filter node=cosmos shows %q", heads)
	}
	if loc := text("location.search"); loc != "?tags=node%3Dcosmos" {
		t.Errorf("filter not in the URL: %q", loc)
	}
	step(t, ctx, chromedp.Navigate(srv.URL+"/backups/99"), chromedp.WaitVisible(chromedp.CSS(".not-found a")))
	if href := text(`document.querySelector(".not-found a").getAttribute("href")`); href != "/" {
		t.Errorf("not-found page link %q", href)
	}
}

// Issue 15: search limited to a tag set, one row per path across backups.
func TestWebUISearchByTagSet(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "config", "app.toml"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	api, _ := apiclient.New(srv.URL, srv.Token)
	for _, node := range []string{"a", "a", "b"} {
		if _, err := backup.Run(context.Background(), api, src, backup.Options{Tags: manifest.Tags{"node": node}, IsNotFound: apiclient.IsNotFound}); err != nil {
			t.Fatal(err)
		}
	}
	ctx := browser(t)
	text := func(js string) string { return evalString(t, ctx, js) }
	step(t, ctx, chromedp.Navigate(srv.URL+"/search?q=app.toml"), chromedp.WaitVisible(chromedp.CSS("table.hits tbody tr")))
	if n := text(`String(document.querySelectorAll("table.hits tbody tr").length)`); n != "1" {
		t.Errorf("one path in three backups: %s rows", n)
	}
	if row := text(`document.querySelector("table.hits tbody").textContent`); !strings.Contains(row, "#3") || !strings.Contains(row, "#2") || !strings.Contains(row, "#1") {
		t.Errorf("the row names the backups: %q", row)
	}
	step(t, ctx, chromedp.Navigate(srv.URL+"/search?q=app.toml&tags=node%3Da"), chromedp.WaitVisible(chromedp.CSS("table.hits tbody tr")))
	if row := text(`document.querySelector("table.hits tbody").textContent`); strings.Contains(row, "#3") || !strings.Contains(row, "#2") || !strings.Contains(row, "node=a") {
		t.Errorf("search in node=a: %q", row)
	}
}
