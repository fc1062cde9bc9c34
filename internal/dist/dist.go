// Package dist offers the ib binaries for download: those that `make dist`
// cross-compiled into a folder, and always the running binary itself for
// its own OS and architecture.
package dist

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"sync"
	"time"
)

// Binary is one downloadable ib.
type Binary struct {
	Name   string `json:"name"` // ib-linux-amd64, ib-windows-amd64.exe
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	URL    string `json:"url"` // path on this server
	path   string
}

var nameRE = regexp.MustCompile(`^ib-([a-z0-9]+)-([a-z0-9]+)(\.exe)?$`)

// Catalog lists the binaries of a folder plus the running one.
type Catalog struct {
	dir  string
	self string
	mu   sync.Mutex
	sums map[string]string // path|size|mtime → sha256
}

// New returns a catalog of dir (may be empty: only the running binary).
func New(dir string) *Catalog {
	self, _ := os.Executable()
	return &Catalog{dir: dir, self: self, sums: map[string]string{}}
}

// SelfName is the download name of the running binary.
func SelfName() string {
	n := "ib-" + runtime.GOOS + "-" + runtime.GOARCH
	if runtime.GOOS == "windows" {
		n += ".exe"
	}
	return n
}

// List returns the binaries on offer, sorted by OS and architecture.
func (c *Catalog) List() ([]Binary, error) {
	found := map[string]string{}
	if c.dir != "" {
		ents, err := os.ReadDir(c.dir)
		if err != nil {
			return nil, fmt.Errorf("dist dir: %w", err)
		}
		for _, e := range ents {
			if e.Type().IsRegular() && nameRE.MatchString(e.Name()) {
				found[e.Name()] = filepath.Join(c.dir, e.Name())
			}
		}
	}
	if _, ok := found[SelfName()]; !ok && c.self != "" {
		found[SelfName()] = c.self
	}
	var out []Binary
	for name, p := range found {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		sum, err := c.sum(p, fi)
		if err != nil {
			return nil, err
		}
		m := nameRE.FindStringSubmatch(name)
		out = append(out, Binary{Name: name, OS: m[1], Arch: m[2], Size: fi.Size(), SHA256: sum, URL: "/downloads/" + name, path: p})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].OS != out[j].OS {
			return out[i].OS < out[j].OS
		}
		return out[i].Arch < out[j].Arch
	})
	return out, nil
}

// Open opens a binary by its download name.
func (c *Catalog) Open(name string) (*os.File, time.Time, error) {
	list, err := c.List()
	if err != nil {
		return nil, time.Time{}, err
	}
	for _, b := range list {
		if b.Name == name {
			f, err := os.Open(b.path)
			if err != nil {
				return nil, time.Time{}, err
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, time.Time{}, err
			}
			return f, fi.ModTime(), nil
		}
	}
	return nil, time.Time{}, os.ErrNotExist
}

func (c *Catalog) sum(p string, fi os.FileInfo) (string, error) {
	key := fmt.Sprintf("%s|%d|%d", p, fi.Size(), fi.ModTime().UnixNano())
	c.mu.Lock()
	s, ok := c.sums[key]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("dist: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("dist: %w", err)
	}
	s = hex.EncodeToString(h.Sum(nil))
	c.mu.Lock()
	c.sums[key] = s
	c.mu.Unlock()
	return s, nil
}
