//go:build unix

package cmd_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

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
	if code == 0 || !strings.Contains(errs, "encrypted files in the backup") || !strings.Contains(errs, "priv_validator_key.json") || !strings.Contains(errs, "--identity") {
		t.Fatalf("restore of an encrypted file: exit %d\n%s", code, errs)
	}
	if entries, err := os.ReadDir(dst); err == nil && len(entries) > 0 {
		t.Fatalf("the refused restore wrote %v", entries)
	}
}

// TestEncryptedBackup: `backup create --encrypt keys/ --encrypt-to R`
// stores the files under keys/ as age files: GET /files/keys/a.json is
// ciphertext that the age command line decrypts to the original bytes,
// the manifest says encryption age and the plain size, and the plaintext
// is in no stored block; the other files stay plain and deduplicated; a
// second backup with nothing changed encrypts and uploads nothing.
func TestEncryptedBackup(t *testing.T) {
	ageBin, err := exec.LookPath("age")
	if err != nil {
		t.Fatal("the age command line is not installed (apt-get install age; scripts/test does)")
	}
	srv := ibtest.StartServer(t)
	conf := t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	key := filepath.Join(t.TempDir(), "key.txt")
	recipient := strings.TrimSpace(mustIB(t, conf, "key", "generate", "--out", key))
	src := t.TempDir()
	mt := time.Unix(1_700_000_000, 0)
	secret := []byte(`{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"VERY-SECRET-VALIDATOR-KEY-0123456789"}}`)
	ibtest.WriteFile(t, filepath.Join(src, "keys", "a.json"), secret, 0o600, mt)
	ibtest.WriteFile(t, filepath.Join(src, "keys", "sub", "b.bin"), ibtest.RandomBytes(300_000), 0o600, mt)
	ibtest.WriteFile(t, filepath.Join(src, "config.toml"), []byte("moniker = \"node\"\n"), 0o644, mt)
	if err := os.Link(filepath.Join(src, "keys", "a.json"), filepath.Join(src, "keys", "link.json")); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := ib(t, conf, "backup", "create", "--node=enc", "--encrypt", "keys/", src); code != 2 || !strings.Contains(errs, "--encrypt-to") {
		t.Fatalf("--encrypt without a recipient: exit %d, %s", code, errs)
	}
	out := mustIB(t, conf, "backup", "create", "-q", "--json", "--node=enc", "--encrypt", "keys/", "--encrypt-to", recipient, src)
	var first struct{ ID int64 }
	if err := json.Unmarshal([]byte(out), &first); err != nil || first.ID == 0 {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	var disposition string
	get := func(path string) []byte {
		resp, err := http.Get(fmt.Sprintf("%s/api/v1/backups/%d/%s", srv.URL, first.ID, path))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		disposition = resp.Header.Get("Content-Disposition")
		return b
	}
	ageDecrypt := func(sealed []byte) []byte {
		t.Helper()
		cmd := exec.Command(ageBin, "-d", "-i", key)
		cmd.Stdin = bytes.NewReader(sealed)
		plain, err := cmd.Output()
		if err != nil {
			t.Fatalf("age -d: %v", err)
		}
		return plain
	}
	sealed := get("files/keys/a.json")
	if !bytes.HasPrefix(sealed, []byte("age-encryption.org/v1")) || bytes.Contains(sealed, []byte("VERY-SECRET")) {
		t.Fatalf("the stored keys/a.json is not an age file:\n%.200q", sealed)
	}
	if !strings.HasSuffix(disposition, "a.json.age") {
		t.Fatalf("Content-Disposition %q, want the .age suffix", disposition)
	}
	if plain := ageDecrypt(sealed); !bytes.Equal(plain, secret) {
		t.Fatalf("age -d of the downloaded file: %q", plain)
	}
	// The tar archive: encrypted files as NAME.age (and a hard link to one
	// links to NAME.age), the rest as they are.
	tarred := map[string][]byte{}
	links := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(get("archive.tar")))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		tarred[h.Name], links[h.Name] = b, h.Linkname
	}
	if plain := ageDecrypt(tarred["keys/a.json.age"]); !bytes.Equal(plain, secret) {
		t.Fatalf("keys/a.json.age from the tar archive decrypts to %q (names %v)", plain, keysOf(tarred))
	}
	if string(tarred["config.toml"]) != "moniker = \"node\"\n" || links["keys/link.json.age"] != "keys/a.json.age" {
		t.Fatalf("tar archive: names %v, keys/link.json.age -> %q", keysOf(tarred), links["keys/link.json.age"])
	}
	if _, ok := tarred["keys/a.json"]; ok {
		t.Fatal("the tar archive holds keys/a.json without the .age suffix")
	}
	if got := get("files/config.toml"); string(got) != "moniker = \"node\"\n" {
		t.Fatalf("a file not chosen was stored as %q", got)
	}
	manifest := string(get("manifest"))
	for _, want := range []string{`"path":"keys/a.json"`, `"encryption":"age"`, fmt.Sprintf(`"plain_size":%d`, len(secret)), `"plain_size":300000`} {
		if !strings.Contains(manifest, want) {
			t.Fatalf("manifest lacks %s:\n%s", want, manifest)
		}
	}
	if strings.Count(manifest, `"encryption"`) != 3 {
		t.Fatalf("want exactly the three files under keys/ encrypted:\n%s", manifest)
	}
	// No stored byte holds the secret: the SQLite file (inline blocks)
	// and the block directory.
	filepath.WalkDir(srv.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte("VERY-SECRET")) {
				t.Errorf("%s holds the plaintext", p)
			}
		}
		return nil
	})
	out = mustIB(t, conf, "backup", "create", "-q", "--json", "--node=enc", "--encrypt", "keys/", "--encrypt-to", recipient, src)
	var second struct {
		ID            int64
		UploadedBytes int64 `json:"uploaded_bytes"`
		ReusedFiles   int64 `json:"reused_files"`
	}
	if err := json.Unmarshal([]byte(out), &second); err != nil || second.UploadedBytes != 0 || second.ReusedFiles != 3 {
		t.Fatalf("second backup, nothing changed: %+v (%v)\n%s", second, err, out)
	}
	// Without an identity: refused before DEST is written, naming them.
	dst := filepath.Join(t.TempDir(), "dst")
	_, errs, code := ib(t, conf, "backup", "restore", "latest", "--node=enc", dst)
	if code == 0 || !strings.Contains(errs, "keys/a.json") || !strings.Contains(errs, "--identity") {
		t.Fatalf("restore without an identity: exit %d\n%s", code, errs)
	}
	if entries, _ := os.ReadDir(dst); len(entries) > 0 {
		t.Fatalf("the refused restore wrote %v", entries)
	}
	// A wrong identity: refused before writing, saying why.
	other := filepath.Join(t.TempDir(), "other.txt")
	mustIB(t, conf, "key", "generate", "--out", other)
	_, errs, code = ib(t, conf, "backup", "restore", "latest", "--node=enc", "--identity", other, dst)
	if code == 0 || !strings.Contains(errs, "none of the identities") {
		t.Fatalf("restore with a wrong identity: exit %d\n%s", code, errs)
	}
	if entries, _ := os.ReadDir(dst); len(entries) > 0 {
		t.Fatalf("the restore with a wrong identity wrote %v", entries)
	}
	// With it (and another that does not fit): byte-exact, modes and times.
	mustIB(t, conf, "backup", "restore", "latest", "--node=enc", "--identity", other, "--identity", key, dst, "-q")
	ibtest.TreesEqual(t, src, dst, nil)
	// --skip-encrypted restores the rest.
	rest := filepath.Join(t.TempDir(), "rest")
	mustIB(t, conf, "backup", "restore", "latest", "--node=enc", "--skip-encrypted", rest, "-q")
	if b, _ := os.ReadFile(filepath.Join(rest, "config.toml")); string(b) != "moniker = \"node\"\n" {
		t.Fatalf("--skip-encrypted: config.toml %q", b)
	}
	for _, name := range []string{"a.json", "link.json"} {
		if _, err := os.Stat(filepath.Join(rest, "keys", name)); !os.IsNotExist(err) {
			t.Fatalf("--skip-encrypted restored keys/%s (%v)", name, err)
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
