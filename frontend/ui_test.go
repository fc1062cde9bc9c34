package frontend_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/dist"
	"ib/internal/ibtest"
	"ib/internal/manifest"
	"ib/internal/server"
)

var platforms = []string{"linux-amd64", "linux-arm64", "linux-386", "linux-arm", "darwin-amd64", "darwin-arm64",
	"windows-amd64.exe", "windows-arm64.exe", "windows-386.exe"}

// browser starts Debian's Chromium, headless, with a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is needed for the web UI tests (.ci/run installs Debian's chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil { // start the browser on a context without a deadline
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// step runs browser actions with a deadline of their own.
func step(t *testing.T, ctx context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatal(err)
	}
}

// evalString runs js in the page and returns its string value.
func evalString(t *testing.T, ctx context.Context, js string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// shot saves a screenshot when IB_SCREENSHOTS names a folder.
func shot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("IB_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
}

func TestWebUI(t *testing.T) {
	distDir := t.TempDir()
	for _, p := range platforms {
		os.WriteFile(filepath.Join(distDir, "ib-"+p), []byte("binary for "+p), 0o755)
	}
	srv := ibtest.StartServer(t, func(o *server.Options) { o.DistDir = distDir })
	src := t.TempDir()
	mt := time.Unix(1700000000, 0)
	ibtest.WriteFile(t, filepath.Join(src, "chaindata", "000123.ldb"), ibtest.RandomBytes(300_000), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "chaindata", "CURRENT"), []byte("MANIFEST-000002\n"), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "config", "node.json"), []byte(`{"network":"mainnet"}`), 0o600, mt)
	ibtest.WriteFile(t, filepath.Join(src, "peers.dat"), ibtest.RandomBytes(5000), 0o644, mt)
	api, _ := apiclient.New(srv.URL, srv.Token)
	if _, err := backup.Run(context.Background(), api, src, backup.Options{
		Tags: manifest.Tags{"node": "tezos", "network": "mainnet"}, IsNotFound: apiclient.IsNotFound}); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	text := func(sel string) string {
		step(t, ctx, chromedp.WaitVisible(chromedp.CSS(sel)))
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return s
	}
	attr := func(sel, name string) string {
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		return v.Value
	}

	t.Run("home lists backups by tag set", func(t *testing.T) {
		step(t, ctx, chromedp.Navigate(srv.URL+"/"))
		head := text(".tagset .head")
		if !strings.Contains(head, "network=mainnet") || !strings.Contains(head, "node=tezos") {
			t.Fatalf("home page tag set: %q", head)
		}
		if rows := text(".tagset tbody"); !strings.Contains(rows, "#1") {
			t.Fatalf("home page rows: %q", rows)
		}
		shot(t, ctx, "home")
	})

	t.Run("backup page shows folders, files and the tar link", func(t *testing.T) {
		step(t, ctx, chromedp.Navigate(srv.URL+"/backups/1"),
			chromedp.WaitVisible(chromedp.CSS("table.tree tbody tr")))
		href := attr("a.button.primary", "href")
		tree := text("table.tree tbody")
		for _, want := range []string{"chaindata/", "config/", "peers.dat"} {
			if !strings.Contains(tree, want) {
				t.Errorf("backup page lacks %q: %q", want, tree)
			}
		}
		if href != "/api/v1/backups/1/archive.tar" {
			t.Errorf("tar link %q", href)
		}
		if cmd := text("pre.cmd"); !strings.Contains(cmd, "ib backup restore 1") {
			t.Errorf("restore command %q", cmd)
		}
		shot(t, ctx, "backup")
	})

	t.Run("a sub-folder lists its files", func(t *testing.T) {
		step(t, ctx, chromedp.Click(chromedp.Search(`//table[contains(@class,"tree")]//a[.="chaindata/"]`)),
			chromedp.WaitVisible(chromedp.Search(`//td[contains(., "000123.ldb")]`)))
		url, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(url, "/backups/1?path=chaindata") {
			t.Errorf("sub-folder URL %q", url)
		}
		tree := text("table.tree tbody")
		if !strings.Contains(tree, "CURRENT") || strings.Contains(tree, "peers.dat") {
			t.Errorf("sub-folder lists %q", tree)
		}
		// a deep link to the same view works on its own
		step(t, ctx, chromedp.Navigate(srv.URL+"/backups/1?path=config"),
			chromedp.WaitVisible(chromedp.Search(`//td[contains(., "node.json")]`)))
		shot(t, ctx, "subfolder")
	})

	t.Run("search finds a file by part of its name", func(t *testing.T) {
		step(t, ctx, chromedp.Navigate(srv.URL+"/"),
			chromedp.WaitVisible(chromedp.CSS(`input[name="q"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="q"]`), "0123.l\n"),
			chromedp.WaitVisible(chromedp.CSS(`table.hits tbody tr`)))
		if hits := text("table.hits tbody"); !strings.Contains(hits, "chaindata/000123.ldb") {
			t.Fatalf("search hits: %q", hits)
		}
		shot(t, ctx, "search")
	})

	t.Run("downloads lists every platform and downloads a binary", func(t *testing.T) {
		step(t, ctx, chromedp.Navigate(srv.URL+"/downloads"), chromedp.WaitVisible(chromedp.CSS("table.downloads tbody tr")))
		list := text("table.downloads tbody")
		for _, p := range append(platforms, strings.TrimPrefix(dist.SelfName(), "ib-")) {
			if !strings.Contains(list, "ib-"+p) {
				t.Errorf("downloads page lacks ib-%s", p)
			}
		}
		href := attr(`a[href="/downloads/`+dist.SelfName()+`"]`, "href")
		resp, err := http.Get(srv.URL + href)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want, _ := os.ReadFile(filepath.Join(distDir, dist.SelfName()))
		if len(want) == 0 {
			self, _ := os.Executable()
			want, _ = os.ReadFile(self)
		}
		if resp.StatusCode != 200 || !bytes.Equal(got, want) {
			t.Fatalf("download of %s: %d, %d bytes, want %d", href, resp.StatusCode, len(got), len(want))
		}
		shot(t, ctx, "downloads")
	})

	t.Run("stats", func(t *testing.T) {
		step(t, ctx, chromedp.Navigate(srv.URL+"/stats"), chromedp.WaitVisible(chromedp.CSS(".stats")))
		if s := text(".stats"); !strings.Contains(s, "Backups") || !strings.Contains(s, "Blocks") {
			t.Fatalf("stats page: %q", s)
		}
		shot(t, ctx, "stats")
	})
}
