package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"ib/internal/block"
	"ib/internal/manifest"
	"ib/internal/scan"
)

// A live node writes while it is backed up: files grow, are rewritten and
// vanish (a compaction removes what it merged). Each file is read with a
// stat of the open file before and after; a file whose stamp moved is read
// again, up to ChangeRetries times, and then stored as last read, marked
// ChangedDuringRead. A file removed before it was read is left out.

// Test hooks: beforeOpen is called before a file is opened to be read,
// afterRead after its bytes are read and before its stat is taken again.
var beforeOpen, afterRead func(abs string)

// errVanished reports a file removed between the walk and its read.
var errVanished = errors.New("file removed during the backup")

// readOnce is one read of a file: its blocks, as of the stat taken when it
// was opened, and whether that stat still held when the read ended.
type readOnce struct {
	info   fs.FileInfo // fstat before the read
	blocks []manifest.Block
	size   int64
	stable bool
	// data is the content of a file of at most keepSmall bytes, kept from
	// this read so that its upload neither opens nor hashes it again.
	data []byte
	// plain is a sealed file's own size (the blocks are its age file's).
	plain int64
}

// keepSmall is the largest file whose bytes the read keeps for the
// upload. Small enough that the queues between reading and uploading
// (at most ~12,000 blocks) hold under 50 MiB of them.
const keepSmall = 4 << 10

// readFile hashes a walked file into j.entry, reading it again while it
// changes under the read. It returns errVanished for a file that is gone.
func (r *run) readFile(ctx context.Context, j *job, buf []byte) error {
	seal := r.opts.Encrypt.Wants(j.entry.Path)
	for attempt := 0; ; attempt++ {
		var rd readOnce
		var err error
		if seal {
			rd, err = r.sealOnce(ctx, j.entry.Path, j.item.Abs, buf)
		} else {
			rd, err = r.hashFile(ctx, j.item.Abs, buf, j.hint)
		}
		if err != nil {
			return err
		}
		r.setContent(&j.entry, rd)
		j.data = rd.data
		if seal {
			j.entry.Encryption, j.entry.PlainSize = manifest.EncryptionAge, rd.plain
		}
		if rd.stable {
			return nil
		}
		if attempt >= r.retries() {
			j.entry.ChangedDuringRead = true
			return nil
		}
		r.rereads.Add(1)
		r.opts.Log.Debug("file changed while read; reading it again", "path", j.entry.Path, "attempt", attempt+1)
	}
}

// setContent gives an entry the metadata of the stat its content was read
// under.
func (r *run) setContent(e *manifest.Entry, rd readOnce) {
	fresh := (&scan.Item{Path: e.Path, Type: manifest.TypeFile, Info: rd.info}).Entry()
	e.Mode, e.MTime, e.UID, e.GID = fresh.Mode, fresh.MTime, fresh.UID, fresh.GID
	e.Blocks, e.Size = rd.blocks, rd.size
}

func (r *run) retries() int {
	if r.opts.ChangeRetries < 0 {
		return 0
	}
	return r.opts.ChangeRetries
}

// regularFile is a walked file opened for reading: an *os.File, or on
// Linux an fdFile (fewer system calls per file).
type regularFile interface {
	io.Reader
	io.ReaderAt
	io.Closer
	Stat() (fs.FileInfo, error)
	Name() string
}

// openRegular opens a walked file for reading, refusing anything that is
// no longer a regular file (a path swapped for a symlink must not lead the
// read out of the folder).
func openRegular(abs string) (regularFile, fs.FileInfo, error) {
	if beforeOpen != nil {
		beforeOpen(abs)
	}
	f, err := openNoFollow(abs)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, errSymlink) {
		return nil, nil, errVanished // gone, or a symlink now stands where the file was
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", abs, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("read %s: %w", abs, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, errVanished // replaced by something that is not a file
	}
	return f, fi, nil
}

// hashFile cuts a file into blocks and names them, reading as many bytes
// as its stat said when opened. hint, if any, is what its previous version
// was cut into (see cutKnownFile).
func (r *run) hashFile(ctx context.Context, abs string, buf []byte, hint []manifest.Block) (readOnce, error) {
	f, pre, err := openRegular(abs)
	if err != nil {
		return readOnce{}, err
	}
	defer f.Close()
	rd := readOnce{info: pre}
	size := pre.Size()
	var short bool
	if r.cuts(size) {
		each := func(blk manifest.Block) {
			rd.blocks = append(rd.blocks, blk)
			r.opts.Counters.AddBytes(blk.Size)
		}
		if len(hint) > 0 {
			rd.size, err = r.cutKnownFile(ctx, f, size, hint, each)
		} else {
			rd.size, err = r.cutFile(ctx, f, size, func(_ []byte, blk manifest.Block) error { each(blk); return nil })
		}
		short = rd.size < size // it shrank: the stamp tells
	} else {
		short, err = r.hashFixed(ctx, f, abs, size, buf, &rd)
	}
	if err != nil {
		return readOnce{}, err
	}
	// Counters count logical bytes per entry in count(); take back what
	// hashing added so a file is not counted twice.
	r.opts.Counters.AddBytes(-rd.size)
	if afterRead != nil {
		afterRead(abs)
	}
	post, err := f.Stat()
	if err != nil {
		return readOnce{}, fmt.Errorf("read %s: %w", abs, err)
	}
	rd.stable = !short && scan.StampOf(pre) == scan.StampOf(post)
	if rd.size > 0 && rd.size <= keepSmall && int64(len(buf)) >= rd.size && len(rd.blocks) == 1 {
		data := buf[:rd.size] // read in one piece: buf holds it all
		if rd.size <= block.InlineMax && !r.opts.NoInline {
			rd.blocks[0].CID = block.Inline(data).String() // nothing to upload
		} else {
			rd.data = bytes.Clone(data)
		}
	}
	return rd, nil
}

// hashFixed reads up to size bytes of f through buf into fixed-size
// blocks; short reports a file that ended early.
func (r *run) hashFixed(ctx context.Context, f io.Reader, name string, size int64, buf []byte, rd *readOnce) (short bool, err error) {
	bs := r.fixedSize()
	h := block.NewHasher()
	var inBlock int64
	for rd.size < size {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		want := min(int64(len(buf)), size-rd.size, bs-inBlock)
		n, err := io.ReadFull(f, buf[:want])
		h.Write(buf[:n])
		inBlock += int64(n)
		rd.size += int64(n)
		r.readB.Add(int64(n))
		r.opts.Counters.AddBytes(int64(n))
		if inBlock == bs || (err != nil && inBlock > 0) || (rd.size == size && inBlock > 0) {
			rd.blocks = append(rd.blocks, manifest.Block{CID: block.FromDigest(h.Sum(nil)).String(), Size: inBlock})
			h.Reset()
			inBlock = 0
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return true, nil // it shrank: the stamp tells
		}
		if err != nil {
			return false, fmt.Errorf("read %s: %w", name, err)
		}
	}
	return false, nil
}
