// Package store is the server's engine: it takes blocks and manifests from
// the HTTP layer, checks them, and keeps the metadata store (Meta) and the block store
// consistent. Its one invariant: no committed manifest references a block
// whose bytes are gone. Bytes are made durable before the row that points at
// them; a commit re-checks every block inside its transaction.
package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"ib/internal/api"
	"ib/internal/block"
	"ib/internal/blockstore"
	"ib/internal/cpugate"
	"ib/internal/manifest"
	"ib/internal/metadb"
)

// Errors the HTTP layer maps to statuses.
var (
	ErrInvalid  = errors.New("invalid input") // 400
	ErrNotFound = errors.New("not found")     // 404
	// ErrUnavailable: the block store did not answer (503, worth a retry).
	ErrUnavailable = errors.New("block store unavailable")
)

// Limits.
const (
	// InlineLimit: blocks smaller than this (uncompressed) live in SQLite.
	InlineLimit = 256 << 10
	// MaxWireSize bounds an uploaded frame: a stored (incompressible) block
	// plus LZ4's framing.
	MaxWireSize = block.MaxSize + block.MaxSize/256 + 64<<10
	// MaxManifestBytes bounds a commit's body.
	MaxManifestBytes = api.MaxManifestBytes
)

// Store is the server's storage engine.
type Store struct {
	// archiveSizes caches the size of archives already computed (a
	// backup never changes; an id is never reused within one database).
	archiveSizes sizeCache
	// lz4 keeps the block sizes of the .tar.lz4 streams sent whole or
	// indexed; bg runs the store's background work (index passes, added
	// bytes) until Close.
	lz4     lz4Index
	bg      bgWork
	addedMu sync.Mutex // one FillAdded at a time
	db      Meta
	blocks  blockstore.Store
	tmpDir  string
	log     *slog.Logger
	now     func() time.Time
	locks   cidLocks
	// seenFresh: a block seen (uploaded or asked about) this recently is
	// not marked seen again by a missing-query (SetSeenFresh).
	seenFresh time.Duration
	totals    totals
	hooks     Hooks
	// cpu: at most one upload per core decodes and hashes at once.
	cpu *cpugate.Gate
}

// New returns a store over an open database and block store; temporary
// files go to tmpDir (on the block store's file system when it is local).
func New(ctx context.Context, db Meta, blocks blockstore.Store, tmpDir string, log *slog.Logger) (*Store, error) {
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	st := &Store{db: db, blocks: blocks, tmpDir: tmpDir, log: log, now: time.Now, archiveSizes: sizeCache{max: maxArchiveSizes},
		cpu: cpugate.New(runtime.GOMAXPROCS(0))}
	st.locks.seed = maphash.MakeSeed()
	if err := st.loadTotals(ctx); err != nil {
		return nil, err
	}
	return st, nil
}

// SetSeenFresh makes missing-queries refresh the last-seen time only of
// blocks not seen for d: with d at most half the GC grace, a block a client
// is told it need not upload stays at least half the grace out of GC's
// reach, and the daily missing-queries of many clients take no write. 0
// refreshes every block asked about.
func (s *Store) SetSeenFresh(d time.Duration) { s.seenFresh = max(d, 0) }

// SetClock replaces the clock of the store and its database (tests move
// time instead of sleeping).
func (s *Store) SetClock(now func() time.Time) {
	s.now = now
	s.db.SetClock(now)
}

// Health reports whether the database and the block store answer.
func (s *Store) Health(ctx context.Context) error {
	if err := s.db.Ping(ctx); err != nil {
		return err
	}
	if err := s.blocks.Check(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Missing returns those of cids that the server does not hold, in the order
// given, and marks the others as just seen.
func (s *Store) Missing(ctx context.Context, cids []string) ([]string, error) {
	bin := make([][]byte, len(cids)) // nil for an inline CID: never missing
	ask := make([][]byte, 0, len(cids))
	for i, c := range cids {
		parsed, err := block.ParseCID(c)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if !block.IsInline(c) {
			bin[i] = parsed.Bytes()
			ask = append(ask, bin[i])
		}
	}
	present, err := s.db.Present(ctx, ask, s.now().Add(-s.seenFresh).UnixNano())
	if err != nil {
		return nil, err
	}
	missing := []string{}
	for i, c := range cids {
		if bin[i] != nil && !present[string(bin[i])] {
			missing = append(missing, c)
		}
	}
	return missing, nil
}

// PutBlock stores a block from its wire form. It refuses (ErrInvalid) a body
// that is not one LZ4 frame, that decodes to more than block.MaxSize bytes,
// or whose content's CID is not cidStr. Putting a block again is harmless.
// size is the body's length if known (a request's Content-Length), else -1:
// a body known to be large goes straight to a temporary file.
func (s *Store) PutBlock(ctx context.Context, cidStr string, body io.Reader, size int64) error {
	slot := s.cpu.Slot(ctx, body)
	br, release := bufferedBody(slot)
	defer release()
	rec, sp, err := s.receiveIn(slot, cidStr, br, size)
	if sp != nil {
		defer sp.close()
	}
	if err != nil {
		return err
	}
	if rec.Inline != nil {
		return s.recordBlock(ctx, rec)
	}
	return s.offload(ctx, cidStr, rec, sp)
}

// PutPack stores a pack of blocks (block.AppendFrame): each is checked like
// a PutBlock, and the rows of the small ones are written in one
// transaction at the end. A bad block stops the pack (the ones before it
// are stored: harmless, content-addressed).
func (s *Store) PutPack(ctx context.Context, body io.Reader) (int, error) {
	slot := s.cpu.Slot(ctx, body)
	br, release := bufferedBody(slot)
	defer release()
	var inline []metadb.Block
	n := 0
	for {
		cidStr, size, err := block.ReadFrameHeader(br, MaxWireSize)
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, fmt.Errorf("%w: block %d of the pack: %w", ErrInvalid, n+1, err)
		}
		rec, sp, err := s.receiveIn(slot, cidStr, io.LimitReader(br, size), size)
		if err == nil && rec.Inline == nil {
			err = s.offload(ctx, cidStr, rec, sp)
		} else if err == nil {
			inline = append(inline, rec)
		}
		if sp != nil {
			sp.close()
		}
		if err != nil {
			return n, err
		}
		n++
	}
	if len(inline) > 0 {
		added, err := s.db.PutBlocks(ctx, inline)
		if err != nil {
			return 0, err
		}
		for i, a := range added {
			if a {
				s.blockAdded(inline[i])
			}
		}
	}
	return n, nil
}

// receiveIn receives a wire form (see receive) with a place in the CPU
// gate, which slot gives up while it waits for the body and which is
// given back before the block is stored.
func (s *Store) receiveIn(slot *cpugate.Slot, cidStr string, body io.Reader, wireLen int64) (metadb.Block, *spool, error) {
	if err := slot.Enter(); err != nil {
		return metadb.Block{}, nil, err
	}
	defer slot.Leave()
	return s.receive(cidStr, body, wireLen)
}

// receive reads and checks one wire form of wireLen bytes (-1: not known)
// from a buffered body; a small
// block comes back with its bytes in rec.Inline, a large one with its bytes
// in the spool.
func (s *Store) receive(cidStr string, body io.Reader, wireLen int64) (metadb.Block, *spool, error) {
	c, err := block.ParseCID(cidStr)
	if err != nil {
		return metadb.Block{}, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if block.IsInline(cidStr) {
		return metadb.Block{}, nil, fmt.Errorf("%w: block %.80s: an inline CID carries its bytes: nothing to upload", ErrInvalid, cidStr)
	}
	sp, err := newSpool(s.tmpDir, wireLen)
	if err != nil {
		return metadb.Block{}, sp, fmt.Errorf("block %s: temp file: %w", cidStr, err)
	}
	tee := io.TeeReader(body, sp)
	size, err := block.Verify(tee, c, block.MaxSize, nil)
	if err != nil {
		if errors.Is(err, block.ErrMismatch) || errors.Is(err, block.ErrBadWire) || errors.Is(err, block.ErrTooLarge) {
			return metadb.Block{}, sp, fmt.Errorf("%w: block %s: %w", ErrInvalid, cidStr, err)
		}
		return metadb.Block{}, sp, fmt.Errorf("block %s: %w", cidStr, err)
	}
	if extra, err := io.Copy(io.Discard, tee); err != nil {
		return metadb.Block{}, sp, fmt.Errorf("block %s: %w", cidStr, err)
	} else if extra > 0 {
		return metadb.Block{}, sp, fmt.Errorf("%w: block %s: %d bytes after the LZ4 frame", ErrInvalid, cidStr, extra)
	}
	if err := sp.finish(); err != nil {
		return metadb.Block{}, sp, fmt.Errorf("block %s: temp file: %w", cidStr, err)
	}
	rec := metadb.Block{CID: c.Bytes(), Size: size, WireSize: sp.n}
	if size < InlineLimit {
		if sp.f == nil {
			rec.Inline = bytes.Clone(sp.mem.Bytes())
		} else if rec.Inline, err = os.ReadFile(sp.f.Name()); err != nil {
			return metadb.Block{}, sp, fmt.Errorf("block %s: %w", cidStr, err)
		}
		if rec.Inline == nil {
			rec.Inline = []byte{} // inline, even if empty
		}
	}
	return rec, sp, nil
}

// offload stores a large block's bytes in the block store, then its row.
// The row comes after the bytes are durable: a crash in between leaves an
// orphan object, never a row without bytes. The CID's lock keeps garbage
// collection from deleting the object between the two.
func (s *Store) offload(ctx context.Context, cidStr string, rec metadb.Block, sp *spool) error {
	unlock, err := s.lockCIDs(ctx, []string{cidStr}, false)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.storeObject(ctx, cidStr, sp); err != nil {
		return err
	}
	return s.recordBlock(ctx, rec)
}

func (s *Store) storeObject(ctx context.Context, key string, sp *spool) error {
	var err error
	switch fp, ok := s.blocks.(blockstore.FilePutter); {
	case sp.f == nil:
		err = s.blocks.Put(ctx, key, bytes.NewReader(sp.mem.Bytes()), sp.n)
	case ok:
		err = fp.PutFile(ctx, key, sp.f) // closes it
	default:
		if _, err = sp.f.Seek(0, io.SeekStart); err == nil {
			err = s.blocks.Put(ctx, key, sp.f, sp.n)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: block %s: %w", ErrUnavailable, key, err)
	}
	return nil
}

func (s *Store) recordBlock(ctx context.Context, rec metadb.Block) error {
	added, err := s.db.PutBlocks(ctx, []metadb.Block{rec})
	if err != nil {
		return err
	}
	if added[0] {
		s.blockAdded(rec)
	}
	return nil
}

// MaxFetch bounds the blocks of one WriteBlocks.
const MaxFetch = 1000

// WriteBlocks writes the wire forms of cids to w as a pack (block.AppendFrame),
// in the order given. Every CID is checked to exist before anything is
// written, so that a missing one is a clean ErrNotFound naming it.
func (s *Store) WriteBlocks(ctx context.Context, cids []string, w io.Writer) error {
	if len(cids) == 0 || len(cids) > MaxFetch {
		return fmt.Errorf("%w: want 1 to %d CIDs, got %d", ErrInvalid, MaxFetch, len(cids))
	}
	bin := make([][]byte, len(cids))
	ask := make([][]byte, 0, len(cids))
	made := map[string]metadb.Block{} // the frames of inline CIDs
	for i, c := range cids {
		parsed, err := block.ParseCID(c)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		bin[i] = parsed.Bytes()
		if wire, ok := inlineWire(parsed); ok {
			made[string(bin[i])] = metadb.Block{Inline: wire, WireSize: int64(len(wire))}
		} else {
			ask = append(ask, bin[i])
		}
	}
	rows, err := s.db.InlineBlocks(ctx, ask)
	if err != nil {
		return err
	}
	maps.Copy(rows, made)
	for i, c := range cids {
		if _, ok := rows[string(bin[i])]; !ok {
			return fmt.Errorf("block %s: %w", c, ErrNotFound)
		}
	}
	bw := bufWriters.Get()
	bw.Reset(w)
	defer func() { bw.Reset(nil); bufWriters.Put(bw) }()
	var hdr []byte
	for i, c := range cids {
		rec := rows[string(bin[i])]
		if rec.Inline != nil {
			hdr = block.AppendFrame(hdr[:0], c, rec.Inline)
			if _, err := bw.Write(hdr); err != nil {
				return err
			}
			continue
		}
		rc, err := s.blocks.Get(ctx, c)
		if err != nil {
			s.log.Error("block recorded but not readable from the block store", "cid", c, "store", s.blocks.String(), "err", err)
			return fmt.Errorf("%w: block %s: %w", ErrUnavailable, c, err)
		}
		hdr = block.AppendFrameHeader(hdr[:0], c, rec.WireSize)
		_, err = bw.Write(hdr)
		if err == nil {
			var n int64
			n, err = io.Copy(bw, rc)
			if err == nil && n != rec.WireSize {
				err = fmt.Errorf("block %s: %d bytes in the block store, %d recorded", c, n, rec.WireSize)
			}
		}
		rc.Close()
		if err != nil {
			return err
		}
	}
	return bw.Flush()
}

// OpenBlock returns a block's wire form and its length.
func (s *Store) OpenBlock(ctx context.Context, cidStr string) (io.ReadCloser, int64, error) {
	c, err := block.ParseCID(cidStr)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if wire, ok := inlineWire(c); ok {
		return io.NopCloser(bytes.NewReader(wire)), int64(len(wire)), nil
	}
	rec, err := s.db.Block(ctx, c.Bytes())
	if errors.Is(err, metadb.ErrNotFound) {
		return nil, 0, fmt.Errorf("block %s: %w", cidStr, ErrNotFound)
	}
	if err != nil {
		return nil, 0, err
	}
	if rec.Inline != nil {
		return io.NopCloser(bytes.NewReader(rec.Inline)), rec.WireSize, nil
	}
	rc, err := s.blocks.Get(ctx, cidStr)
	if errors.Is(err, blockstore.ErrNotFound) {
		// A row without bytes breaks the invariant: say so loudly.
		s.log.Error("block recorded but not in the block store", "cid", cidStr, "store", s.blocks.String(), "err", err)
		return nil, 0, fmt.Errorf("block %s: %w", cidStr, err)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("%w: block %s: %w", ErrUnavailable, cidStr, err)
	}
	return rc, rec.WireSize, nil
}

// CommitResult is the outcome of a commit.
type CommitResult struct {
	ID        int64
	CreatedAt time.Time     // of the backup, when one was made or existed
	Existed   bool          // an earlier commit with the same idempotency key
	Missing   []string      // blocks to upload before committing again; no backup was made
	Backup    metadb.Backup // the backup made or found (none when Missing)
	// Reused counts the entries whose blocks were the parent backup's
	// (taken with its references, not looked up).
	Reused int64
}

// Commit reads a manifest commit ({"tags", "labels", "entries",
// "idempotency_key"}) from body and records it as a staged backup while it
// arrives (see stager): the body is validated entry by entry and spooled
// to a temporary file, which the stage reads as it grows. Only a body that
// ended and was valid as a whole becomes a backup; any other leaves the
// visible data as it was (its stage is dropped, hidden, and purged).
func (s *Store) Commit(ctx context.Context, body io.Reader) (CommitResult, error) {
	tmp, err := os.CreateTemp(s.tmpDir, "commit-*")
	if err != nil {
		return CommitResult{}, fmt.Errorf("commit: temp file: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	in := &commitIn{feed: newFeed(tmp), now: s.now}
	rec, count, err := in.read(ctx, s.db, body)
	if errors.Is(err, errSizeMismatch) {
		return CommitResult{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err != nil {
		return CommitResult{}, err
	}
	id, existed := rec.id, rec.existed
	res := CommitResult{ID: id, Existed: existed, Missing: rec.missing, Reused: rec.reused}
	if len(rec.missing) == 0 {
		b, err := s.db.Get(ctx, id)
		if err != nil {
			return CommitResult{}, err
		}
		res.CreatedAt, res.Backup = b.CreatedAt, b
		if !existed {
			s.backupAdded(b)
			s.background(func(ctx context.Context) { s.fillAdded(ctx, id) })
			s.log.Info("backup committed", "id", id, "tags", in.tags.String(), "entries", count,
				"bytes", b.Bytes, "reused", rec.reused, "took", s.now().Sub(in.ended).Round(time.Millisecond))
		}
	}
	return res, nil
}

// fillAdded records what a backup added (one at a time: each is a pass
// over its references).
func (s *Store) fillAdded(ctx context.Context, id int64) {
	s.addedMu.Lock()
	defer s.addedMu.Unlock()
	if _, err := s.db.FillAdded(ctx, id); err != nil && ctx.Err() == nil {
		s.log.Warn("added bytes not recorded", "backup", id, "err", err)
	}
}

// Backup returns one backup's summary.
func (s *Store) Backup(ctx context.Context, id int64) (metadb.Backup, error) {
	return wrapNotFound(s.db.Get(ctx, id))
}

// Latest returns the newest backup whose tags equal tags.
func (s *Store) Latest(ctx context.Context, tags manifest.Tags) (metadb.Backup, error) {
	return wrapNotFound(s.db.Latest(ctx, tags))
}

// List returns the backups matching filter, newest first.
func (s *Store) List(ctx context.Context, filter manifest.Tags) ([]metadb.Backup, error) {
	return s.db.List(ctx, filter)
}

// Delete hides a backup at once; the next GC removes its rows and the
// blocks only it used.
func (s *Store) Delete(ctx context.Context, id int64) (metadb.Backup, error) {
	b, err := s.markDeleting(ctx, id)
	if err != nil {
		return metadb.Backup{}, err
	}
	s.log.Info("backup deleted", "id", id)
	return b, nil
}

func (s *Store) markDeleting(ctx context.Context, id int64) (metadb.Backup, error) {
	b, err := s.db.Get(ctx, id)
	if err == nil {
		err = s.db.MarkDeleting(ctx, id)
	}
	if errors.Is(err, metadb.ErrNotFound) {
		return metadb.Backup{}, fmt.Errorf("backup %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return metadb.Backup{}, err
	}
	s.backupRemoved(ctx, b)
	return b, nil
}

// WriteManifest streams a backup's manifest as JSON, entries last, reading
// the entries page by page.
func (s *Store) WriteManifest(ctx context.Context, id int64, w io.Writer) error {
	b, err := s.Backup(ctx, id)
	if err != nil {
		return err
	}
	head, err := json.Marshal(struct {
		ID        int64         `json:"id"`
		Tags      manifest.Tags `json:"tags"`
		Labels    manifest.Tags `json:"labels,omitempty"`
		CreatedAt time.Time     `json:"created_at"`
	}{b.ID, b.Tags, b.Labels, b.CreatedAt})
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.Write(head[:len(head)-1])
	bw.WriteString(`,"entries":[`)
	enc := json.NewEncoder(bw)
	after := int64(-1)
	n := 0
	for {
		page, last, err := s.db.Entries(ctx, id, after, 2000)
		if err != nil {
			return err
		}
		for i := range page {
			if n > 0 {
				bw.WriteByte(',')
			}
			if err := enc.Encode(&page[i]); err != nil {
				return err
			}
			n++
		}
		if len(page) < 2000 {
			break
		}
		after = last
	}
	if int64(n) != b.Entries {
		return fmt.Errorf("backup %d: deleted while its manifest was read", id)
	}
	bw.WriteString("]}\n")
	return bw.Flush()
}

func parseTagSet(s string) (manifest.Tags, error) {
	var t manifest.Tags
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return nil, fmt.Errorf("tag set %q: %w", s, err)
	}
	return t, nil
}

func wrapNotFound(b metadb.Backup, err error) (metadb.Backup, error) {
	if errors.Is(err, metadb.ErrNotFound) {
		return b, fmt.Errorf("backup: %w", ErrNotFound)
	}
	return b, err
}

// BlockStore names the block store ("local DIR", "s3 HOST/BUCKET/PREFIX"),
// for the logs.
func (s *Store) BlockStore() string { return s.blocks.String() }

// BlockStoreKind is the kind of the block store alone ("local", "s3"): what
// anonymous clients may learn of it.
func (s *Store) BlockStoreKind() string {
	kind, _, _ := strings.Cut(s.blocks.String(), " ")
	return kind
}

// inlineWire returns the wire form of the bytes an identity CID (checked
// by ParseCID) carries, so that it is served like a stored block; ok is
// false for any other CID.
func inlineWire(c cid.Cid) (wire []byte, ok bool) {
	data, ok := block.InlineData(c)
	if !ok {
		return nil, false
	}
	wire, err := block.Encode(data, block.FastLevel)
	return wire, err == nil
}
