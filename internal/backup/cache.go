package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"ib/internal/manifest"
)

// A ManifestCache keeps, for each tag set, the manifest of the last backup
// this machine made to one server, so that the next backup with the same
// tags reads its previous manifest from disk instead of downloading it (on
// a million files, the download was a fifth of a backup with nothing
// changed). Backups never change once made, so an entry is valid as long as
// the server's newest backup for the tags is the one cached: same id and
// same creation time (a server started afresh reuses ids, not times). The
// file's SHA-256 is part of its name and checked before use.
type ManifestCache struct {
	Dir string // one folder per server
}

// prefix is the start shared by every cache file of a tag set.
func (c *ManifestCache) prefix(tags manifest.Tags) string {
	sum := sha256.Sum256([]byte(tags.Canonical()))
	return hex.EncodeToString(sum[:8]) + "-"
}

func (c *ManifestCache) key(tags manifest.Tags, id int64, created time.Time) string {
	return c.prefix(tags) + strconv.FormatInt(id, 10) + "-" + strconv.FormatInt(created.UnixNano(), 10) + "-"
}

// open returns the cached entries of the backup, as the body of a manifest
// document (entries separated by commas), or nil if they are not cached
// intact.
func (c *ManifestCache) open(tags manifest.Tags, s manifest.Summary) *os.File {
	if c == nil || c.Dir == "" {
		return nil
	}
	matches := c.files(c.key(tags, s.ID, s.CreatedAt))
	if len(matches) != 1 {
		return nil
	}
	want := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(matches[0]), c.key(tags, s.ID, s.CreatedAt)), ".json")
	f, err := os.Open(matches[0])
	if err != nil {
		return nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil || hex.EncodeToString(h.Sum(nil)) != want {
		f.Close()
		os.Remove(matches[0]) // damaged: the next backup writes it again
		return nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil
	}
	return f
}

// store moves (or copies) the spool of a committed backup's entries into
// the cache, as its tag set's only entry. sum is the spool's SHA-256.
func (c *ManifestCache) store(tags manifest.Tags, id int64, created time.Time, spool *os.File, sum []byte) (string, error) {
	if c == nil || c.Dir == "" {
		return "", nil
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return "", fmt.Errorf("manifest cache: %w", err)
	}
	name := filepath.Join(c.Dir, c.key(tags, id, created)+hex.EncodeToString(sum)+".json")
	if err := os.Rename(spool.Name(), name); err != nil {
		// Another file system: copy, then rename into place.
		if err := copyInto(name, spool); err != nil {
			return "", fmt.Errorf("manifest cache: %w", err)
		}
	}
	for _, old := range c.files(c.prefix(tags)) {
		if old != name {
			os.Remove(old)
			os.Remove(inodesName(old))
		}
	}
	// Tag sets not backed up for a month (a version tag that moved on)
	// give their space back.
	for _, f := range c.files("") {
		if fi, err := os.Stat(f); err == nil && time.Since(fi.ModTime()) > cacheMaxAge {
			os.Remove(f)
			os.Remove(inodesName(f))
		}
	}
	return name, nil
}

// cacheMaxAge is how long the manifest of a tag set with no newer backup
// from this machine is kept.
const cacheMaxAge = 30 * 24 * time.Hour

// files lists the cache files whose names start with prefix (read from the
// folder, not globbed: the folder's own name may hold glob characters).
func (c *ManifestCache) files(prefix string) []string {
	des, _ := os.ReadDir(c.Dir)
	var out []string
	for _, de := range des {
		if strings.HasPrefix(de.Name(), prefix) && strings.HasSuffix(de.Name(), ".json") {
			out = append(out, filepath.Join(c.Dir, de.Name()))
		}
	}
	return out
}

func copyInto(name string, src *os.File) error {
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
