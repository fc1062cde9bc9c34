// Package restore rebuilds a backed-up folder: it fetches the manifest,
// checks it whole before touching the destination, recreates directories
// and symlinks in walk order, downloads blocks with a few workers, verifies
// each block's CID as it is decoded, writes each file under a temporary name
// and renames it into place only when every block matched, then applies
// directory modes and mtimes last, deepest first.
//
// Every file system operation goes through an os.Root on the destination,
// so no path in a manifest, even from a compromised server, can make it
// write outside DEST. A marker file makes an interrupted restore resumable:
// rerun the same command and files already complete are kept.
package restore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/ipfs/go-cid"
	"golang.org/x/sync/errgroup"

	"ib/internal/apiclient"
	"ib/internal/bank"
	"ib/internal/block"
	"ib/internal/ignore"
	"ib/internal/manifest"
	"ib/internal/progress"
)

// API is what restore needs of the server.
type API interface {
	Manifest(ctx context.Context, id int64) (io.ReadCloser, error)
	GetBlock(ctx context.Context, cid string) (io.ReadCloser, error)
	// FetchBlocks answers many small blocks as one pack.
	FetchBlocks(ctx context.Context, cids []string) (io.ReadCloser, error)
}

// Options of a restore.
type Options struct {
	Sub      string // restore only this file or folder (manifest path); "" or "." for all
	Jobs     int    // download workers, default 4
	Force    bool   // restore into a non-empty DEST
	Counters *progress.Counters
	Log      *slog.Logger

	// Ownership and permissions, as tar's options of the same names. As
	// root, files get the manifest's owner unless NoSameOwner or Chown;
	// setuid and setgid bits are kept only on files that get the
	// manifest's owner (never as another user: a backup from a server
	// cannot plant a setuid program of the user who restores it).
	NoSameOwner       bool
	Chown             *Owner // every file owned by this user and group
	NoSamePermissions bool   // the process's umask applies to every mode

	// Protected are paths (gitignore syntax) that an existing DEST keeps:
	// a file there is never replaced (a validator's signing state).
	Protected []*ignore.Pattern
	// Delete removes what DEST has under the restored folder and the
	// backup does not, sparing what DEST's ignore files leave out, the
	// protected paths and Keep.
	Delete bool
	Keep   []*ignore.Pattern
	// InPlace patches an existing file where it is, block by block,
	// instead of writing a copy beside it: a 2 TB file needs no second
	// 2 TB. An interrupted run is completed by running it again. A file
	// with other hard links is never patched in place.
	InPlace bool
	// VerifyExisting hashes the files that look complete (size, mtime
	// and mode) too, and repairs in place any block that differs.
	VerifyExisting bool
	// DryRun writes nothing: Run only plans, calling Plan for each file it
	// would write or patch and each path it would delete, and returns the
	// counts the restore would have.
	DryRun bool
	Plan   func(Planned) error
	// StateDir keeps, per DEST, the backup last restored whole into it
	// (known.go): a refresh then reads no stale bytes. "" keeps nothing.
	StateDir string
	// Identities decrypt the files whose content is an age file (nil: a
	// restore that meets one fails before writing anything, naming it);
	// SkipEncrypted leaves such files out instead.
	Identities    []age.Identity
	SkipEncrypted bool
}

// Owner is a numeric user and group.
type Owner struct{ UID, GID int }

// Result counts what was restored.
type Result struct {
	Files    int64 `json:"files"`
	Dirs     int64 `json:"dirs"`
	Symlinks int64 `json:"symlinks"`
	Bytes    int64 `json:"bytes"`
	Kept     int64 `json:"kept"` // files already complete from an interrupted run
	Skipped  int64 `json:"skipped"`
	// Protected are the protected files DEST kept (the first 100;
	// ProtectedCount counts them).
	Protected      []string `json:"protected,omitempty"`
	ProtectedCount int      `json:"protected_count"`
	// A refresh of an existing DEST: files written with blocks taken from
	// DEST's own copy, and the blocks (and their bytes) taken and fetched.
	Patched       int64 `json:"patched"`
	BlocksReused  int64 `json:"blocks_reused"`
	BytesReused   int64 `json:"bytes_reused"`
	BlocksFetched int64 `json:"blocks_fetched"`
	BytesFetched  int64 `json:"bytes_fetched"`
	Deleted       int64 `json:"deleted"` // files and folders removed by Delete
}

// Marker is the file that marks DEST as a restore in progress.
const Marker = ".ib-restore-in-progress"

// ErrNotEmpty refuses a non-empty destination.
var ErrNotEmpty = errors.New("destination is not empty (use --force to restore into it)")

const partSuffix = ".ib-part"

type fileState struct {
	e         manifest.Entry
	tmp       string
	f         *os.File
	remaining atomic.Int64
	local     *os.File     // DEST's file at e.Path, to take blocks from; nil if none
	reused    atomic.Int64 // blocks taken from it
	// complete: DEST's file looked complete (size, mtime, mode) and is
	// being verified (VerifyExisting).
	complete bool
	// known: the blocks local holds, from the backup last restored into
	// DEST (nil: they are hashed).
	known *knownBlocks
}

// inPlace reports a file patched where it is (f is DEST's file itself).
func (st *fileState) inPlace() bool { return st.tmp == "" }

type blockJob struct {
	file *fileState
	b    manifest.Block
	off  int64
}

// blockRun is consecutive blocks of one file, from off on, fetched in
// one request (see runBytes).
type blockRun struct {
	file *fileState
	off  int64
	bs   []manifest.Block
}

// Files of one block smaller than smallLimit are fetched many at a time,
// up to smallBatchBytes or smallBatchFiles per request.
const (
	smallLimit = 256 << 10
	// packFetchersPerJob: pack fetchers per download worker (--jobs).
	packFetchersPerJob = 4
	smallBatchBytes    = 2 << 20
	smallBatchFiles    = 1000
)

type run struct {
	api   API
	opts  Options
	root  *os.Root
	dest  string
	owner bool   // files get the manifest's owner
	umask uint32 // bits taken off every mode
	// destMeta: DEST was made by this restore (or an interrupted one), so
	// the backup's "." gives it mode and owner; an existing DEST keeps its
	// own, as the operator made it.
	destMeta bool
	// fresh: DEST was empty, so no name in it needs checking or clearing.
	fresh bool
	res   Result
	mu    sync.Mutex
	open  map[*fileState]bool // files being written, removed on failure
	dirs  dirRoots
	links []hardLink // made once every file is written
	delta deltaStats
	prev  *manifest.Cursor // the backup last restored into DEST (known.go)
	// elastic adds block fetchers on a long link (elastic.go).
	elastic elastic
}

// Run restores backup id into dest.
func Run(ctx context.Context, api API, id int64, dest string, opts Options) (Result, error) {
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Sub == "" {
		opts.Sub = "."
	}
	opts.Sub = path.Clean(filepath.ToSlash(opts.Sub))
	if err := manifest.CheckPath(opts.Sub); err != nil {
		return Result{}, fmt.Errorf("--path: %w", err)
	}

	spool, err := fetch(ctx, api, id)
	if err != nil {
		return Result{}, err
	}
	defer spool.Close()
	sealed, err := check(spool, opts.Sub, opts.Counters)
	if err != nil {
		return Result{}, fmt.Errorf("backup %d: %w", id, err)
	}
	if err := checkSealed(ctx, api, sealed, opts); err != nil {
		return Result{}, fmt.Errorf("backup %d: %w", id, err)
	}
	if opts.DryRun {
		return dryRun(ctx, api, id, spool, dest, opts)
	}

	st, err := prepare(dest, opts.Force)
	if err != nil {
		return Result{}, err
	}
	fresh := st.empty
	root, err := os.OpenRoot(dest)
	if err != nil {
		return Result{}, fmt.Errorf("restore: %w", err)
	}
	defer root.Close()
	if err := root.WriteFile(Marker, []byte(fmt.Sprintf("%d\n", id)), 0o600); err != nil {
		return Result{}, fmt.Errorf("restore: %w", err)
	}
	r := &run{api: api, opts: opts, root: root, dest: dest, fresh: fresh, open: map[*fileState]bool{},
		owner: os.Geteuid() == 0 && !opts.NoSameOwner && opts.Chown == nil, destMeta: st.created || st.resumed}
	if opts.NoSamePermissions {
		r.umask = umask()
	}
	r.dirs.parent = root
	defer r.dirs.close()

	dirs, err := newDirSpill()
	if err != nil {
		return Result{}, err
	}
	defer dirs.close()
	defer r.previous(ctx, id)()
	if err := r.restore(ctx, spool, dirs); err != nil {
		r.cleanup()
		return Result{}, err
	}
	if err := r.makeLinks(); err != nil {
		return Result{}, err
	}
	if opts.Delete && !fresh {
		if err := r.deleteExtra(ctx, spool); err != nil {
			return Result{}, err
		}
	}
	r.res.Kept += r.delta.verified.Load()
	r.res.Patched, r.res.BlocksReused, r.res.BytesReused = r.delta.patched.Load(), r.delta.blocksReused.Load(), r.delta.bytesReused.Load()
	r.res.BlocksFetched, r.res.BytesFetched = r.delta.blocksFetched.Load(), r.delta.bytesFetched.Load()
	if err := root.Remove(Marker); err != nil {
		return Result{}, fmt.Errorf("restore: %w", err)
	}
	// Directory metadata last, deepest first, so writing inside a
	// directory does not change its mtime after it is set.
	if err := dirs.backward(func(e manifest.Entry) error { return r.meta(e.Path, e) }); err != nil {
		return Result{}, err
	}
	if opts.Sub == "." {
		if err := saveRestored(opts.StateDir, r.absDest(), id); err != nil {
			opts.Log.Warn("the next refresh of this folder will hash its stale files", "err", err)
		}
	}
	return r.res, nil
}

// fetch spools the manifest to an unlinked temporary file.
func fetch(ctx context.Context, api API, id int64) (*os.File, error) {
	f, err := os.CreateTemp("", "ib-restore-manifest-*")
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	os.Remove(f.Name())
	if err := apiclient.SpoolManifest(ctx, api, id, f); err != nil {
		f.Close()
		return nil, fmt.Errorf("backup %d: %w", id, err)
	}
	return f, nil
}

func entries(f *os.File) *manifest.Reader {
	return manifest.NewReader(io.NewSectionReader(f, 0, 1<<62), nil)
}

// ErrEncrypted is a restore of files whose content is encrypted.
var ErrEncrypted = errors.New("encrypted files in the backup")

// check validates the whole manifest before anything is written: a server
// cannot make restore write outside DEST, under a symlink, or to a path
// that repeats.
func check(f *os.File, sub string, c *progress.Counters) (sealed []manifest.Entry, err error) {
	var v manifest.Validator
	found := false
	var files, bytes int64
	r := entries(f)
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := v.Add(e); err != nil {
			return nil, err
		}
		if e.Path == sub {
			found = true
		}
		if e.Encryption != "" && manifest.Within(e.Path, sub) && len(sealed) < 5 {
			sealed = append(sealed, *e)
		}
		if e.Type.HasContent() && manifest.Within(e.Path, sub) {
			files++
			if e.Type == manifest.TypeFile || !manifest.Within(e.Target, sub) {
				bytes += e.Size // a link restored as a link writes nothing
			}
		}
	}
	if v.Count() == 0 {
		return nil, errors.New("empty manifest")
	}
	if !found {
		return nil, fmt.Errorf("--path %q is not in the backup", sub)
	}
	if c != nil { // the totals of what this restore restores, --path or not
		c.TotalFiles.Store(files)
		c.TotalBytes.Store(bytes)
		c.TotalsDone.Store(true)
	}
	return sealed, nil
}

// prepare creates dest or checks that it may be written to. It reports
// whether dest is new or empty.
// destState is what prepare found at DEST.
type destState struct {
	empty   bool // nothing to check or clear in it
	created bool // made now
	resumed bool // holds an interrupted restore
}

func prepare(dest string, force bool) (destState, error) {
	fi, err := os.Lstat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dest, 0o700); err != nil {
			return destState{}, fmt.Errorf("restore: %w", err)
		}
		return destState{empty: true, created: true}, nil
	}
	if err != nil {
		return destState{}, fmt.Errorf("restore: %w", err)
	}
	if !fi.IsDir() {
		return destState{}, fmt.Errorf("restore: %s is not a directory", dest)
	}
	ents, err := os.ReadDir(dest)
	if err != nil {
		return destState{}, fmt.Errorf("restore: %w", err)
	}
	if len(ents) == 0 {
		return destState{empty: true}, nil
	}
	for _, e := range ents {
		if e.Name() == Marker {
			return destState{resumed: true}, nil // an interrupted restore: resume it
		}
	}
	if force {
		return destState{}, nil
	}
	return destState{}, fmt.Errorf("restore: %s: %w", dest, ErrNotEmpty)
}

func (r *run) restore(ctx context.Context, spool *os.File, dirs *dirSpill) error {
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan blockRun, 64)
	fetcher := func() error {
		for j := range jobs {
			if err := r.fetchRun(gctx, j); err != nil {
				return err
			}
		}
		return nil
	}
	for range r.opts.Jobs {
		g.Go(fetcher)
	}
	r.elastic = elastic{jobs: r.opts.Jobs, grow: func(n int) {
		r.opts.Log.Debug("long round trips: more block fetchers", "added", n)
		for range n {
			g.Go(fetcher) // from a running fetcher: the group is not done
		}
	}}
	// Packs of small files have fetchers of their own, more than Jobs: a
	// pack is a round trip for at most 2 MiB, and four at a time left a
	// long link idle (80% of 1 Gbit/s at 80 ms).
	packs := make(chan []manifest.Entry, 16)
	for range r.opts.Jobs * packFetchersPerJob {
		g.Go(func() error {
			for small := range packs {
				if err := r.fetchSmall(gctx, small); err != nil {
					return err
				}
			}
			return nil
		})
	}
	var ahead statAhead
	if !r.fresh {
		actx, stop := context.WithCancel(gctx)
		defer stop()
		ahead.start(actx, spool, r.root, r.opts.Sub)
	}
	g.Go(func() error {
		defer close(jobs)
		defer close(packs)
		mr := entries(spool)
		var small []manifest.Entry
		var smallBytes int64
		flush := func() error {
			if len(small) == 0 {
				return nil
			}
			select {
			case packs <- small:
			case <-gctx.Done():
				return gctx.Err()
			}
			small, smallBytes = nil, 0
			return nil
		}
		// queue adds a small file to the next pack.
		queue := func(e manifest.Entry) error {
			r.res.Files++
			r.res.Bytes += e.Size
			small = append(small, e)
			smallBytes += e.Size
			if len(small) >= smallBatchFiles || smallBytes >= smallBatchBytes {
				return flush()
			}
			return nil
		}
		for {
			e, err := mr.Next()
			if err == io.EOF {
				return flush()
			}
			if err != nil {
				return err
			}
			ahead.passed()
			if !manifest.Within(e.Path, r.opts.Sub) && !manifest.Within(r.opts.Sub, e.Path) {
				continue
			}
			// Ancestors of --path are created but not otherwise restored.
			ancestor := !manifest.Within(e.Path, r.opts.Sub)
			if err := localName(e.Path); err != nil {
				r.opts.Log.Warn("cannot restore on this system", "path", e.Path, "err", err)
				r.res.Skipped++
				continue
			}
			if e.Type != manifest.TypeDir && r.keep(e) {
				continue
			}
			switch e.Type {
			case manifest.TypeDir:
				if err := r.mkdir(e.Path); err != nil {
					return err
				}
				if !ancestor {
					if err := dirs.add(*e); err != nil {
						return err
					}
					r.res.Dirs++
				}
			case manifest.TypeSymlink:
				if err := r.symlink(*e); err != nil {
					return err
				}
				r.res.Symlinks++
			case manifest.TypeHardlink, manifest.TypeFile:
				if e.Encryption != "" && r.opts.SkipEncrypted {
					r.skipSealed(*e) // a hard link to a skipped file too
					continue
				}
				if e.Type == manifest.TypeHardlink {
					if r.linkable(e) {
						r.links = append(r.links, hardLink{e.Path, e.Target})
						continue
					}
					e.Type, e.Target = manifest.TypeFile, "" // its target is not restored here
				}
				if e.Encryption != "" {
					if err := r.restoreSealed(gctx, *e); err != nil {
						return err
					}
					continue
				}
				if err := r.restoreFile(gctx, *e, jobs, queue); err != nil {
					return err
				}
			}
		}
	})
	return g.Wait()
}

// restoreFile restores one file: a small file of one block goes into a
// pack (fetched many at a time), unless DEST has it complete (kept or
// verified), has it to patch in place, or has its bytes with other
// metadata; any other file is restored block by block.
func (r *run) restoreFile(ctx context.Context, e manifest.Entry, jobs chan<- blockRun, queue func(manifest.Entry) error) error {
	var l local
	if !r.fresh {
		l.fi, _ = r.dirs.lstat(e.Path)
		l.complete = complete(l.fi, e)
		l.known = r.known(e, l.fi)
	}
	if len(e.Blocks) != 1 || e.Blocks[0].Size >= smallLimit {
		return r.file(ctx, e, jobs, l)
	}
	switch {
	case r.fresh:
		return queue(e)
	case l.complete:
		return r.file(ctx, e, jobs, l)
	case r.opts.InPlace:
		if l.fi != nil && l.fi.Mode().IsRegular() && l.fi.Size() > 0 {
			return r.file(ctx, e, jobs, l)
		}
		return queue(e)
	}
	if done, err := r.sameSmall(e, l); err != nil || done {
		return err
	}
	return queue(e)
}

func (r *run) mkdir(p string) error {
	if p == "." {
		return nil
	}
	fi, err := r.root.Lstat(p)
	if err == nil && fi.IsDir() {
		return nil
	}
	if err == nil {
		if err := r.root.Remove(p); err != nil {
			return fmt.Errorf("restore %s: %w", p, err)
		}
	}
	if err := r.root.Mkdir(p, 0o700); err != nil {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	return nil
}

// clear removes whatever is at p so that a file or symlink can take its
// place (only ever reached with --force or when resuming).
func (r *run) clear(p string) error {
	fi, err := r.root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	if fi.IsDir() {
		err = r.root.RemoveAll(p)
	} else {
		err = r.root.Remove(p)
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", p, err)
	}
	return nil
}

func (r *run) symlink(e manifest.Entry) error {
	if err := r.clear(e.Path); err != nil {
		return err
	}
	if err := r.root.Symlink(e.Target, e.Path); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if uid, gid, ok := r.ownerOf(e); ok {
		if err := r.root.Lchown(e.Path, uid, gid); err != nil {
			return fmt.Errorf("restore %s: %w", e.Path, err)
		}
	}
	// the link's own mtime, set relative to its folder opened through the
	// root, like every other step
	d, name, release, err := r.dirs.at(e.Path)
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	defer release()
	if err := lutimesAt(d, name, e.MTime); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	return nil
}

// local is what DEST has at an entry's path, stat'ed once.
type local struct {
	fi       fs.FileInfo  // nil: nothing
	complete bool         // the entry's file, by size, mtime and mode
	known    *knownBlocks // its blocks, from the backup last restored there
}

// complete reports whether fi (nil: nothing) is already the entry's file
// (kept, or from an interrupted run): same size, mtime and mode.
func complete(fi fs.FileInfo, e manifest.Entry) bool {
	return fi != nil && fi.Mode().IsRegular() && fi.Size() == e.Size &&
		fi.ModTime().Equal(e.MTime) && manifest.ModeFromFS(fi.Mode()) == e.Mode
}

func (r *run) file(ctx context.Context, e manifest.Entry, jobs chan<- blockRun, l local) error {
	if l.complete && !r.opts.VerifyExisting {
		r.res.Kept++
		r.res.Files++
		r.res.Bytes += e.Size
		r.opts.Counters.AddFile(e.Size)
		return nil
	}
	st := &fileState{e: e, complete: l.complete, known: l.known}
	if l.fi != nil && l.fi.Mode().IsRegular() && l.fi.Size() > 0 {
		st.local = r.openLocal(e.Path)
	}
	if st.local != nil && (r.opts.InPlace || l.complete) {
		st.f = r.openInPlace(e.Path, st.local)
	}
	if st.f == nil {
		st.tmp = tmpName(e.Path)
		f, err := r.create(st.tmp)
		if err != nil {
			st.closeLocal()
			return fmt.Errorf("restore %s: %w", e.Path, err)
		}
		st.f = f
	}
	r.mu.Lock()
	r.open[st] = true
	r.mu.Unlock()
	r.res.Files++
	r.res.Bytes += e.Size
	if len(e.Blocks) == 0 {
		return r.finish(st)
	}
	st.remaining.Store(int64(len(e.Blocks)))
	for _, run := range runs(st, e.Blocks) {
		select {
		case jobs <- run:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// download fetches one block alone (a GET) and writes it.
func (r *run) download(ctx context.Context, j blockJob) error {
	want, err := block.ParseCID(j.b.CID)
	if err != nil {
		return fmt.Errorf("restore %s: %w", j.file.e.Path, err)
	}
	// A connection cut in the middle of a block is fetched again (the
	// request itself is retried by the API client); content that does
	// not match its CID is not.
	for attempt := 1; ; attempt++ {
		err = r.fetchOnce(ctx, j, want)
		if err == nil || attempt == 5 || ctx.Err() != nil || final(err) {
			break
		}
		r.opts.Log.Warn("block download cut; fetching it again", "file", j.file.e.Path, "cid", j.b.CID, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("restore %s: block %s: %w", j.file.e.Path, j.b.CID, err)
	}
	return r.blockDone(j.file)
}

// blockDone counts one more block of a file written, and completes the
// file after its last.
func (r *run) blockDone(st *fileState) error {
	if st.remaining.Add(-1) == 0 {
		return r.finish(st)
	}
	return nil
}

var errSize = errors.New("block size differs from the manifest")

// final reports a download failure that asking again does not mend:
// bytes that are not the block's, or an answer of the server.
func final(err error) bool {
	return errors.Is(err, block.ErrMismatch) || errors.Is(err, block.ErrTooLarge) || errors.Is(err, errSize) ||
		errors.Is(err, errPack) || isAPIError(err)
}

// isAPIError reports an answer of the server (4xx, or 5xx after the
// client's own retries): fetching again does not help.
func isAPIError(err error) bool {
	var e interface{ HTTPStatus() int }
	return errors.As(err, &e)
}

func (r *run) fetchOnce(ctx context.Context, j blockJob, want cid.Cid) error {
	start := time.Now()
	rc, err := r.api.GetBlock(ctx, j.b.CID)
	if err != nil {
		return err
	}
	r.elastic.observe(time.Since(start))
	defer rc.Close()
	return r.writeBlock(&wireCounter{r: rc, c: r.opts.Counters}, j, want)
}

// blockWriters buffer the writes of blocks: a write system call per 32 KiB
// copy buffer costs more than the copy itself, and a new 1 MiB buffer for
// each of a thousand blocks cost page faults and collections. packReaders
// read the packs of blocks. Both are kept in banks, not sync.Pools (package
// bank says why): a restore of the shared dataset allocated 90 MB of pack
// readers with a pool.
var (
	blockWriters = bank.New(16, func() *bufio.Writer { return bufio.NewWriterSize(nil, 1<<20) })
	packReaders  = bank.New(32, func() *bufio.Reader { return bufio.NewReaderSize(nil, 256<<10) })
)

// packReader reads a pack of blocks from rc through a banked buffer,
// counting its wire bytes; release gives the buffer back.
func (r *run) packReader(rc io.Reader) (br *bufio.Reader, release func()) {
	br = packReaders.Get()
	br.Reset(&wireCounter{r: rc, c: r.opts.Counters})
	return br, func() { br.Reset(nil); packReaders.Put(br) }
}

// writeBlock decodes a block's wire form from wire, checks it against its
// CID and size, and writes it at its offset.
func (r *run) writeBlock(wire io.Reader, j blockJob, want cid.Cid) error {
	bw := blockWriters.Get()
	bw.Reset(&progressWriter{w: io.NewOffsetWriter(j.file.f, j.off), c: r.opts.Counters})
	defer func() { bw.Reset(nil); blockWriters.Put(bw) }()
	n, err := block.Verify(wire, want, j.b.Size, bw)
	if err == nil && n != j.b.Size {
		err = fmt.Errorf("%w: %d bytes, the manifest says %d", errSize, n, j.b.Size)
	}
	if err == nil {
		err = bw.Flush()
	}
	return err
}

// tmpName is where a file is written before it is complete.
func tmpName(p string) string {
	dir, name := path.Split(p)
	if len(name)+len(partSuffix)+1 > manifest.MaxNameLen {
		return dir + fmt.Sprintf(".ib-%x%s", time.Now().UnixNano(), partSuffix)
	}
	return dir + "." + name + partSuffix
}

// create makes a new file at tmp, removing what an interrupted or forced
// run left there.
func (r *run) create(tmp string) (*os.File, error) {
	if !r.fresh {
		if err := r.clear(tmp); err != nil {
			return nil, err
		}
	}
	d, name, release, err := r.dirs.at(tmp)
	if err != nil {
		return nil, err
	}
	defer release()
	return d.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
}

// finish gives a fully written file its metadata and its name.
func (r *run) finish(st *fileState) error {
	st.closeLocal()
	if st.inPlace() {
		return r.finishInPlace(st)
	}
	r.countPatched(st)
	if err := r.place(st.f, st.tmp, st.e); err != nil {
		return err
	}
	r.mu.Lock()
	delete(r.open, st)
	r.mu.Unlock()
	r.opts.Counters.AddFile(0)
	return nil
}

// place applies a written file's metadata through its descriptor, closes
// it and renames it to its final name. Each step is one system call on the
// file's directory, not a walk from DEST.
func (r *run) place(f *os.File, tmp string, e manifest.Entry) error {
	err := r.fileMeta(f, e)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if !r.fresh {
		if err := r.clear(e.Path); err != nil {
			return err
		}
	}
	d, name, release, err := r.dirs.at(tmp)
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	defer release()
	if err := d.Chtimes(name, e.MTime, e.MTime); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if err := d.Rename(name, path.Base(e.Path)); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	return nil
}

// ownerOf is the owner a restored entry gets, if ib sets one.
func (r *run) ownerOf(e manifest.Entry) (uid, gid int, ok bool) {
	switch {
	case r.opts.Chown != nil:
		return r.opts.Chown.UID, r.opts.Chown.GID, true
	case r.owner:
		return int(e.UID), int(e.GID), true
	}
	return 0, 0, false
}

// mode is the mode a restored entry gets: setuid and setgid only with the
// manifest's owner, the umask taken off with NoSamePermissions.
func (r *run) mode(e manifest.Entry) fs.FileMode {
	m := e.Mode
	if !r.owner {
		m &^= 0o6000
	}
	return manifest.FSMode(m &^ r.umask)
}

// fileMeta applies ownership and mode through the descriptor; chown comes
// first because it clears setuid and setgid.
func (r *run) fileMeta(f *os.File, e manifest.Entry) error {
	if uid, gid, ok := r.ownerOf(e); ok {
		if err := f.Chown(uid, gid); err != nil {
			return err
		}
	}
	return f.Chmod(r.mode(e))
}

// meta applies ownership, mode and mtime; chown comes first because it
// clears setuid and setgid. DEST itself keeps its own mode and owner
// unless this restore made it.
func (r *run) meta(p string, e manifest.Entry) error {
	if p != "." || r.destMeta {
		if uid, gid, ok := r.ownerOf(e); ok {
			if err := r.root.Lchown(p, uid, gid); err != nil {
				return fmt.Errorf("restore %s: %w", e.Path, err)
			}
		}
		if err := r.root.Chmod(p, r.mode(e)); err != nil {
			return fmt.Errorf("restore %s: %w", e.Path, err)
		}
	}
	if err := r.root.Chtimes(p, e.MTime, e.MTime); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	return nil
}

// cleanup removes the partial files of a failed restore: bad bytes never
// stay behind under any name.
func (r *run) cleanup() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for st := range r.open {
		st.f.Close()
		st.closeLocal()
		if !st.inPlace() { // a file patched in place is completed by the next run
			r.root.Remove(st.tmp)
		}
	}
}

type progressWriter struct {
	w io.Writer
	c *progress.Counters
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.c.AddBytes(int64(n))
	return n, err
}

type wireCounter struct {
	r io.Reader
	c *progress.Counters
}

func (w *wireCounter) Read(b []byte) (int, error) {
	n, err := w.r.Read(b)
	w.c.AddWire(int64(n))
	return n, err
}
