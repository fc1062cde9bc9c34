package encrypt

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
)

func seal(t *testing.T, plain []byte, rs []age.Recipient) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := Writer(&buf, rs)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(plain)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func open(t *testing.T, sealed []byte, ids []age.Identity) ([]byte, error) {
	t.Helper()
	r, err := Reader(bytes.NewReader(sealed), ids)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// TestTwoRecipients: a file sealed to two recipients (one given as a key,
// one in a recipients file) opens with either identity and not with a
// third; the same content sealed twice differs (a fresh file key each
// time); the plaintext appears nowhere in the sealed bytes.
func TestTwoRecipients(t *testing.T) {
	dir := t.TempDir()
	var files, recips []string
	for i := range 3 {
		f, r, err := Generate(time.Unix(1_700_000_000, 0))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "id"+string(rune('a'+i)))
		if err := WriteNew(p, f); err != nil {
			t.Fatal(err)
		}
		files, recips = append(files, p), append(recips, r)
	}
	if err := WriteNew(files[0], "x"); err == nil {
		t.Fatal("WriteNew replaced an existing identity")
	}
	if fi, _ := os.Stat(files[0]); fi.Mode().Perm() != 0o600 {
		t.Fatalf("identity file mode %v, want 0600", fi.Mode().Perm())
	}
	rfile := filepath.Join(dir, "recipients.txt")
	os.WriteFile(rfile, []byte("# the second key\n"+recips[1]+"\n"), 0o644)
	rs, err := Recipients([]string{recips[0], rfile})
	if err != nil || len(rs) != 2 {
		t.Fatalf("recipients: %d, %v", len(rs), err)
	}
	plain := []byte(`{"priv_key":{"type":"tendermint/PrivKeyEd25519","value":"c2VjcmV0"}}`)
	sealed := seal(t, plain, rs)
	if bytes.Contains(sealed, plain) || bytes.Contains(sealed, []byte("c2VjcmV0")) {
		t.Fatal("the sealed file contains the plaintext")
	}
	if bytes.Equal(sealed, seal(t, plain, rs)) {
		t.Fatal("two seals of one content are equal: no fresh file key")
	}
	for i := range 2 {
		ids, err := Identities(files[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := open(t, sealed, ids); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("identity %d: %q, %v", i, got, err)
		}
		if rs := RecipientsOf(ids); len(rs) != 1 || rs[0] != recips[i] {
			t.Fatalf("recipient of identity %d: %v, want %s", i, rs, recips[i])
		}
	}
	ids, _ := Identities(files[2], nil)
	if _, err := open(t, sealed, ids); err == nil || !strings.Contains(err.Error(), "none of the identities") {
		t.Fatalf("a third identity: %v", err)
	}
	if _, err := Recipients([]string{"age1notakey"}); err == nil {
		t.Fatal("a malformed key was taken")
	}
	if _, err := Recipients([]string{filepath.Join(dir, "absent")}); err == nil {
		t.Fatal("a missing recipients file was taken")
	}
}

// TestPassphrase: a passphrase recipient and identity; an identity file
// protected with a passphrase (as age -p writes it, binary and armored)
// opens with the right passphrase only.
func TestPassphrase(t *testing.T) {
	defer func(n int) { scryptWorkFactor = n }(scryptWorkFactor)
	scryptWorkFactor = 10
	r, err := PassphraseRecipient("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	sealed := seal(t, []byte("jwt secret"), []age.Recipient{r})
	good, _ := PassphraseIdentity("correct horse")
	bad, _ := PassphraseIdentity("wrong")
	if got, err := open(t, sealed, []age.Identity{good}); err != nil || string(got) != "jwt secret" {
		t.Fatalf("passphrase: %q, %v", got, err)
	}
	if _, err := open(t, sealed, []age.Identity{bad}); err == nil {
		t.Fatal("a wrong passphrase opened it")
	}
	file, recipient, _ := Generate(time.Now())
	dir := t.TempDir()
	protected := seal(t, []byte(file), []age.Recipient{r})
	var armored bytes.Buffer
	aw := armor.NewWriter(&armored)
	aw.Write(protected)
	aw.Close()
	for name, b := range map[string][]byte{"binary": protected, "armored": armored.Bytes()} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o600)
		ids, err := Identities(p, func() (string, error) { return "correct horse", nil })
		if err != nil || RecipientsOf(ids)[0] != recipient {
			t.Fatalf("%s protected identity: %v", name, err)
		}
		if _, err := Identities(p, func() (string, error) { return "wrong", nil }); err == nil {
			t.Fatalf("%s protected identity opened with a wrong passphrase", name)
		}
		if _, err := Identities(p, nil); err == nil || !strings.Contains(err.Error(), "IB_IDENTITY_PASSPHRASE") {
			t.Fatalf("%s protected identity without a passphrase: %v", name, err)
		}
	}
}
