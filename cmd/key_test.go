//go:build unix

package cmd_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ib/internal/encrypt"
)

// TestKeyWithAgeCLI: `ib key generate` makes an identity the age command
// line reads and writes for: a file the age CLI encrypted to the printed
// recipient opens with ib's identity, and one ib sealed opens with
// `age -d -i`. `ib key recipient` prints the same recipient; generate
// never replaces a file.
func TestKeyWithAgeCLI(t *testing.T) {
	ageBin, err := exec.LookPath("age")
	if err != nil {
		t.Fatal("the age command line is not installed (apt-get install age; scripts/test does)")
	}
	dir := t.TempDir()
	conf := t.TempDir()
	id := filepath.Join(dir, "key.txt")
	recipient := strings.TrimSpace(mustIB(t, conf, "key", "generate", "--out", id))
	if !strings.HasPrefix(recipient, "age1") {
		t.Fatalf("generate printed %q", recipient)
	}
	if fi, err := os.Stat(id); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file: %v %v", fi, err)
	}
	if got := strings.TrimSpace(mustIB(t, conf, "key", "recipient", id)); got != recipient {
		t.Fatalf("key recipient: %q, want %q", got, recipient)
	}
	if _, errs, code := ib(t, conf, "key", "generate", "--out", id); code != 2 || !strings.Contains(errs, "exists") {
		t.Fatalf("generate over an existing identity: exit %d, %s", code, errs)
	}

	plain := []byte("priv_validator_key contents\n")
	os.WriteFile(filepath.Join(dir, "plain"), plain, 0o600)
	if out, err := exec.Command(ageBin, "-r", recipient, "-o", filepath.Join(dir, "by-age.age"), filepath.Join(dir, "plain")).CombinedOutput(); err != nil {
		t.Fatalf("age -r: %v %s", err, out)
	}
	ids, err := encrypt.Identities(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(filepath.Join(dir, "by-age.age"))
	defer f.Close()
	r, err := encrypt.Reader(f, ids)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(r)
	if !bytes.Equal(got.Bytes(), plain) {
		t.Fatalf("ib read %q from age's file", got.Bytes())
	}

	rs, err := encrypt.Recipients([]string{recipient})
	if err != nil {
		t.Fatal(err)
	}
	var sealed bytes.Buffer
	w, _ := encrypt.Writer(&sealed, rs)
	w.Write(plain)
	w.Close()
	os.WriteFile(filepath.Join(dir, "by-ib.age"), sealed.Bytes(), 0o644)
	out, err := exec.Command(ageBin, "-d", "-i", id, filepath.Join(dir, "by-ib.age")).Output()
	if err != nil || !bytes.Equal(out, plain) {
		t.Fatalf("age -d of ib's file: %q, %v", out, err)
	}
}
