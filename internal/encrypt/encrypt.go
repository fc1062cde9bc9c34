// Package encrypt is how ib keeps a file's content secret from its server:
// the content becomes a standard age file (filippo.io/age: X25519 or scrypt
// passphrase recipients, a fresh file key per file), so that anyone holding
// the identity can decrypt a downloaded file with the age command line
// alone. ib invents no cryptography; this package parses recipients and
// identities the way age's own tools do and wraps age's streams.
package encrypt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
)

// Scheme is the value of a manifest entry's "encryption" for content that
// is an age file.
const Scheme = "age"

// Recipients parses --encrypt-to values: each an age public key (age1…) or
// the path of a recipients file (one key per line, # comments), as age -r
// and -R take them.
func Recipients(values []string) ([]age.Recipient, error) {
	var out []age.Recipient
	for _, v := range values {
		v = strings.TrimSpace(v)
		if strings.HasPrefix(v, "age1") {
			rs, err := age.ParseRecipients(strings.NewReader(v))
			if err != nil {
				return nil, fmt.Errorf("recipient %q: %w", v, err)
			}
			out = append(out, rs...)
			continue
		}
		b, err := os.ReadFile(v)
		if err != nil {
			return nil, fmt.Errorf("recipient %q: neither an age1… key nor a readable recipients file: %w", v, err)
		}
		rs, err := age.ParseRecipients(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("recipients file %s: %w", v, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// scryptWorkFactor, when set, replaces age's scrypt work factor (tests
// only: the default costs a second per use).
var scryptWorkFactor int

// PassphraseRecipient encrypts to a passphrase (scrypt), as age -p does.
// age allows a passphrase recipient only alone.
func PassphraseRecipient(passphrase string) (age.Recipient, error) {
	if passphrase == "" {
		return nil, errors.New("empty passphrase")
	}
	r, err := age.NewScryptRecipient(passphrase)
	if err == nil && scryptWorkFactor > 0 {
		r.SetWorkFactor(scryptWorkFactor)
	}
	return r, err
}

// PassphraseIdentity decrypts what PassphraseRecipient encrypted.
func PassphraseIdentity(passphrase string) (age.Identity, error) {
	return age.NewScryptIdentity(passphrase)
}

// Identities reads an identity file (AGE-SECRET-KEY-1… lines, # comments),
// or one encrypted with a passphrase as age -p writes them (binary or
// armored), asking passphrase for it then.
func Identities(path string, passphrase func() (string, error)) ([]age.Identity, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	if plain, ok, err := unlock(b, passphrase); err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	} else if ok {
		b = plain
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", path, err)
	}
	return ids, nil
}

// unlock decrypts a passphrase-protected identity file; ok is false for a
// file in the clear.
func unlock(b []byte, passphrase func() (string, error)) ([]byte, bool, error) {
	var r io.Reader
	switch {
	case bytes.HasPrefix(b, []byte("age-encryption.org/")):
		r = bytes.NewReader(b)
	case bytes.HasPrefix(bytes.TrimSpace(b), []byte(armor.Header)):
		r = armor.NewReader(bytes.NewReader(bytes.TrimSpace(b)))
	default:
		return nil, false, nil
	}
	if passphrase == nil {
		return nil, false, errors.New("encrypted with a passphrase, and none was given (IB_IDENTITY_PASSPHRASE)")
	}
	p, err := passphrase()
	if err != nil {
		return nil, false, err
	}
	id, err := age.NewScryptIdentity(p)
	if err != nil {
		return nil, false, err
	}
	dr, err := age.Decrypt(r, id)
	if err != nil {
		return nil, false, fmt.Errorf("wrong passphrase or not an identity file: %w", err)
	}
	plain, err := io.ReadAll(dr)
	return plain, true, err
}

// RecipientsOf returns the public keys of the X25519 identities among ids.
func RecipientsOf(ids []age.Identity) []string {
	var out []string
	for _, id := range ids {
		if x, ok := id.(*age.X25519Identity); ok {
			out = append(out, x.Recipient().String())
		}
	}
	return out
}

// Generate makes a new identity and returns it as an identity file's text
// (the lines age-keygen writes) and its recipient.
func Generate(now time.Time) (file, recipient string, err error) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return "", "", err
	}
	recipient = id.Recipient().String()
	file = fmt.Sprintf("# created: %s\n# public key: %s\n%s\n", now.Format(time.RFC3339), recipient, id)
	return file, recipient, nil
}

// WriteNew writes data to a new file of mode 0600; it never replaces one.
func WriteNew(path string, data string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Writer returns the age encryption of what is written to it, to dst,
// for recipients; Close finishes the file.
func Writer(dst io.Writer, recipients []age.Recipient) (io.WriteCloser, error) {
	if len(recipients) == 0 {
		return nil, errors.New("no recipient")
	}
	return age.Encrypt(dst, recipients...)
}

// Reader decrypts an age file from src with ids. A wrong identity is an
// error naming the cause, before any plaintext.
func Reader(src io.Reader, ids []age.Identity) (io.Reader, error) {
	r, err := age.Decrypt(bufio.NewReaderSize(src, 64<<10), ids...)
	if errors.As(err, new(*age.NoIdentityMatchError)) {
		return nil, fmt.Errorf("none of the identities given can decrypt it (encrypted to other keys): %w", err)
	}
	return r, err
}

// Lazy is an identity read by load when it is first needed: an identity
// file named in a config costs nothing (no passphrase asked) until an
// encrypted file is met. A load error is returned from each use.
func Lazy(load func() ([]age.Identity, error)) age.Identity {
	return &lazy{load: sync.OnceValues(load)}
}

type lazy struct {
	load func() ([]age.Identity, error)
}

func (l *lazy) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	ids, err := l.load()
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		key, err := id.Unwrap(stanzas)
		if errors.Is(err, age.ErrIncorrectIdentity) {
			continue
		}
		return key, err
	}
	return nil, age.ErrIncorrectIdentity
}
