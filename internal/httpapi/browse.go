package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"ib/internal/manifest"
	"ib/internal/store"
)

// Node is a directory child as /tree lists it.
type Node struct {
	Name   string        `json:"name"`
	Path   string        `json:"path"`
	Type   manifest.Type `json:"type"`
	Mode   uint32        `json:"mode"`
	MTime  time.Time     `json:"mtime"`
	Size   int64         `json:"size"`
	UID    uint32        `json:"uid"`
	GID    uint32        `json:"gid"`
	Target string        `json:"target,omitempty"`
	Blocks int           `json:"blocks"`
	// Encryption is "age" for a file stored as an age file (Size is then
	// the age file's, PlainSize the file's own).
	Encryption string `json:"encryption,omitempty"`
	PlainSize  int64  `json:"plain_size,omitempty"`
	// ChangedDuringRead: the file kept changing while it was backed up.
	ChangedDuringRead bool `json:"changed_during_read,omitempty"`
}

func node(e manifest.Entry) Node {
	name := e.Path[strings.LastIndexByte(e.Path, '/')+1:]
	return Node{Name: name, Path: e.Path, Type: e.Type, Mode: e.Mode, MTime: e.MTime, Size: e.Size,
		UID: e.UID, GID: e.GID, Target: e.Target, Blocks: len(e.Blocks), ChangedDuringRead: e.ChangedDuringRead,
		Encryption: e.Encryption, PlainSize: e.PlainSize}
}

// subPath reads the ?path= of a folder or file, "." by default.
func subPath(c *gin.Context) (string, error) {
	p := c.DefaultQuery("path", ".")
	p = strings.Trim(p, "/")
	if p == "" {
		p = "."
	}
	if err := manifest.CheckPath(p); err != nil {
		return "", fmt.Errorf("%w: path: %w", store.ErrInvalid, err)
	}
	return p, nil
}

func (a *API) tree(c *gin.Context) {
	id, ok := a.backupID(c)
	if !ok {
		return
	}
	p, err := subPath(c)
	if err != nil {
		a.error(c, err)
		return
	}
	limit, _ := strconv.Atoi(c.DefaultQuery("limit", "1000"))
	limit = min(max(limit, 1), 10000)
	after, err := strconv.ParseInt(c.DefaultQuery("after", "-1"), 10, 64)
	if err != nil {
		a.error(c, fmt.Errorf("%w: after: want a number", store.ErrInvalid))
		return
	}
	dir, err := a.store.Lookup(c.Request.Context(), id, p)
	if err != nil {
		a.error(c, err)
		return
	}
	kids, err := a.store.Children(c.Request.Context(), id, dir, after, limit+1)
	if err != nil {
		a.error(c, err)
		return
	}
	out := struct {
		Path    string `json:"path"`
		Entry   Node   `json:"entry"`
		Entries []Node `json:"entries"`
		Next    *int64 `json:"next"` // ?after= for the next page, null at the end
	}{Path: p, Entry: node(dir.Entry), Entries: []Node{}}
	if len(kids) > limit {
		kids = kids[:limit]
		next := kids[limit-1].Seq
		out.Next = &next
	}
	for _, k := range kids {
		out.Entries = append(out.Entries, node(k.Entry))
	}
	c.JSON(http.StatusOK, out)
}

func attachment(name string) string {
	return "attachment; filename*=UTF-8''" + url.PathEscape(name)
}

func (a *API) file(c *gin.Context) {
	id, ok := a.backupID(c)
	if !ok {
		return
	}
	p := strings.Trim(c.Param("path"), "/")
	f, err := a.store.OpenFile(c.Request.Context(), id, p)
	if err != nil {
		a.error(c, err)
		return
	}
	defer f.Close()
	e := f.Entry()
	name := path.Base(e.Path)
	ctype := mime.TypeByExtension(path.Ext(name))
	if e.Encryption != "" {
		ctype = "" // an age file, whatever its name says
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	c.Header("Content-Type", ctype)
	c.Header("Content-Disposition", attachment(e.DownloadName(name)))
	c.Header("ETag", fmt.Sprintf(`"ib-file-%d-%x"`, id, []byte(e.MTime.Format(time.RFC3339Nano)+strconv.FormatInt(e.Size, 10))))
	c.Header("X-Content-Type-Options", "nosniff")
	a.serveContent(c, e.MTime, f, e.Path)
}

func (a *API) archive(c *gin.Context) {
	id, ok := a.backupID(c)
	if !ok {
		return
	}
	a.serveArchive(c, id, strings.HasSuffix(c.Request.URL.Path, ".lz4"))
}

func (a *API) serveArchive(c *gin.Context, id int64, lz4 bool) {
	paths, err := archivePaths(c)
	if err != nil {
		a.error(c, err)
		return
	}
	b, err := a.store.Backup(c.Request.Context(), id)
	if err != nil {
		a.error(c, err)
		return
	}
	ar, err := a.store.OpenArchive(c.Request.Context(), id, paths)
	if err != nil {
		a.error(c, err)
		return
	}
	defer ar.Close()
	if ar.Whole() && c.Request.Method == http.MethodGet {
		defer a.downloaded(c, b, time.Now())
	}
	name := fmt.Sprintf("ib-backup-%d", id)
	switch {
	case len(paths) > 1:
		name += "-selection"
	case paths[0] != ".":
		name += "-" + strings.ReplaceAll(paths[0], "/", "_")
	}
	if lz4 {
		// The same tar as an LZ4 frame: `curl URL | lz4 -d | tar -x`.
		// Once one stream was sent whole it has a length and ranges.
		c.Header("Content-Type", "application/x-lz4")
		c.Header("Content-Disposition", attachment(name+".tar.lz4"))
		a.serveLZ4(c, id, b.CreatedAt, ar, name)
		return
	}
	c.Header("Content-Type", "application/x-tar")
	c.Header("Content-Disposition", attachment(name+".tar"))
	c.Header("ETag", ar.ETag())
	a.serveContent(c, b.CreatedAt, ar, name)
}

// serveLZ4 answers the .tar.lz4 of an archive. Before its block sizes
// are known, a GET of a whole backup's stream starts the index pass and is
// sent without a length; a Range request (a resumed download) waits for
// the pass and is answered as usual.
func (a *API) serveLZ4(c *gin.Context, id int64, modtime time.Time, ar *store.ArchiveReader, name string) {
	la := a.store.LZ4(ar)
	c.Header("ETag", la.ETag())
	if !la.Known() && ar.Whole() && c.Request.Method == http.MethodGet {
		done := a.store.IndexLZ4(id)
		if c.Request.Header.Get("Range") != "" {
			select {
			case <-done:
			case <-c.Request.Context().Done():
				return
			}
			la = a.store.LZ4(ar)
		}
	}
	if la.Known() {
		a.serveContent(c, modtime, la, name)
		return
	}
	if ar.Whole() {
		c.Header("Accept-Ranges", "bytes")
	}
	c.Header("Last-Modified", modtime.UTC().Format(http.TimeFormat))
	c.Status(http.StatusOK)
	if c.Request.Method == http.MethodHead {
		return
	}
	if _, err := la.WriteTo(c.Writer); err != nil {
		a.cut(c, name, err)
	}
}

// latestArchive redirects the permalink of a tag set to its newest backup.
func (a *API) latestArchive(c *gin.Context) {
	sub := c.Query("path")
	tags, err := queryTags(c, "path")
	if err != nil {
		a.error(c, err)
		return
	}
	b, err := a.store.Latest(c.Request.Context(), tags)
	if err != nil {
		a.error(c, err)
		return
	}
	target := fmt.Sprintf("/api/v1/backups/%d/%s", b.ID, path.Base(c.Request.URL.Path))
	if sub != "" {
		target += "?path=" + url.QueryEscape(sub)
	}
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusFound, target)
}

// Hit is a search result.
type Hit struct {
	Backup manifest.Summary `json:"backup"`
	Entry  Node             `json:"entry"`
}

func (a *API) search(c *gin.Context) {
	q := strings.TrimSpace(c.Query("q"))
	if q == "" || len(q) > 256 || strings.ContainsFunc(q, unicode.IsControl) || !utf8.ValidString(q) {
		a.error(c, fmt.Errorf("%w: q: want 1 to 256 bytes of UTF-8 text without control characters", store.ErrInvalid))
		return
	}
	limit, _ := strconv.Atoi(c.DefaultQuery("limit", "100"))
	limit = min(max(limit, 1), 1000)
	filter, err := queryTags(c, "q", "limit")
	if err != nil {
		a.error(c, err)
		return
	}
	hits, err := a.store.Search(c.Request.Context(), q, filter, limit)
	if err != nil {
		a.error(c, err)
		return
	}
	out := make([]Hit, 0, len(hits))
	for _, h := range hits {
		out = append(out, Hit{Backup: summary(h.Backup), Entry: node(h.Entry)})
	}
	c.JSON(http.StatusOK, gin.H{"query": q, "hits": out})
}

func (a *API) downloads(c *gin.Context) {
	list, err := a.dist.List()
	if err != nil {
		a.error(c, err)
		return
	}
	c.JSON(http.StatusOK, list)
}

func (a *API) download(c *gin.Context) {
	f, mtime, err := a.dist.Open(c.Param("name"))
	if errors.Is(err, os.ErrNotExist) {
		a.fail(c, http.StatusNotFound, fmt.Errorf("no binary %q on offer", c.Param("name")))
		return
	}
	if err != nil {
		a.error(c, err)
		return
	}
	defer f.Close()
	c.Header("Content-Type", "application/octet-stream")
	c.Header("Content-Disposition", attachment(c.Param("name")))
	a.serveContent(c, mtime, f, c.Param("name"))
}

// Version is one backup's entry of a file's history.
type Version struct {
	Backup manifest.Summary `json:"backup"`
	Entry  Node             `json:"entry"`
	// ContentChanged: its content differs from the version before it
	// (false for the first).
	ContentChanged bool `json:"content_changed"`
}

// history lists a path's versions across the backups of a tag set.
func (a *API) history(c *gin.Context) {
	id, ok := a.backupID(c)
	if !ok {
		return
	}
	p, err := subPath(c)
	if err != nil {
		a.error(c, err)
		return
	}
	vs, err := a.store.History(c.Request.Context(), id, p, 1000)
	if err != nil {
		a.error(c, err)
		return
	}
	out := make([]Version, 0, len(vs))
	for i, v := range vs {
		changed := i > 0 && (vs[i-1].Entry.Type != v.Entry.Type || vs[i-1].Entry.Size != v.Entry.Size ||
			!slices.Equal(vs[i-1].Entry.Blocks, v.Entry.Blocks) || vs[i-1].Entry.Target != v.Entry.Target)
		out = append(out, Version{Backup: summary(v.Backup), Entry: node(v.Entry), ContentChanged: changed})
	}
	c.JSON(http.StatusOK, gin.H{"path": p, "versions": out})
}

// archivePaths reads the folders and files an archive holds: ?path= (one
// or several), or a POST body {"paths": […]} (a restore cart); "." when
// none is given.
func archivePaths(c *gin.Context) ([]string, error) {
	var paths []string
	if c.Request.Method == http.MethodPost {
		var body struct {
			Paths []string `json:"paths"`
		}
		dec := json.NewDecoder(io.LimitReader(c.Request.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&body); err != nil {
			return nil, fmt.Errorf("%w: body: want {\"paths\": [...]} of at most 1 MiB: %w", store.ErrInvalid, err)
		}
		paths = body.Paths
	} else {
		paths = c.QueryArray("path")
	}
	if len(paths) > store.MaxArchivePaths {
		return nil, fmt.Errorf("%w: %d paths, at most %d", store.ErrInvalid, len(paths), store.MaxArchivePaths)
	}
	for i, p := range paths {
		p = strings.Trim(p, "/")
		if p == "" {
			p = "."
		}
		if err := manifest.CheckPath(p); err != nil {
			return nil, fmt.Errorf("%w: path: %w", store.ErrInvalid, err)
		}
		paths[i] = p
	}
	if len(paths) == 0 {
		paths = []string{"."}
	}
	return paths, nil
}
