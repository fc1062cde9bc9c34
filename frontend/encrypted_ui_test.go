package frontend_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/chromedp/chromedp"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/ibtest"
	"ib/internal/ignore"
	"ib/internal/manifest"
)

// Issue 20: the tree marks an encrypted file with a lock and its own size;
// its details name the download NAME.age and say how to decrypt it with
// the age command line; a plain file has neither.
func TestWebUIEncrypted(t *testing.T) {
	srv := ibtest.StartServer(t)
	src := t.TempDir()
	mt := time.Unix(1_700_000_000, 0)
	ibtest.WriteFile(t, filepath.Join(src, "priv_validator_key.json"), []byte(strings.Repeat("s", 1234)), 0o600, mt)
	ibtest.WriteFile(t, filepath.Join(src, "config.toml"), []byte("moniker = 1\n"), 0o644, mt)
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	pattern := ignore.Excludes("--encrypt", []string{"priv_validator_key.json"})
	api, _ := apiclient.New(srv.URL, srv.Token)
	if _, err := backup.Run(context.Background(), api, src, backup.Options{Tags: manifest.Tags{"node": "cosmos"}, IsNotFound: apiclient.IsNotFound,
		Encrypt: &backup.Encrypt{Recipients: []age.Recipient{id.Recipient()}, Patterns: pattern}}); err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	text := func(js string) string { return evalString(t, ctx, js) }
	step(t, ctx, chromedp.Navigate(srv.URL+"/backups/1"), chromedp.WaitVisible(chromedp.Search(`//td[contains(., "priv_validator_key.json")]`)))
	rows := text(`[...document.querySelectorAll("table.tree tbody tr")].map(r => r.textContent).join("\n")`)
	var secretRow, plainRow string
	for _, r := range strings.Split(rows, "\n") {
		switch {
		case strings.Contains(r, "priv_validator_key.json"):
			secretRow = r
		case strings.Contains(r, "config.toml"):
			plainRow = r
		}
	}
	if n := text(`String(document.querySelectorAll("table.tree tbody .lock svg").length)`); n != "1" {
		t.Errorf("%s padlocks in the tree, want 1 (the encrypted file's)", n)
	}
	if !strings.Contains(secretRow, "encrypted") || !strings.Contains(secretRow, "1.2 KiB") {
		t.Errorf("encrypted file's row %q: want a lock and its own size (1234 bytes), not the age file's", secretRow)
	}
	if plainRow == "" || strings.Contains(plainRow, "encrypted") {
		t.Errorf("plain file's row %q", plainRow)
	}
	step(t, ctx, chromedp.Click(chromedp.Search(`//table[contains(@class,"tree")]//a[.="priv_validator_key.json"]`)),
		chromedp.WaitVisible(chromedp.CSS(".decrypt-hint")))
	details := text(`document.querySelector(".details-card").textContent`)
	for _, want := range []string{"age -d -i key.txt 'priv_validator_key.json.age' > 'priv_validator_key.json'", "1,234 bytes", "the server holds no key", "curl -fLo 'priv_validator_key.json.age'"} {
		if !strings.Contains(details, want) {
			t.Errorf("details lack %q:\n%s", want, details)
		}
	}
	shot(t, ctx, "encrypted")
	step(t, ctx, chromedp.Click(chromedp.Search(`//button[.="Close"]`)),
		chromedp.Click(chromedp.Search(`//table[contains(@class,"tree")]//a[.="config.toml"]`)),
		chromedp.WaitVisible(chromedp.CSS(".details-card")))
	if d := text(`document.querySelector(".details-card").textContent`); strings.Contains(d, "age -d") || strings.Contains(d, ".age") {
		t.Errorf("a plain file's details speak of age:\n%s", d)
	}
}
