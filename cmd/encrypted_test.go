//go:build unix

package cmd_test

import (
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
	if err := srv.Store.PutBlock(ctx, c, bytes.NewReader(wire), int64(len(wire))); err != nil {
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
	srv, conf := ibtest.StartServer(t), t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	key, recipient := newIdentity(t, conf)
	src := t.TempDir()
	mt := time.Unix(1_700_000_000, 0)
	secret := []byte(`{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"VERY-SECRET-VALIDATOR-KEY-0123456789"}}`)
	ibtest.WriteFile(t, filepath.Join(src, "keys", "a.json"), secret, 0o600, mt)
	ibtest.WriteFile(t, filepath.Join(src, "keys", "sub", "b.bin"), ibtest.RandomBytes(6<<20), 0o600, mt) // several blocks
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
	tarred, links := untar(t, get("archive.tar"))
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
	for _, want := range []string{`"path":"keys/a.json"`, `"encryption":"age"`, fmt.Sprintf(`"plain_size":%d`, len(secret)), fmt.Sprintf(`"plain_size":%d`, 6<<20)} {
		if !strings.Contains(manifest, want) {
			t.Fatalf("manifest lacks %s:\n%s", want, manifest)
		}
	}
	if strings.Count(manifest, `"encryption"`) != 3 {
		t.Fatalf("want exactly the three files under keys/ encrypted:\n%s", manifest)
	}
	var m struct {
		Entries []struct {
			Path   string
			Blocks []struct{ CID string }
		}
	}
	if err := json.Unmarshal([]byte(manifest), &m); err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Entries {
		if e.Path == "keys/sub/b.bin" && len(e.Blocks) < 2 {
			t.Fatalf("the 6 MiB age file of keys/sub/b.bin is %d block(s), want it cut into several", len(e.Blocks))
		}
	}
	want, _ := os.ReadFile(filepath.Join(src, "keys", "sub", "b.bin"))
	if got := ageDecrypt(get("files/keys/sub/b.bin")); !bytes.Equal(got, want) {
		t.Fatalf("GET /files of a sealed file of several blocks decrypts to %d other bytes", len(got))
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
	other, _ := newIdentity(t, conf)
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

// TestEncryptionConfigured: a [[backup]] table's preset and encrypt_to
// encrypt the preset's secrets instead of leaving them out; the config's
// identity decrypts them for restore, cat and diff --content; two
// recipients each decrypt; verify --deep needs no identity; a passphrase
// recipient restores with --passphrase.
func TestEncryptionConfigured(t *testing.T) {
	srv, conf := ibtest.StartServer(t), t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	key1, r1 := newIdentity(t, conf)
	key2, r2 := newIdentity(t, conf)
	src := t.TempDir()
	mt := time.Unix(1_700_000_000, 0)
	secret := []byte(`{"priv_key":{"value":"VALIDATOR-SECRET"}}`)
	ibtest.WriteFile(t, filepath.Join(src, "config", "priv_validator_key.json"), secret, 0o600, mt)
	ibtest.WriteFile(t, filepath.Join(src, "config", "config.toml"), []byte("moniker = 1\n"), 0o644, mt)
	ibtest.WriteFile(t, filepath.Join(src, "data", "blockstore.db"), ibtest.RandomBytes(100_000), 0o644, mt)

	// The preset alone leaves the key out.
	plain := createJSON(t, mustIB(t, conf, "backup", "create", "-q", "--json", "--node=plain", "--preset=cosmos", src))
	if plain.Files != 2 {
		t.Fatalf("--preset cosmos without a key stored %d files, want 2 (no key)", plain.Files)
	}
	cfg, _ := os.ReadFile(filepath.Join(conf, "config.toml"))
	cfg = append(fmt.Appendf(nil, "identity = %q\n", key1), cfg...) // a top-level key: before any table
	cfg = append(cfg, fmt.Appendf(nil, `
[[backup]]
tags = { node = "val" }
preset = "cosmos"
encrypt_to = [%q, %q]
`, r1, r2)...)
	os.WriteFile(filepath.Join(conf, "config.toml"), cfg, 0o600)
	res := createJSON(t, mustIB(t, conf, "backup", "create", "-q", "--json", "--node=val", src))
	if res.Files != 3 {
		t.Fatalf("preset + encrypt_to stored %d files, want 3 (the key encrypted)", res.Files)
	}
	m := mustIB(t, conf, "backup", "cat", fmt.Sprint(res.ID), "config/priv_validator_key.json", "--raw")
	if !strings.HasPrefix(m, "age-encryption.org/v1") || strings.Contains(m, "VALIDATOR-SECRET") {
		t.Fatalf("cat --raw of the key: %.100q", m)
	}
	// cat: the config's identity decrypts; --identity with the second key too.
	if got := mustIB(t, conf, "backup", "cat", "latest", "--node=val", "config/priv_validator_key.json"); got != string(secret) {
		t.Fatalf("cat with the config's identity: %q", got)
	}
	if got := mustIB(t, conf, "backup", "cat", "latest", "--node=val", "config/priv_validator_key.json", "--identity", key2); got != string(secret) {
		t.Fatalf("cat with the second recipient's identity: %q", got)
	}
	// verify --deep reads every block, encrypted or not, with no identity.
	if out := mustIB(t, conf, "backup", "verify", "latest", "--node=val", "--deep", "--json"); !strings.Contains(out, `"files": 3`) {
		t.Fatalf("verify --deep: %s", out)
	}
	// diff --content: an unchanged key is the same; a key rewritten with
	// the same size and mtime is found by decrypting the stored one.
	if out, errs, code := ib(t, conf, "backup", "diff", "latest", "--node=val", "--content", src); code != 0 {
		t.Fatalf("diff --content of an unchanged tree: exit %d\n%s%s", code, out, errs)
	}
	forged := bytes.ReplaceAll(secret, []byte("SECRET"), []byte("FORGED"))
	ibtest.WriteFile(t, filepath.Join(src, "config", "priv_validator_key.json"), forged, 0o600, mt)
	if out, _, code := ib(t, conf, "backup", "diff", "latest", "--node=val", "--content", src); code != 1 || !strings.Contains(out, "M config/priv_validator_key.json") {
		t.Fatalf("diff --content of a rewritten key: exit %d\n%s", code, out)
	}
	if out, _, code := ib(t, conf, "backup", "diff", "latest", "--node=val", "--content", "--identity", key2, src); code != 1 || !strings.Contains(out, "M config/priv_validator_key.json") {
		t.Fatalf("diff --content --identity two.txt: exit %d\n%s", code, out)
	}
	// Without an identity it says what it could not compare.
	bare := t.TempDir()
	mustIB(t, bare, "login", srv.URL)
	if _, errs, code := ib(t, bare, "backup", "diff", "latest", "--node=val", "--content", src); code != 0 || !strings.Contains(errs, "1 encrypted file compared by size and mtime alone") {
		t.Fatalf("diff --content without an identity: exit %d %s", code, errs)
	}
	// restore with the config's identity: byte-exact (the key as backed up).
	ibtest.WriteFile(t, filepath.Join(src, "config", "priv_validator_key.json"), secret, 0o600, mt)
	dst := filepath.Join(t.TempDir(), "dst")
	mustIB(t, conf, "backup", "restore", "latest", "--node=val", dst, "-q")
	ibtest.TreesEqual(t, src, dst, nil)

	// A passphrase recipient: --encrypt-passphrase alone, and --passphrase
	// to restore; a wrong passphrase is refused before writing.
	t.Setenv("IB_ENCRYPT_PASSPHRASE", "correct horse battery staple")
	if _, errs, code := ib(t, conf, "backup", "create", "-q", "--node=pass", "--encrypt", "config/priv_validator_key.json", "--encrypt-passphrase", "--encrypt-to", r1, src); code != 2 || !strings.Contains(errs, "alone") {
		t.Fatalf("--encrypt-passphrase with --encrypt-to: exit %d %s", code, errs)
	}
	mustIB(t, conf, "backup", "create", "-q", "--node=pass", "--encrypt", "config/priv_validator_key.json", "--encrypt-passphrase", src)
	t.Setenv("IB_ENCRYPT_PASSPHRASE", "wrong")
	wrong := filepath.Join(t.TempDir(), "wrong")
	if _, errs, code := ib(t, conf, "backup", "restore", "latest", "--node=pass", "--passphrase", wrong, "-q"); code == 0 || !strings.Contains(errs, "priv_validator_key.json") {
		t.Fatalf("restore with a wrong passphrase: exit %d %s", code, errs)
	}
	if entries, _ := os.ReadDir(wrong); len(entries) > 0 {
		t.Fatalf("a restore with a wrong passphrase wrote %v", entries)
	}
	t.Setenv("IB_ENCRYPT_PASSPHRASE", "correct horse battery staple")
	pdst := filepath.Join(t.TempDir(), "pass")
	mustIB(t, conf, "backup", "restore", "latest", "--node=pass", "--passphrase", pdst, "-q")
	if got, _ := os.ReadFile(filepath.Join(pdst, "config", "priv_validator_key.json")); !bytes.Equal(got, secret) {
		t.Fatalf("restored with the passphrase: %q", got)
	}
}

// TestEncryptedScrubAndGC: the server checks, scrubs and collects an
// encrypted file's blocks as any other. A rotten block of an unchanged
// encrypted file is found by verify --deep and the scrubber; the next
// backup cannot upload the same bytes again (the age file was made once),
// so it encrypts the file again and commits the new blocks; once the old
// backup is deleted, GC removes the rotten block.
func TestEncryptedScrubAndGC(t *testing.T) {
	srv, conf := ibtest.StartServer(t), t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	key, recipient := newIdentity(t, conf)
	src := t.TempDir()
	mt := time.Unix(1_700_000_000, 0)
	ibtest.WriteFile(t, filepath.Join(src, "keys", "big.key"), ibtest.RandomBytes(700_000), 0o600, mt) // one block, in the block store
	ibtest.WriteFile(t, filepath.Join(src, "data.bin"), ibtest.RandomBytes(300_000), 0o644, mt)
	create := func() createResult {
		return createJSON(t, mustIB(t, conf, "backup", "create", "-q", "--json", "--node=s", "--encrypt", "keys/", "--encrypt-to", recipient, src))
	}
	sealedCID := func(id int64) string {
		resp, err := http.Get(fmt.Sprintf("%s/api/v1/backups/%d/manifest", srv.URL, id))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m struct {
			Entries []struct {
				Path       string
				Encryption string
				Blocks     []struct{ CID string }
			}
		}
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		for _, e := range m.Entries {
			if e.Path == "keys/big.key" && e.Encryption == "age" && len(e.Blocks) == 1 {
				return e.Blocks[0].CID
			}
		}
		t.Fatalf("backup %d: no encrypted keys/big.key of one block", id)
		return ""
	}
	blockFile := func(cid string) string {
		var found string
		filepath.WalkDir(filepath.Join(srv.DataDir, "blocks"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && d.Name() == cid {
				found = p
			}
			return nil
		})
		return found
	}
	first := create()
	cid := sealedCID(first.ID)
	path := blockFile(cid)
	if path == "" {
		t.Fatalf("block %s is not in the block store", cid)
	}
	data, _ := os.ReadFile(path)
	data[len(data)/2] ^= 0xff
	os.WriteFile(path, data, 0o600)

	out, _, code := ib(t, conf, "backup", "verify", fmt.Sprint(first.ID), "--deep")
	if code != 1 || !strings.Contains(out, "CORRUPT "+cid+" (keys/big.key)") {
		t.Fatalf("verify --deep of a rotten encrypted block (no identity): exit %d\n%s", code, out)
	}
	if rep, err := srv.Store.Scrub(context.Background(), 0, nil); err != nil || rep.Corrupt != 1 {
		t.Fatalf("scrub: %+v %v", rep, err)
	}
	second := create()
	if second.NewBlocks != 1 {
		t.Fatalf("the backup after the scrub uploaded %d blocks, want 1 (the file encrypted again)", second.NewBlocks)
	}
	if again := sealedCID(second.ID); again == cid {
		t.Fatal("the second backup still names the rotten block")
	}
	mustIB(t, conf, "backup", "verify", fmt.Sprint(second.ID), "--deep")
	dst := filepath.Join(t.TempDir(), "dst")
	mustIB(t, conf, "backup", "restore", fmt.Sprint(second.ID), "--identity", key, dst, "-q")
	ibtest.TreesEqual(t, src, dst, nil)

	mustIB(t, conf, "backup", "delete", fmt.Sprint(first.ID), "--yes")
	rep, err := srv.Store.GC(context.Background(), 0)
	if err != nil || rep.BlocksDeleted != 1 {
		t.Fatalf("GC: %+v %v, want the one rotten block deleted", rep, err)
	}
	if blockFile(cid) != "" {
		t.Fatalf("GC left the rotten block %s", cid)
	}
	mustIB(t, conf, "backup", "verify", fmt.Sprint(second.ID), "--deep")
}

// TestEncryptClearLinkWarns: a file --encrypt chooses that is a hard link
// to a name met first that it does not choose is stored once, in the clear
// under that name; backup create says so, naming both.
func TestEncryptClearLinkWarns(t *testing.T) {
	srv, conf := ibtest.StartServer(t), t.TempDir()
	mustIB(t, conf, "login", srv.URL, "--token", srv.Token)
	_, recipient := newIdentity(t, conf)
	src := t.TempDir()
	ibtest.WriteFile(t, filepath.Join(src, "a-copy.json"), []byte("secret"), 0o600, time.Unix(1_700_000_000, 0))
	if err := os.Link(filepath.Join(src, "a-copy.json"), filepath.Join(src, "keys.json")); err != nil {
		t.Fatal(err)
	}
	_, errs, code := ib(t, conf, "backup", "create", "-q", "--node=l", "--encrypt", "keys.json", "--encrypt-to", recipient, src)
	if code != 0 || !strings.Contains(errs, "keys.json = a-copy.json") || !strings.Contains(errs, "in the clear") {
		t.Fatalf("exit %d, stderr:\n%s", code, errs)
	}
	_, errs, _ = ib(t, conf, "backup", "create", "-q", "--node=l2", "--encrypt", "*.json", "--encrypt-to", recipient, src)
	if strings.Contains(errs, "in the clear") {
		t.Fatalf("both names encrypted, yet:\n%s", errs)
	}
}

// newIdentity makes an identity with `ib key generate --out` and returns
// its file and recipient.
func newIdentity(t *testing.T, conf string) (file, recipient string) {
	t.Helper()
	file = filepath.Join(t.TempDir(), "key.txt")
	return file, strings.TrimSpace(mustIB(t, conf, "key", "generate", "--out", file))
}
