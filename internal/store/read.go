package store

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strings"
	"sync"

	"ib/internal/block"
	"ib/internal/manifest"
	"ib/internal/metadb"
)

// Node is an entry of a backup with its position (for paging children).
type Node = metadb.Node

// Lookup returns the entry at path ("." for the root) of a backup.
func (s *Store) Lookup(ctx context.Context, id int64, path string) (Node, error) {
	if err := manifest.CheckPath(path); err != nil {
		return Node{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	n, err := s.db.Lookup(ctx, id, path)
	if errors.Is(err, metadb.ErrNotFound) {
		return Node{}, fmt.Errorf("%q in backup %d: %w", path, id, ErrNotFound)
	}
	return n, err
}

// Children lists a directory of a backup, a page at a time.
func (s *Store) Children(ctx context.Context, id int64, dir Node, after int64, limit int) ([]Node, error) {
	if dir.Entry.Type != manifest.TypeDir {
		return nil, fmt.Errorf("%w: %q is not a directory", ErrInvalid, dir.Entry.Path)
	}
	return s.db.Children(ctx, id, dir.Seq, after, limit)
}

// Search finds file names containing q across live backups whose tags
// include filter.
func (s *Store) Search(ctx context.Context, q string, filter manifest.Tags, limit int) ([]metadb.Hit, error) {
	return s.db.Search(ctx, q, filter, limit)
}

// FileReader reads one file of a backup from its blocks; it seeks, so
// http.ServeContent can answer Range requests. Each block is verified
// against its CID when it is read to its end.
type FileReader struct {
	ctx    context.Context
	s      *Store
	e      manifest.Entry
	pos    int64
	cur    io.Reader // decoded bytes of block idx from curPos
	closer io.Closer
	idx    int
	curPos int64
	hasher hash.Hash // nil when the block was entered mid-way
	left   int64     // bytes left in the current block
}

// OpenFile opens a regular file of a backup.
func (s *Store) OpenFile(ctx context.Context, id int64, path string) (*FileReader, error) {
	n, err := s.Lookup(ctx, id, path)
	if err != nil {
		return nil, err
	}
	if !n.Entry.Type.HasContent() {
		return nil, fmt.Errorf("%w: %q is a %s, not a file", ErrInvalid, path, n.Entry.Type)
	}
	return &FileReader{ctx: ctx, s: s, e: n.Entry, pos: 0, curPos: -1}, nil
}

// Entry is the file's manifest entry.
func (f *FileReader) Entry() manifest.Entry { return f.e }

func (f *FileReader) Seek(off int64, whence int) (int64, error) {
	return seekTo(&f.pos, f.e.Size, off, whence)
}

func (f *FileReader) Read(p []byte) (int, error) {
	if f.pos >= f.e.Size {
		return 0, io.EOF
	}
	if f.cur == nil || f.curPos != f.pos {
		if err := f.open(); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > f.left {
		p = p[:f.left]
	}
	if f.hasher != nil && f.left > 1 && int64(len(p)) == f.left {
		// Hold a verified block's last byte back until the whole block
		// matched its CID: a corrupt block never yields a whole body.
		p = p[:f.left-1]
	}
	n, err := f.cur.Read(p)
	if f.hasher != nil {
		f.hasher.Write(p[:n])
	}
	f.pos += int64(n)
	f.curPos = f.pos
	f.left -= int64(n)
	if f.left == 0 {
		if verr := f.finishBlock(); verr != nil {
			f.pos -= int64(n)
			return 0, verr
		}
		return n, nil
	}
	if err == io.EOF {
		return n, fmt.Errorf("block %s of %q: %w", f.e.Blocks[f.idx].CID, f.e.Path, io.ErrUnexpectedEOF)
	}
	return n, err
}

// open positions the reader at f.pos: the block holding it, decoded from
// its start, the bytes before pos discarded.
func (f *FileReader) open() error {
	f.Close()
	var start int64
	for i, b := range f.e.Blocks {
		if f.pos < start+b.Size {
			rc, _, err := f.s.OpenBlock(f.ctx, b.CID)
			if err != nil {
				return fmt.Errorf("%q: %w", f.e.Path, err)
			}
			f.closer = rc
			var dec io.Reader
			if skip := f.pos - start; skip > 0 {
				// Entered mid-way (a Range): start at the frame block
				// holding pos instead of decoding and hashing from 0. Those
				// bytes cannot be checked against the CID.
				d, err := block.DecoderAt(rc, skip)
				if err != nil {
					return fmt.Errorf("block %s of %q: %w", b.CID, f.e.Path, err)
				}
				f.closer = multiCloser{d, rc}
				dec, f.hasher = d, nil
			} else {
				want, err := block.ParseCID(b.CID)
				if err != nil {
					rc.Close()
					return fmt.Errorf("%q: %w", f.e.Path, err)
				}
				dec, f.hasher = block.NewDecoder(rc), block.HasherFor(want)
			}
			f.cur, f.idx, f.curPos, f.left = dec, i, f.pos, start+b.Size-f.pos
			return nil
		}
		start += b.Size
	}
	return io.EOF
}

// finishBlock checks the block just read to its end and closes it.
func (f *FileReader) finishBlock() error {
	b := f.e.Blocks[f.idx]
	var err error
	if f.hasher != nil {
		if got := block.Named(f.hasher).String(); got != b.CID {
			f.s.log.Error("corrupt block served", "cid", b.CID, "file", f.e.Path, "got", got)
			err = fmt.Errorf("block %s of %q: %w", b.CID, f.e.Path, block.ErrMismatch)
		}
	}
	f.Close()
	return err
}

type multiCloser []io.Closer

func (m multiCloser) Close() error {
	for _, c := range m {
		c.Close()
	}
	return nil
}

// Close releases the current block.
func (f *FileReader) Close() error {
	if f.closer != nil {
		f.closer.Close()
	}
	f.cur, f.closer, f.hasher = nil, nil, nil
	return nil
}

// ArchiveReader is a backup (or one folder of it) as a PAX tar stream. The
// stream is the same bytes every time, so it has a size before any byte is
// read, an ETag, and it seeks: http.ServeContent answers Range requests and
// a broken download resumes.
type ArchiveReader struct {
	ctx   context.Context
	s     *Store
	id    int64
	roots []Node // in walk order, none inside another
	key   string // names the stream among the store's caches
	whole bool   // the archive of the whole backup
	size  int64
	pos   int64

	gen *tarGen // produces the stream from genPos
}

// maxArchiveSizes bounds the store's cache of archive sizes: anyone may
// ask for the tar of any folder.
const maxArchiveSizes = 4096

// sizeCache is a map of at most max entries that forgets the oldest first.
type sizeCache struct {
	mu    sync.Mutex
	max   int
	m     map[string]int64
	order []string // insertion order, a ring once full
	next  int
}

func (c *sizeCache) Load(key string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v, ok
}

func (c *sizeCache) Store(key string, v int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]int64)
	}
	if _, ok := c.m[key]; ok {
		c.m[key] = v
		return
	}
	if len(c.order) < c.max {
		c.order = append(c.order, key)
	} else {
		delete(c.m, c.order[c.next])
		c.order[c.next] = key
		c.next = (c.next + 1) % c.max
	}
	c.m[key] = v
}

// Len is the number of sizes held.
func (c *sizeCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// OpenArchive opens the tar of backup id, or of the folder sub of it.
func (s *Store) OpenArchive(ctx context.Context, id int64, subs []string) (*ArchiveReader, error) {
	subs, err := archiveRoots(subs)
	if err != nil {
		return nil, err
	}
	a := &ArchiveReader{ctx: ctx, s: s, id: id}
	for _, sub := range subs {
		n, err := s.Lookup(ctx, id, sub)
		if err != nil {
			return nil, err
		}
		a.roots = append(a.roots, n)
	}
	key := fmt.Sprintf("%d\x00%s", id, strings.Join(subs, "\x00"))
	a.key = key
	a.whole = len(subs) == 1 && subs[0] == "."
	if v, ok := s.archiveSizes.Load(key); ok {
		a.size = v
		return a, nil
	}
	g := a.newGen()
	for {
		seg, err := g.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		a.size += seg.length
	}
	s.archiveSizes.Store(key, a.size)
	return a, nil
}

// MaxArchivePaths bounds the folders and files of one archive.
const MaxArchivePaths = 1000

// archiveRoots checks the paths of an archive and puts them in walk
// order, dropping repeats and paths inside another one.
func archiveRoots(subs []string) ([]string, error) {
	if len(subs) == 0 {
		subs = []string{"."}
	}
	if len(subs) > MaxArchivePaths {
		return nil, fmt.Errorf("%w: %d paths, at most %d", ErrInvalid, len(subs), MaxArchivePaths)
	}
	for _, p := range subs {
		if err := manifest.CheckPath(p); err != nil {
			return nil, fmt.Errorf("%w: path %q: %w", ErrInvalid, p, err)
		}
	}
	subs = slices.Clone(subs)
	slices.SortFunc(subs, manifest.Compare)
	out := subs[:0]
	for _, p := range subs {
		if len(out) > 0 && manifest.Within(p, out[len(out)-1]) {
			continue // the same, or inside the one before
		}
		out = append(out, p)
	}
	return out, nil
}

// inArchive reports whether path is in one of the archive's folders.
func (a *ArchiveReader) inArchive(path string) bool {
	for _, r := range a.roots {
		if manifest.Within(path, r.Entry.Path) {
			return true
		}
	}
	return false
}

// Size is the length of the whole tar stream.
func (a *ArchiveReader) Size() int64 { return a.size }

// Whole reports whether this is the archive of the whole backup.
func (a *ArchiveReader) Whole() bool { return a.whole }

// ETag names the stream: backups are immutable.
func (a *ArchiveReader) ETag() string {
	var paths []string
	for _, r := range a.roots {
		paths = append(paths, r.Entry.Path)
	}
	h := sha256.Sum256([]byte(strings.Join(paths, "\x00")))
	return fmt.Sprintf(`"ib-tar1-%d-%s"`, a.id, hex.EncodeToString(h[:6]))
}

func (a *ArchiveReader) Seek(off int64, whence int) (int64, error) {
	return seekTo(&a.pos, a.size, off, whence)
}

func (a *ArchiveReader) Read(p []byte) (int, error) {
	if a.pos >= a.size {
		return 0, io.EOF
	}
	if a.gen == nil || a.gen.pos != a.pos {
		// (Re)start the stream and skip to pos without reading any block.
		if a.gen != nil {
			a.gen.close()
		}
		a.gen = a.newGen()
		for {
			seg, err := a.gen.next()
			if err != nil {
				return 0, err
			}
			if a.gen.pos+seg.length > a.pos {
				if err := a.gen.enter(seg, a.pos-a.gen.pos); err != nil {
					return 0, err
				}
				break
			}
			a.gen.pos += seg.length
		}
	}
	return a.gen.read(p)
}

// Close releases the reader's blocks.
func (a *ArchiveReader) Close() error {
	if a.gen != nil {
		a.gen.close()
	}
	return nil
}

// segment is a piece of the tar stream: header bytes, a file's content,
// or zeros (padding and the end of archive).
type segment struct {
	length int64
	header []byte
	file   *manifest.Entry
	zeros  bool
}

// tarGen walks the entries under the root in walk order and yields the
// stream's segments.
type tarGen struct {
	a       *ArchiveReader
	pos     int64 // stream offset of the current segment's start (or of what read has reached)
	root    int   // the folder of a.roots being walked
	page    []manifest.Entry
	after   int64
	done    bool
	pending []segment
	ended   bool

	cur     segment
	off     int64 // within cur
	content *FileReader
}

func (a *ArchiveReader) newGen() *tarGen { return &tarGen{a: a, after: a.roots[0].Seq - 1} }

// next returns the next segment.
func (g *tarGen) next() (segment, error) {
	for len(g.pending) == 0 {
		if g.ended {
			return segment{}, io.EOF
		}
		e, err := g.nextEntry()
		if err == io.EOF {
			g.ended = true
			g.pending = append(g.pending, segment{length: 1024, zeros: true}) // two zero blocks end a tar
			break
		}
		if err != nil {
			return segment{}, err
		}
		if e.Path == "." {
			continue // the folder itself: its children are the archive
		}
		// A hard link is a tar link when its target is in the archive
		// (it comes before it), else a file of its own.
		link := e.Type == manifest.TypeHardlink && g.a.inArchive(e.Target)
		hdr, err := tarHeader(e, link)
		if err != nil {
			return segment{}, err
		}
		g.pending = append(g.pending, segment{length: int64(len(hdr)), header: hdr})
		if e.Type.HasContent() && !link && e.Size > 0 {
			ee := *e
			g.pending = append(g.pending, segment{length: e.Size, file: &ee})
			if pad := (512 - e.Size%512) % 512; pad > 0 {
				g.pending = append(g.pending, segment{length: pad, zeros: true})
			}
		}
	}
	seg := g.pending[0]
	g.pending = g.pending[1:]
	return seg, nil
}

func (g *tarGen) nextEntry() (*manifest.Entry, error) {
	for {
		for len(g.page) == 0 {
			if g.done {
				return nil, io.EOF
			}
			page, last, err := g.a.s.db.Entries(g.a.ctx, g.a.id, g.after, 2000)
			if err != nil {
				return nil, err
			}
			if len(page) < 2000 {
				g.done = true
			}
			g.page, g.after = page, last
			if len(page) == 0 && !g.nextRoot() {
				return nil, io.EOF
			}
		}
		e := &g.page[0]
		g.page = g.page[1:]
		if manifest.Within(e.Path, g.a.roots[g.root].Entry.Path) {
			return e, nil
		}
		// A folder is contiguous in walk order: past it, on to the next.
		if !g.nextRoot() {
			return nil, io.EOF
		}
	}
}

// nextRoot moves the walk to the archive's next folder.
func (g *tarGen) nextRoot() bool {
	g.page = nil
	if g.root+1 >= len(g.a.roots) {
		g.done = true
		return false
	}
	g.root++
	g.after, g.done = g.a.roots[g.root].Seq-1, false
	return true
}

// enter makes seg the current segment, off bytes into it.
func (g *tarGen) enter(seg segment, off int64) error {
	g.cur, g.off = seg, off
	g.pos += off
	if seg.file != nil {
		g.content = &FileReader{ctx: g.a.ctx, s: g.a.s, e: *seg.file, pos: off, curPos: -1}
	}
	return nil
}

func (g *tarGen) read(p []byte) (int, error) {
	for g.off >= g.cur.length {
		if g.content != nil {
			g.content.Close()
			g.content = nil
		}
		seg, err := g.next()
		if err != nil {
			return 0, err
		}
		if err := g.enter(seg, 0); err != nil {
			return 0, err
		}
	}
	if rest := g.cur.length - g.off; int64(len(p)) > rest {
		p = p[:rest]
	}
	var n int
	var err error
	switch {
	case g.cur.header != nil:
		n = copy(p, g.cur.header[g.off:])
	case g.cur.zeros:
		clear(p)
		n = len(p)
	default:
		n, err = g.content.Read(p)
		if err == io.EOF {
			err = nil
		}
	}
	g.off += int64(n)
	g.pos += int64(n)
	g.a.pos = g.pos
	return n, err
}

func (g *tarGen) close() {
	if g.content != nil {
		g.content.Close()
	}
}

// tarHeader renders an entry's PAX header blocks, the same bytes each time;
// link renders a hard link entry as a tar hard link.
func tarHeader(e *manifest.Entry, link bool) ([]byte, error) {
	h := &tar.Header{
		Format:  tar.FormatPAX,
		Name:    e.DownloadName(e.Path),
		Mode:    int64(e.Mode),
		Uid:     int(e.UID),
		Gid:     int(e.GID),
		ModTime: e.MTime,
	}
	switch e.Type {
	case manifest.TypeDir:
		h.Typeflag, h.Name = tar.TypeDir, e.Path+"/"
	case manifest.TypeSymlink:
		h.Typeflag, h.Linkname = tar.TypeSymlink, e.Target
	case manifest.TypeHardlink:
		if link {
			h.Typeflag, h.Linkname = tar.TypeLink, e.DownloadName(e.Target)
		} else {
			h.Typeflag, h.Size = tar.TypeReg, e.Size
		}
	default:
		h.Typeflag, h.Size = tar.TypeReg, e.Size
	}
	if strings.HasPrefix(h.Name, "/") {
		return nil, fmt.Errorf("absolute path %q", h.Name)
	}
	var buf bytes.Buffer
	if err := tar.NewWriter(&buf).WriteHeader(h); err != nil {
		return nil, fmt.Errorf("tar header of %q: %w", e.Path, err)
	}
	return buf.Bytes(), nil
}

// History returns the versions of one path across the live backups of
// backup id's tag set, oldest first (at most limit).
func (s *Store) History(ctx context.Context, id int64, path string, limit int) ([]metadb.Hit, error) {
	if err := manifest.CheckPath(path); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := s.Backup(ctx, id); err != nil {
		return nil, err
	}
	return s.db.History(ctx, id, path, limit)
}

// seekTo moves *pos as io.Seeker does, for a stream of size bytes.
func seekTo(pos *int64, size, off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += *pos
	case io.SeekEnd:
		off += size
	}
	if off < 0 {
		return 0, errors.New("seek before start")
	}
	*pos = off
	return off, nil
}
