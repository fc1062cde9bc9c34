//go:build unix

package cmd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"ib/internal/block"
	"ib/internal/ibtest"
)

// TestRestoreRefusesEncrypted: a backup whose manifest marks a file as an
// age file (as an encrypting client will write it) is not restored by a
// client that cannot decrypt: the restore fails before DEST is touched,
// naming the file, instead of writing ciphertext under its name; the
// server keeps the encryption in the manifest it serves.
func TestRestoreRefusesEncrypted(t *testing.T) {
	srv := ibtest.StartServer(t)
	ctx := context.Background()
	sealed := []byte("age-encryption.org/v1\n-> X25519 not really\n---\nciphertext")
	c := block.Sum(sealed).String()
	wire, _ := block.Encode(sealed, block.Level{})
	if err := srv.Store.PutBlock(ctx, c, bytes.NewReader(wire)); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"tags":{"node":"enc"},"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"},
{"path":"priv_validator_key.json","type":"file","mode":384,"mtime":"2024-01-01T00:00:00Z","size":%d,"blocks":[{"cid":%q,"size":%d}],"encryption":"age","plain_size":345}]}`,
		len(sealed), c, len(sealed))
	res, err := srv.Store.Commit(ctx, strings.NewReader(body))
	if err != nil || res.ID == 0 {
		t.Fatalf("commit: %+v %v", res, err)
	}
	resp, err := http.Get(fmt.Sprintf("%s/api/v1/backups/%d/manifest", srv.URL, res.ID))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(m), `"encryption":"age"`) || !strings.Contains(string(m), `"plain_size":345`) {
		t.Fatalf("the served manifest lost the encryption:\n%s", m)
	}
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL)
	dst := filepath.Join(t.TempDir(), "dst")
	_, errs, code := ib(t, conf, "backup", "restore", "latest", "--node=enc", dst)
	if code == 0 || !strings.Contains(errs, "encrypted files in the backup") || !strings.Contains(errs, "priv_validator_key.json") {
		t.Fatalf("restore of an encrypted file: exit %d\n%s", code, errs)
	}
	if entries, err := os.ReadDir(dst); err == nil && len(entries) > 0 {
		t.Fatalf("the refused restore wrote %v", entries)
	}
}
