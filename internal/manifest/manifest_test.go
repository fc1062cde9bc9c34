package manifest

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"ib/internal/block"
)

func TestCompareIsWalkOrder(t *testing.T) {
	want := []string{".", "a", "a/b", "a/b/c", "a/b.txt", "a.txt", "a0", "b", "b/a"}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, Compare)
	if !slices.Equal(got, want) {
		t.Fatalf("sorted = %q, want %q", got, want)
	}
}

func TestCheckPath(t *testing.T) {
	for _, p := range []string{".", "a", "a/b.txt", "..a", "a..b/c", strings.Repeat("x", 255)} {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "/a", "a/../b", "..", "a/.", "./a", "a//b", "a/", "a\\b", "a\x00b", strings.Repeat("x", 256)} {
		if err := CheckPath(p); !errors.Is(err, ErrBadPath) {
			t.Errorf("CheckPath(%q) = %v, want ErrBadPath", p, err)
		}
	}
}

func TestTags(t *testing.T) {
	for _, s := range []string{"node=tezos", "version=24.0", "a.b_c-d=x y", "0=1"} {
		if _, _, err := ParseTag(s); err != nil {
			t.Errorf("ParseTag(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"node", "Node=x", "_a=b", "a=", "=b", "a=" + strings.Repeat("v", 257), "a=b\nc"} {
		if _, _, err := ParseTag(s); !errors.Is(err, ErrBadTag) {
			t.Errorf("ParseTag(%q) = %v, want ErrBadTag", s, err)
		}
	}
	a := Tags{"node": "tezos", "network": "mainnet"}
	b := Tags{"network": "mainnet", "node": "tezos"}
	if a.Canonical() != b.Canonical() {
		t.Errorf("canonical forms differ: %s %s", a.Canonical(), b.Canonical())
	}
	if !a.Matches(Tags{"node": "tezos"}) || a.Matches(Tags{"node": "eth"}) {
		t.Errorf("Matches is wrong")
	}
}

func mt() time.Time { return time.Unix(1700000000, 123456789).UTC() }

func goodManifest() []Entry {
	c := block.Sum([]byte("x")).String()
	return []Entry{
		{Path: ".", Type: TypeDir, Mode: 0755, MTime: mt()},
		{Path: "a", Type: TypeDir, Mode: 02775, MTime: mt()},
		{Path: "a/b", Type: TypeFile, Mode: 0600, MTime: mt(), Size: 3, Blocks: []Block{{c, 1}, {c, 2}}},
		{Path: "a/link", Type: TypeSymlink, Mode: 0777, MTime: mt(), Target: "../x"},
		{Path: "a.txt", Type: TypeFile, Mode: 0644, MTime: mt()},
	}
}

func TestValidator(t *testing.T) {
	var v Validator
	for _, e := range goodManifest() {
		if err := v.Add(&e); err != nil {
			t.Fatalf("good manifest rejected: %v", err)
		}
	}
	inline := goodManifest()
	inline[2].Blocks[1].CID = block.Inline([]byte("xy")).String()
	v = Validator{}
	for _, e := range inline {
		if err := v.Add(&e); err != nil {
			t.Fatalf("an inline CID rejected: %v", err)
		}
	}
	encrypted := goodManifest()
	encrypted[2].Encryption, encrypted[2].PlainSize = EncryptionAge, 0
	v = Validator{}
	for _, e := range encrypted {
		if err := v.Add(&e); err != nil {
			t.Fatalf("an encrypted file rejected: %v", err)
		}
	}
	c := block.Sum([]byte("x")).String()
	cases := map[string]func(m []Entry) []Entry{
		"no root":       func(m []Entry) []Entry { return m[1:] },
		"dotdot":        func(m []Entry) []Entry { m[2].Path = "a/../b"; return m },
		"absolute":      func(m []Entry) []Entry { m[2].Path = "/etc/passwd"; return m },
		"duplicate":     func(m []Entry) []Entry { return append(m[:3], m[2:]...) },
		"order":         func(m []Entry) []Entry { m[2], m[3] = m[3], m[2]; return m },
		"under symlink": func(m []Entry) []Entry { m[4].Path = "a/link/x"; return m },
		"under file":    func(m []Entry) []Entry { m[3].Path = "a/b/x"; return m },
		"unknown type":  func(m []Entry) []Entry { m[4].Type = "fifo"; return m },
		"sizes":         func(m []Entry) []Entry { m[2].Size = 4; return m },
		"bad cid":       func(m []Entry) []Entry { m[2].Blocks[0].CID = "bafy"; return m },
		"inline cid of other size": func(m []Entry) []Entry {
			m[2].Blocks[0].CID = block.Inline([]byte("xy")).String() // 2 bytes given as 1
			return m
		},
		"block too big": func(m []Entry) []Entry {
			m[4].Size = block.MaxSize + 1
			m[4].Blocks = []Block{{c, block.MaxSize + 1}}
			return m
		},
		"empty target":   func(m []Entry) []Entry { m[3].Target = ""; return m },
		"mode":           func(m []Entry) []Entry { m[1].Mode = 0170000; return m },
		"no mtime":       func(m []Entry) []Entry { m[1].MTime = time.Time{}; return m },
		"parent missing": func(m []Entry) []Entry { m[4].Path = "z/y"; return m },
		"other cipher":   func(m []Entry) []Entry { m[2].Encryption = "rot13"; return m },
		"encrypted dir":  func(m []Entry) []Entry { m[1].Encryption = EncryptionAge; return m },
		"plain size alone": func(m []Entry) []Entry {
			m[2].PlainSize = 3
			return m
		},
		"negative plain size": func(m []Entry) []Entry {
			m[2].Encryption, m[2].PlainSize = EncryptionAge, -1
			return m
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			var v Validator
			var err error
			for _, e := range mutate(goodManifest()) {
				if err = v.Add(&e); err != nil {
					break
				}
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}

func TestReaderAnyKeyOrder(t *testing.T) {
	doc := `{"entries":[{"path":".","type":"dir","mode":493,"mtime":"2023-11-14T22:13:20.123456789Z"},
	{"path":"f","type":"file","mode":420,"mtime":"2023-11-14T22:13:20Z","size":0}],"tags":{"node":"tezos"},"idempotency_key":"k"}`
	var tags Tags
	var key string
	r := NewReader(strings.NewReader(doc), func(k string, dec *json.Decoder) error {
		switch k {
		case "tags":
			return dec.Decode(&tags)
		case "idempotency_key":
			return dec.Decode(&key)
		}
		return nil
	})
	var paths []string
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, e.Path)
		if e.Path == "." && e.MTime.Nanosecond() != 123456789 {
			t.Errorf("mtime lost its nanoseconds: %v", e.MTime)
		}
	}
	if !slices.Equal(paths, []string{".", "f"}) || tags["node"] != "tezos" || key != "k" {
		t.Fatalf("paths %q tags %v key %q", paths, tags, key)
	}
	r = NewReader(strings.NewReader(`{"entries":[{"path":"."}`), nil)
	r.Next()
	if _, err := r.Next(); err == nil || err == io.EOF {
		t.Errorf("truncated manifest: %v, want an error", err)
	}
}
