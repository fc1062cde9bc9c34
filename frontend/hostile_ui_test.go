package frontend_test

import (
	"context"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/manifest"
	"ib/internal/server"
)

// Finding 4: commands to copy quote every argument, appear only for paths
// the backup has, and names with control or bidi characters show escaped.
func TestWebUIHostileNames(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := t.TempDir()
	mt := time.Unix(1700000000, 0)
	folder := "a'b $(touch x)"
	ibtest.WriteFile(t, filepath.Join(src, folder, "evil\u202etxt.exe"), []byte("x"), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, folder, "line\nbreak"), []byte("y"), 0o644, mt)
	api, _ := apiclient.New(srv.URL, srv.Token)
	if _, err := backup.Run(context.Background(), api, src, backup.Options{Tags: manifest.Tags{"node": "x"}, IsNotFound: apiclient.IsNotFound}); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	evalInt := func(js string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}

	// a link whose ?path= is not in the backup gets no command
	step(t, ctx, chromedp.Navigate(srv.URL+"/backups/1?path=nothing%20%24(touch%20%2Ftmp%2Fpwned)"),
		chromedp.WaitVisible(chromedp.CSS(".error")))
	if cmds := evalInt(`document.querySelectorAll("pre.cmd").length`); cmds != 0 {
		t.Errorf("a path the backup lacks shows %d commands to copy", cmds)
	}

	// a real folder with quotes and $( ) in its name: the command, run by a
	// shell (printing its arguments instead of running ib), gives it whole
	step(t, ctx, chromedp.Navigate(srv.URL+"/backups/1?path="+url.QueryEscape(folder)),
		chromedp.WaitVisible(chromedp.CSS("pre.cmd")), chromedp.WaitVisible(chromedp.CSS("table.tree tbody tr")))
	cmd := evalString(t, ctx, `document.querySelector("pre.cmd").textContent`)
	args, err := exec.Command("sh", "-c", "set -- "+strings.TrimPrefix(cmd, "ib ")+`; printf '%s\n' "$@"`).Output()
	if err != nil {
		t.Fatalf("sh on %q: %v", cmd, err)
	}
	want := "backup\nrestore\n1\n./restored\n--server\n" + srv.URL + "\n--path\n" + folder + "\n"
	if string(args) != want {
		t.Errorf("the shell reads the command %q as %q, want %q", cmd, args, want)
	}
	tree := evalString(t, ctx, `document.querySelector("table.tree tbody").textContent`)
	if strings.ContainsAny(tree, "\u202e\n") || !strings.Contains(tree, `evil\u{202e}txt.exe`) || !strings.Contains(tree, `line\u{000a}break`) {
		t.Errorf("names with control or bidi characters must show escaped: %q", tree)
	}
}

// Finding 11b: the UI of a private server asks for a token once and keeps
// it in the tab's session storage.
func TestWebUIPrivateServer(t *testing.T) {
	srv := ibtest.StartServer(t, func(o *server.Options) { o.Private = true })
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "f"), []byte("x"), 0o644, time.Unix(1700000000, 0))
	api, _ := apiclient.New(srv.URL, srv.Token)
	if _, err := backup.Run(context.Background(), api, src, backup.Options{Tags: manifest.Tags{"node": "private"}, IsNotFound: apiclient.IsNotFound}); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	step(t, ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.CSS("form.token-form")),
		chromedp.SendKeys(chromedp.CSS(`form.token-form input[name="token"]`), srv.Token+"\n"),
		chromedp.WaitVisible(chromedp.CSS(".tagset")))
	stored, err := chromedp.Run(ctx, chromedp.Evaluate[string](`sessionStorage.getItem("ib.token")`))
	if err != nil {
		t.Fatal(err)
	}
	where, _ := chromedp.Run(ctx, chromedp.Location())
	if stored != srv.Token || strings.Contains(where, srv.Token) {
		t.Errorf("token in session storage %q, location %q", stored, where)
	}
	if head, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(".tagset .head"))); err != nil || !strings.Contains(head, "node=private") {
		t.Errorf("backups after the token: %q %v", head, err)
	}
}
