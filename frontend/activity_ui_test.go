package frontend_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
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

// Issue 18: the Activity tab renders a running job's live progress (from
// the server's event stream), keeps it across a page reload, and moves the
// job to the history when it ends; the backups page shows each tag set's
// freshness.
func TestWebUIActivity(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), bytes.Repeat([]byte("x"), 200), 0o644, time.Now()) // a block: over block.InlineMax
	api, _ := apiclient.New(srv.URL, srv.Token)
	if _, err := backup.Run(context.Background(), api, src, backup.Options{Tags: manifest.Tags{"node": "fresh"}, IsNotFound: apiclient.IsNotFound}); err != nil {
		t.Fatal(err)
	}
	post := func(path, body string) {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %v %v", path, resp.Status, err)
		}
		resp.Body.Close()
	}
	// job 1 was the backup above; job 2 is a backup in progress
	post("/jobs", `{"kind":"backup","tags":{"node":"tezos"}}`)
	progress := func(n int64) {
		post("/jobs/2/progress", fmt.Sprintf(`{"phase":"reading and uploading","files":%d,"bytes":%d,"total_bytes":%d,"bytes_uploaded":%d}`, n, n<<20, 400<<20, n<<19))
	}
	progress(100)

	ctx := browser(t)
	text := func(js string) string { return evalString(t, ctx, js) }
	step(t, ctx, chromedp.Navigate(srv.URL+"/activity"), chromedp.WaitVisible(chromedp.CSS(`.job.running[data-job="2"]`)))
	line := func() string {
		return text(`document.querySelector('.job.running[data-job="2"] .progress-line').textContent`)
	}
	if l := line(); !strings.Contains(l, "reading and uploading") || !strings.Contains(l, "100.0 MiB of 400.0 MiB") {
		t.Errorf("progress line %q", l)
	}
	if v := text(`String(document.querySelector('.job.running[data-job="2"] progress').value)`); v != fmt.Sprint(100<<20) {
		t.Errorf("progress bar at %s", v)
	}
	// live: more progress arrives over the stream, with a rate and an ETA
	time.Sleep(1100 * time.Millisecond)
	progress(200)
	waitText(t, ctx, `document.querySelector('.job.running[data-job="2"] .progress-line').textContent`, "200.0 MiB of 400.0 MiB")
	if l := line(); !strings.Contains(l, "/s") || !strings.Contains(l, "left") {
		t.Errorf("no rate or ETA in %q", l)
	}
	// a reload picks the running job up again
	step(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`.job.running[data-job="2"]`)))
	if l := line(); !strings.Contains(l, "200.0 MiB") {
		t.Errorf("after a reload: %q", l)
	}
	// it ends: gone from Running, in the history
	post("/jobs/2/end", `{"status":"failed","error":"pre hook: exit status 7"}`)
	waitText(t, ctx, `document.querySelector('.running-none') ? "none" : ""`, "none")
	waitText(t, ctx, `document.querySelector("table.jobs tbody tr").textContent`, "failed")
	if row := text(`document.querySelector("table.jobs tbody tr").textContent`); !strings.Contains(row, "failed") || !strings.Contains(row, "node=tezos") {
		t.Errorf("history row %q", row)
	}
	// its log opens on a click
	step(t, ctx, chromedp.Click(chromedp.CSS(`table.jobs tbody tr`)), chromedp.WaitVisible(chromedp.CSS(".joblog")))
	if l := text(`document.querySelector(".joblog").textContent`); !strings.Contains(l, "pre hook: exit status 7") {
		t.Errorf("job log %q", l)
	}
	// the backups page: a fresh tag set
	step(t, ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS(".tagset .fresh")))
	if f := text(`document.querySelector(".tagset .fresh").className + " " + document.querySelector(".tagset .fresh").textContent`); !strings.Contains(f, "fresh fresh") || !strings.Contains(f, "newest") {
		t.Errorf("freshness %q", f)
	}
	// and what each backup added (filled in just after its commit)
	if a := text(`document.querySelector(".tagset td.added").textContent`); a != "200 B" {
		t.Errorf("added column %q, want 200 B", a)
	}
}

// waitText waits until the JavaScript expression's value contains want. An
// expression that throws (its element not rendered yet) counts as "" and is
// tried again.
func waitText(t *testing.T, ctx context.Context, js, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	guarded := "(() => { try { return String(" + js + ") } catch (e) { return '' } })()"
	var got string
	for time.Now().Before(deadline) {
		got = evalString(t, ctx, guarded)
		if strings.Contains(got, want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("waited for %q in %q", want, got)
}
