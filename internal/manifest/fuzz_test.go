package manifest

import (
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzManifest: decoding and validating any bytes never panics, and what
// the validator accepts keeps its promises (valid paths in walk order).
func FuzzManifest(f *testing.F) {
	f.Add(`{"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"}]}`)
	f.Add(`{"tags":{"a":"b"},"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"},{"path":"a/../b","type":"file"}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		r := NewReader(strings.NewReader(doc), nil)
		var v Validator
		prev := ""
		for range 1000 {
			e, err := r.Next()
			if err != nil {
				return
			}
			if v.Add(e) != nil {
				return
			}
			if CheckPath(e.Path) != nil || (prev != "" && Compare(prev, e.Path) >= 0) {
				t.Fatalf("validator accepted %q after %q", e.Path, prev)
			}
			prev = e.Path
		}
		_ = io.EOF
	})
}

// FuzzTag: parsing never panics; an accepted pair round-trips.
func FuzzTag(f *testing.F) {
	for _, s := range []string{"node=tezos", "a=", "=b", "k=v=w", "Ü=1", "a.b-c_d=x y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, v, err := ParseTag(s)
		if err != nil {
			return
		}
		if k+"="+v != s || CheckTag(k, v) != nil {
			t.Fatalf("ParseTag(%q) = %q, %q", s, k, v)
		}
	})
}

// FuzzRestorePath: a path the manifest accepts, joined to a destination
// as restore joins it, never leaves the destination.
func FuzzRestorePath(f *testing.F) {
	for _, s := range []string{"a/b", "..", "a/../../x", "/etc/passwd", "a\\..\\b", ".", "a//b", "a/./b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckPath(p) != nil {
			return
		}
		dest := "/restore/dest"
		joined := filepath.Join(dest, filepath.FromSlash(p))
		rel, err := filepath.Rel(dest, joined)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || filepath.IsAbs(rel) {
			t.Fatalf("path %q escapes %s: %s", p, dest, joined)
		}
	})
}
