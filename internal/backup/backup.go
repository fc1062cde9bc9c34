package backup

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"ib/internal/apiclient"
	"ib/internal/block"
	"ib/internal/manifest"
	"ib/internal/progress"
	"ib/internal/scan"
)

// API is what the pipeline needs of the server.
type API interface {
	Latest(ctx context.Context, tags manifest.Tags) (manifest.Summary, error)
	Manifest(ctx context.Context, id int64) (io.ReadCloser, error)
	Missing(ctx context.Context, cids []string) ([]string, error)
	PutBlock(ctx context.Context, cid string, body func() (io.ReadCloser, int64, error)) error
	// PutBlocks uploads many small blocks in one request: body is their
	// framed wire forms (see block.AppendFrame).
	PutBlocks(ctx context.Context, body []byte) error
	Commit(ctx context.Context, body func() (io.ReadCloser, int64, error), h apiclient.CommitHeader) (apiclient.Committed, error)
}

// Options of a backup.
type Options struct {
	Tags manifest.Tags
	// BlockSize > 0 cuts files into fixed-size blocks of that many bytes;
	// 0 (the default) cuts files larger than chunk.Min at content-defined
	// boundaries (package chunk).
	BlockSize int64
	Level     block.Level // default block.DefaultLevel
	Jobs      int         // upload workers, default 16
	HashJobs  int         // hash workers, default GOMAXPROCS
	Full      bool        // ignore the previous backup
	// Latest answers the question for the newest backup of Tags (its
	// summary, or an error for which IsNotFound holds when there is none)
	// for a caller that asked already; nil asks the API.
	Latest func(ctx context.Context) (manifest.Summary, error)
	// NoInline names files of at most block.InlineMax bytes by their
	// sha2-256 CID and uploads them, for a server that does not take
	// identity CIDs (one older than them).
	NoInline bool
	// NewIgnorer makes the walk's Ignorer (one per walk); nil keeps all.
	NewIgnorer func() scan.Ignorer
	Counters   *progress.Counters // may be nil
	// Job is the server's activity job this backup reports to (0: none);
	// its commit names it.
	Job int64
	// Prescan counts the totals of a backup without a previous one for
	// its ETA, by a second walk (concurrently). A backup with a previous
	// one estimates its totals from it as the walk goes, Prescan or not.
	Prescan bool
	// Encrypt, if set, seals the content of the files it wants as age
	// files to its recipients.
	Encrypt *Encrypt
	Log     *slog.Logger
	// IsNotFound tells the API's "no such backup" from other errors.
	IsNotFound func(error) bool
	// Cache keeps the manifest of each backup made for the next one with
	// the same tags; nil downloads it every time.
	Cache *ManifestCache
	// Parallel lets this backup run while another of the same tag set from
	// this host is being committed (the server refuses that otherwise).
	Parallel bool
	// AllowShrink commits a backup that is empty, or has under half the
	// files or bytes of the previous backup with the same tags (refused
	// otherwise: an unmounted disk must not become "latest").
	AllowShrink bool
	// Labels are metadata of this one backup, outside its tag set.
	Labels manifest.Tags
	// ChangeRetries is how often a file that changed while it was read is
	// read again before it is stored as last read and marked (default 3;
	// negative for none).
	ChangeRetries int
	// FailOnChange refuses to commit a backup with a file that kept
	// changing (ErrChanged).
	FailOnChange bool
	// OneFileSystem does not descend into mount points.
	OneFileSystem bool
	// OnLiveDB hears of each database found open by a running process
	// (its lock file held), as the walk meets it; nil to not look.
	OnLiveDB func(LiveDB)
}

// LiveDB is a database that a running process had open during the backup.
type LiveDB struct {
	Dir  string `json:"dir"`  // its folder, a manifest path
	Kind string `json:"kind"` // "LevelDB/RocksDB/Pebble", "MDBX", "LMDB"
}

// errLate abandons the streamed commit when files changed after they were
// hashed: the manifest is rewritten before it is committed.
var errLate = errors.New("files changed after they were read")

// ErrChanged refuses a backup in which files kept changing while read
// (Options.FailOnChange).
var ErrChanged = errors.New("files kept changing while read")

// ErrShrink refuses a backup that collapsed against the previous one.
var ErrShrink = errors.New("backup refused")

// Result is what a backup did. Its JSON form is `backup create --json`.
type Result struct {
	ID            int64         `json:"id"`
	Tags          manifest.Tags `json:"tags"`
	CreatedAt     time.Time     `json:"created_at"`
	Files         int64         `json:"files"`
	Dirs          int64         `json:"dirs"`
	Symlinks      int64         `json:"symlinks"`
	Bytes         int64         `json:"bytes"`
	Blocks        int64         `json:"blocks"`
	NewBlocks     int64         `json:"new_blocks"`
	UploadedBytes int64         `json:"uploaded_bytes"`
	ReusedFiles   int64         `json:"reused_files"`
	DurationMS    int64         `json:"duration_ms"`
	Labels        manifest.Tags `json:"labels,omitempty"`
	// Hardlinks are the files stored as later names of a file (counted
	// in Files too).
	Hardlinks int64 `json:"hardlinks"`
	// Changed are files that kept changing while read (the first 100;
	// ChangedCount counts them all): stored as last read and marked.
	Changed      []string `json:"changed_during_read,omitempty"`
	ChangedCount int      `json:"changed_count"`
	// Rereads counts the reads of files that had changed under the read.
	Rereads int64 `json:"rereads"`
	// Vanished counts files removed after the walk met them: left out.
	Vanished int64 `json:"vanished"`
	// Renamed counts files at a new path that took the blocks of the
	// previous backup's file with the same inode, size and mtime, unread.
	Renamed int64 `json:"renamed"`
	// LiveDBs are the databases found open (Options.OnLiveDB set).
	LiveDBs []LiveDB `json:"live_databases,omitempty"`

	// ReadBytes is the file content read, hashing and uploads together.
	ReadBytes int64 `json:"read_bytes"`

	// Not in the JSON output:
	Skipped  scan.Stats `json:"-"` // special files, ignored paths, unstorable names
	ParentID int64      `json:"-"` // the backup whose entries were reused, 0 if none
	// Secrets are files that look like private keys, stored in the clear
	// (the first 100; SecretCount counts them all).
	Secrets     []string `json:"-"`
	SecretCount int      `json:"-"`
	// ClearLinks are names --encrypt chose that are hard links to a
	// first name it did not choose: their content is stored once, in the
	// clear, under that name (the first 100).
	ClearLinks []string `json:"-"`
}

// ErrFileChanged reports a file whose content changed between hashing and
// upload; the backup reads such a file again after its last upload.
var ErrFileChanged = errors.New("file changed during the backup")

func (o *Options) defaults() {
	if o.BlockSize < 0 {
		o.BlockSize = 0
	}
	if o.Level == (block.Level{}) {
		o.Level = block.DefaultLevel
	}
	if o.Jobs <= 0 {
		o.Jobs = 16
	}
	if o.HashJobs <= 0 {
		o.HashJobs = runtime.GOMAXPROCS(0)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Tags == nil {
		o.Tags = manifest.Tags{}
	}
	if o.ChangeRetries == 0 {
		o.ChangeRetries = 3
	}
	if o.IsNotFound == nil {
		o.IsNotFound = func(error) bool { return false }
	}
}

// job is one walked item on its way to the manifest.
type job struct {
	item  *scan.Item
	entry manifest.Entry
	hash  bool // the file must be read
	// hint is what the file's previous version was cut into (a changed
	// plain file of the previous backup), for chunk.CutKnown.
	hint   []manifest.Block
	err    error
	done   chan struct{}
	reused bool
	// link is the job of the first name of this hard link, whose content
	// it takes.
	link     *job
	vanished bool // removed before it was read: left out
	// data is a small file's content as read (see keepSmall), handed to
	// its upload.
	data []byte
}

// source is where a block's bytes are on this machine.
type source struct {
	cid  string
	path string // manifest path, for messages
	abs  string
	off  int64
	size int64
	data []byte // the block's bytes as hashed, for a small file; else read from abs
}

type run struct {
	opts   Options
	header apiclient.CommitHeader // sent with every commit request
	// onLocked hears of a commit refused as a second backup of the tag set.
	onLocked func(error)
	// prevSummary is the newest backup with the same tags, nil if none.
	prevSummary *manifest.Summary
	api         API
	root        string
	readB       atomic.Int64
	upBlocks    atomic.Int64
	upBytes     atomic.Int64
	res         Result
	// comp compresses every block sent, on one worker per core.
	comp *block.Compressor
	// packing bounds the packs being built and sent: each holds up to
	// packBytesMax in memory, and a few in flight keep the server busy.
	packing chan struct{}
	late    lateSet      // files changed after they were hashed
	sealed  sealedSpools // the encrypted files' spools
	rereads atomic.Int64 // reads of files that changed under the read
	cutters cutters      // for files cut at content-defined boundaries
}

// abs is where a manifest path is on this machine.
func (r *run) abs(path string) string { return filepath.Join(r.root, filepath.FromSlash(path)) }

// Run backs up the folder root.
func Run(ctx context.Context, api API, root string, opts Options) (Result, error) {
	opts.defaults()
	if err := opts.Tags.Check(); err != nil {
		return Result{}, err
	}
	if opts.BlockSize > block.MaxSize {
		return Result{}, fmt.Errorf("block size %d exceeds the maximum %d", opts.BlockSize, block.MaxSize)
	}
	if opts.Encrypt != nil && len(opts.Encrypt.Recipients) == 0 {
		return Result{}, errors.New("encryption without a recipient (--encrypt-to)")
	}
	start := time.Now()
	r := &run{opts: opts, api: api, root: root, packing: make(chan struct{}, max(2, 2*runtime.GOMAXPROCS(0))),
		cutters: newCutters(opts.HashJobs)}
	defer r.sealed.removeAll()
	r.res.Tags = opts.Tags
	if err := opts.Labels.CheckLabels(); err != nil {
		return Result{}, err
	}
	if len(opts.Labels) > 0 {
		r.res.Labels = opts.Labels
	}
	procs := runtime.GOMAXPROCS(0)
	var err error
	if r.comp, err = block.NewCompressor(opts.Level, procs, 4*procs); err != nil {
		return Result{}, err
	}
	defer r.comp.Close()

	prev, err := r.previous(ctx)
	if err != nil {
		return Result{}, err
	}
	if prev != nil {
		defer prev.close()
	}

	spool, err := os.CreateTemp("", "ib-manifest-*")
	if err != nil {
		return Result{}, fmt.Errorf("manifest spool: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()

	var est *estimate
	switch {
	case opts.Counters == nil:
	case prev != nil:
		// Free (no second walk), so with Prescan off too: an agent's
		// quiet backups report time left to the activity page.
		est = newEstimate(opts.Counters, r.prevSummary)
		prev.est = est
	case opts.Prescan:
		if onPrescan != nil {
			onPrescan()
		}
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go r.prescan(pctx)
	}

	opts.Counters.SetPhase("reading and uploading")
	// The work stops at once if the server refuses the commit stream as a
	// second backup of the tag set (423), rather than after every upload.
	wctx, stopWork := context.WithCancelCause(ctx)
	defer stopWork(nil)
	r.onLocked = func(err error) { stopWork(err) }
	g, gctx := errgroup.WithContext(wctx)
	order := make(chan *job, 4096)
	work := make(chan *job, 256)
	newBlocks := make(chan source, 4096)
	// Packs waiting for an upload worker: a few are enough to keep every
	// worker busy, and each holds up to packBlocksMax sources (with the
	// bytes of small files: see keepSmall).
	uploads := make(chan []source, max(opts.Jobs/2, 2))

	g.Go(func() error { // walk and merge-join with the previous manifest
		defer close(order)
		defer close(work)
		var ign scan.Ignorer
		if opts.NewIgnorer != nil {
			ign = opts.NewIgnorer()
		}
		links := map[scan.FileID]*job{}
		wo := scan.Options{Ignore: ign, Stats: &r.res.Skipped, OneFileSystem: opts.OneFileSystem}
		err := scan.Walk(gctx, root, wo, func(it *scan.Item) error {
			j := r.plan(it, prev, links)
			est.walked(&j.entry)
			select {
			case order <- j:
			case <-gctx.Done():
				return gctx.Err()
			}
			if j.hash {
				select {
				case work <- j:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
		if err == nil {
			est.end()
		}
		return err
	})

	var hashers errgroup.Group
	for range opts.HashJobs {
		hashers.Go(func() error {
			buf := make([]byte, 1<<20)
			for j := range work {
				j.err = r.readFile(gctx, j, buf)
				if errors.Is(j.err, errVanished) {
					j.err, j.vanished = nil, true
				}
				close(j.done)
			}
			return nil
		})
	}

	key := newKey()
	r.header = apiclient.CommitHeader{Tags: opts.Tags, Key: key, Parallel: opts.Parallel, Job: opts.Job}
	head, tail, err := commitFrame(opts.Tags, opts.Labels, key)
	if err != nil {
		return Result{}, err
	}
	stream := r.startStream(ctx, head)
	var spoolW io.Writer = spool
	spoolSum := sha256.New()
	if opts.Cache != nil {
		spoolW = io.MultiWriter(spool, spoolSum)
	}
	bw := bufio.NewWriterSize(spoolW, 256<<10)
	spoolPos := &offsetWriter{w: bw}
	out := io.MultiWriter(spoolPos, stream)
	var inodes []inodeRec // of the files written, for the next backup's renames
	g.Go(func() error {   // collect in walk order
		defer close(newBlocks)
		var buf []byte
		n := 0
		for j := range order {
			select {
			case <-j.done:
			case <-gctx.Done():
				return gctx.Err()
			}
			if j.err != nil {
				return j.err
			}
			if j.link != nil {
				if err := r.takeLink(gctx, j); err != nil {
					return err
				}
			}
			if j.vanished {
				r.res.Vanished++
				continue
			}
			buf = buf[:0]
			if n > 0 {
				buf = append(buf, ',')
			}
			if opts.Cache != nil {
				inodes = appendInode(inodes, j, spoolPos.n+int64(len(buf)))
			}
			var err error
			if buf, err = manifest.AppendJSON(buf, &j.entry); err != nil {
				return fmt.Errorf("manifest spool: %w", err)
			}
			if _, err := out.Write(append(buf, '\n')); err != nil {
				return fmt.Errorf("manifest spool: %w", err)
			}
			n++
			r.count(j)
			if !j.hash {
				continue
			}
			var off int64
			for _, b := range j.entry.Blocks {
				if block.IsInline(b.CID) {
					continue // the CID carries the bytes
				}
				s := source{cid: b.CID, path: j.entry.Path, abs: r.sealed.source(j.entry.Path, j.item.Abs), off: off, size: b.Size}
				if len(j.entry.Blocks) == 1 && int64(len(j.data)) == b.Size {
					s.data = j.data
				}
				j.data = nil
				off += b.Size
				select {
				case newBlocks <- s:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
		}
		return bw.Flush()
	})

	g.Go(func() error { // ask the server in batches
		defer close(uploads)
		return r.batchMissing(gctx, newBlocks, uploads)
	})

	for range opts.Jobs {
		g.Go(func() error {
			for pack := range uploads {
				var err error
				if len(pack) == 1 && pack[0].size >= packLimit {
					err = r.upload(gctx, pack[0])
				} else {
					err = r.uploadPack(gctx, pack)
				}
				if errors.Is(err, ErrFileChanged) {
					r.late.add(pack[0].path) // read again after the last upload
					continue
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
	}

	err = g.Wait()
	hashers.Wait()
	if cause := context.Cause(wctx); err != nil && apiclient.IsLocked(cause) {
		err = fmt.Errorf("commit: %w", cause)
	}
	if err != nil {
		stream.abort(err)
		return Result{}, err
	}
	if r.res.Skipped.Special > 0 {
		opts.Log.Warn("skipped sockets, devices and named pipes", "count", r.res.Skipped.Special)
	}
	for _, p := range r.res.Skipped.Unstorable {
		opts.Log.Warn("skipped a name a manifest cannot hold (NUL or backslash)", "path", p)
	}

	var cacheSum []byte
	if r.late.len() > 0 {
		// The streamed manifest holds the late files' old entries: the
		// commit goes from the rewritten spool instead.
		stream.breakOff(errLate)
		opts.Counters.SetPhase("reading files that changed")
		fixed, sum, err := r.fixLate(ctx, spool)
		if err != nil {
			stream.abort(err)
			return Result{}, err
		}
		defer fixed.Close()
		spool = fixed
		cacheSum = sum
	}
	r.res.Rereads = r.rereads.Load()
	if cacheSum == nil {
		cacheSum = spoolSum.Sum(nil)
	}
	if err := r.shrunk(); err != nil {
		stream.abort(err)
		return Result{}, err
	}
	if err := r.changedCheck(); err != nil {
		stream.abort(err)
		return Result{}, err
	}
	opts.Counters.SetPhase("committing")
	rewritten := r.late.len() > 0 // the spool's entries moved
	done, err := r.commit(ctx, spool, head, tail, stream)
	var rs *resealError
	if errors.As(err, &rs) {
		fixed, sum, ferr := r.reseal(ctx, spool, rs.paths)
		if ferr != nil {
			return Result{}, ferr
		}
		defer fixed.Close()
		spool, cacheSum, rewritten = fixed, sum, true
		done, err = r.commitSpool(ctx, spool, head, tail, apiclient.Committed{}, false)
	}
	if err != nil {
		return Result{}, err
	}
	id := done.ID
	r.res.ID = id
	r.res.NewBlocks = r.upBlocks.Load()
	r.res.UploadedBytes = r.upBytes.Load()
	r.res.ReadBytes = r.readB.Load()
	r.res.DurationMS = time.Since(start).Milliseconds()
	created := done.CreatedAt
	if created.IsZero() { // a server that does not say
		if s, err := api.Latest(ctx, opts.Tags); err == nil && s.ID == id {
			created = s.CreatedAt
		}
	}
	if created.IsZero() {
		r.res.CreatedAt = time.Now().UTC()
	} else {
		r.res.CreatedAt = created
		name, err := opts.Cache.store(opts.Tags, id, created, spool, cacheSum)
		if err != nil {
			opts.Log.Warn("the next backup will download this one's manifest", "err", err)
		} else if name != "" && !rewritten { // a rewritten spool moved the entries
			if err := storeInodes(name, inodes); err != nil {
				opts.Log.Warn("the next backup will not recognise renamed files", "err", err)
			}
		}
	}
	return r.res, nil
}

func (r *run) count(j *job) {
	switch j.entry.Type {
	case manifest.TypeDir:
		r.res.Dirs++
	case manifest.TypeSymlink:
		r.res.Symlinks++
	case manifest.TypeFile, manifest.TypeHardlink:
		r.recount(nil, &j.entry)
		if j.reused {
			r.res.ReusedFiles++
		}
		r.opts.Counters.AddFile(j.entry.Size) // files only, as the summary counts them
	}
}

// recount moves the result's file totals from old (nil for none) to e.
func (r *run) recount(old, e *manifest.Entry) {
	if old != nil {
		r.uncount(old)
	}
	r.res.Files++
	r.res.Bytes += e.Size
	r.res.Blocks += int64(len(e.Blocks))
	if e.Type == manifest.TypeHardlink {
		r.res.Hardlinks++
	}
	if e.ChangedDuringRead {
		if r.res.ChangedCount++; len(r.res.Changed) < 100 {
			r.res.Changed = append(r.res.Changed, e.Path)
		}
	}
}

// uncount takes an entry counted by recount off the totals.
func (r *run) uncount(e *manifest.Entry) {
	r.res.Files--
	r.res.Bytes -= e.Size
	r.res.Blocks -= int64(len(e.Blocks))
	if e.Type == manifest.TypeHardlink {
		r.res.Hardlinks--
	}
	if e.ChangedDuringRead {
		r.res.ChangedCount--
		if i := slices.Index(r.res.Changed, e.Path); i >= 0 {
			r.res.Changed = slices.Delete(r.res.Changed, i, i+1)
		}
	}
}

// changedCheck refuses the commit when files kept changing and the
// options say so.
func (r *run) changedCheck() error {
	if !r.opts.FailOnChange || r.res.ChangedCount == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d file(s), first %s; nothing was committed", ErrChanged, r.res.ChangedCount, r.res.Changed[0])
}

// onPrescan, if set, is called when a prescan starts (tests).
var onPrescan func()

// prescan counts the folder's files and bytes into the counters: the
// totals of a backup without a previous one.
func (r *run) prescan(ctx context.Context) {
	c := r.opts.Counters
	var ign scan.Ignorer
	if r.opts.NewIgnorer != nil {
		ign = r.opts.NewIgnorer()
	}
	// Every name of a file counts, as the backup's own counts (and its
	// summary's) do.
	err := scan.Walk(ctx, r.root, scan.Options{Ignore: ign, OneFileSystem: r.opts.OneFileSystem}, func(it *scan.Item) error {
		if it.Type == manifest.TypeFile {
			c.TotalFiles.Add(1)
			c.TotalBytes.Add(it.Info.Size())
		}
		return nil
	})
	if err == nil {
		c.TotalsDone.Store(true)
	}
}

// Packs: blocks smaller than packLimit go to the server many at a time,
// up to packBytesMax bytes or packBlocksMax blocks per request, each pack
// read, checked and compressed in memory by one upload worker.
const (
	packLimit     = 256 << 10
	packBytesMax  = 2 << 20
	packBlocksMax = 4000
)

// uploadPack reads small blocks, checks that they still hash to their CIDs,
// compresses them and sends them in one request.
func (r *run) uploadPack(ctx context.Context, pack []source) error {
	select {
	case r.packing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.packing }()
	var wire []byte
	buf := make([]byte, 0, packLimit)
	est := 0
	for _, s := range pack {
		est += int(s.size) + 96 // CID, lengths and the LZ4 frame around data that does not shrink
	}
	body := make([]byte, 0, est)
	sent := 0
	for _, s := range pack {
		data := s.data // hashed from these very bytes
		if data == nil {
			var err error
			data, err = readRange(s, buf[:0])
			if errors.Is(err, ErrFileChanged) {
				r.late.add(s.path) // the rest of the pack goes on
				continue
			}
			if err != nil {
				return err
			}
			r.readB.Add(int64(len(data)))
			if block.Sum(data).String() != s.cid {
				r.late.add(s.path)
				continue
			}
		}
		sent++
		var err error
		if wire, err = r.comp.AppendWire(ctx, wire[:0], data); err != nil {
			return err
		}
		body = block.AppendFrame(body, s.cid, wire)
	}
	if sent == 0 {
		return nil
	}
	if err := r.api.PutBlocks(ctx, body); err != nil {
		return fmt.Errorf("upload %d blocks (%s, …): %w", len(pack), pack[0].path, err)
	}
	r.upBlocks.Add(int64(sent))
	r.upBytes.Add(int64(len(body)))
	r.opts.Counters.AddWire(int64(len(body)))
	return nil
}

func readRange(s source, buf []byte) ([]byte, error) {
	f, _, err := openRegular(s.abs)
	if errors.Is(err, errVanished) {
		return nil, fmt.Errorf("%s: %w (removed or replaced)", s.path, ErrFileChanged)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf = slices.Grow(buf[:0], int(s.size))[:s.size]
	n, err := f.ReadAt(buf, s.off)
	if n < int(s.size) {
		if err == nil || err == io.EOF {
			return nil, fmt.Errorf("%s: %w (shorter than before)", s.path, ErrFileChanged)
		}
		return nil, fmt.Errorf("read %s: %w", s.abs, err)
	}
	return buf, nil
}

// upload reads a block's range again and streams it through LZ4 to the
// server. The bytes are not hashed again here: the server checks every
// block against its CID, and its refusal of one whose file changed since it
// was hashed is reported as the file having changed.
func (r *run) upload(ctx context.Context, s source) error {
	body := func() (io.ReadCloser, int64, error) {
		f, err := os.Open(s.abs)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, bodyErr(fmt.Errorf("%s: %w (removed)", s.path, ErrFileChanged))
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", s.abs, err)
		}
		pr, pw := io.Pipe()
		go func() {
			defer f.Close()
			cw := &countWriter{w: pw, c: r.opts.Counters, total: &r.upBytes}
			n, err := r.comp.Encode(ctx, cw, io.NewSectionReader(f, s.off, s.size))
			r.readB.Add(n)
			if err == nil && n != s.size {
				err = fmt.Errorf("%s: %w (shorter than before)", s.path, ErrFileChanged)
			}
			if err != nil {
				pw.CloseWithError(bodyErr(err))
				return
			}
			pw.Close()
		}()
		return pr, -1, nil
	}
	if err := r.api.PutBlock(ctx, s.cid, body); err != nil {
		if ae := (*apiclient.Error)(nil); errors.As(err, &ae) && ae.Status == http.StatusBadRequest &&
			strings.Contains(ae.Msg, block.ErrMismatch.Error()) {
			return fmt.Errorf("%s: %w", s.path, ErrFileChanged)
		}
		return fmt.Errorf("upload block %s of %s: %w", s.cid, s.path, err)
	}
	r.upBlocks.Add(1)
	return nil
}

// permanent marks an error of our own request body (a file that changed or
// vanished) as one that no retry can mend.
type permanent struct{ error }

func (permanent) Permanent() bool { return true }
func (p permanent) Unwrap() error { return p.error }

func bodyErr(err error) error { return permanent{err} }

type countWriter struct {
	w     io.Writer
	c     *progress.Counters
	total *atomic.Int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.total.Add(int64(n))
	c.c.AddWire(int64(n))
	return n, err
}

func newKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// shrunk refuses a backup that is empty or has under half the files or
// bytes of the previous one with the same tags: the mark of a disk that
// was not mounted, or a wrong path, which would otherwise become the
// newest backup and let retention age the good ones out.
func (r *run) shrunk() error {
	if r.opts.AllowShrink {
		return nil
	}
	if r.res.Files == 0 {
		return fmt.Errorf("%w: %s holds no files (--allow-shrink to back it up anyway)", ErrShrink, r.root)
	}
	p := r.prevSummary
	if p == nil {
		return nil
	}
	if r.res.Files*2 < p.Files || r.res.Bytes*2 < p.Bytes {
		return fmt.Errorf("%w: %d files, %d bytes against %d files, %d bytes in backup %d with the same tags: is the disk mounted? (--allow-shrink to commit it)",
			ErrShrink, r.res.Files, r.res.Bytes, p.Files, p.Bytes, p.ID)
	}
	return nil
}
