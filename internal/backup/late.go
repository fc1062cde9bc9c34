package backup

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	"ib/internal/block"
	"ib/internal/ctxio"
	"ib/internal/manifest"
	"ib/internal/scan"
)

// Late changes: a file read consistently can still change before its
// blocks are uploaded (the upload reads it again). Its bytes then no
// longer hash to the CIDs the manifest already holds: the upload sets the
// file aside instead of failing the backup, and after the last upload the
// late pass reads each such file once more, copying every block it hashes
// aside and uploading that copy, so what is stored is exactly what was
// read, and rewrites the spooled manifest with the new entries.

// lateSet collects the files whose bytes changed after they were hashed.
type lateSet struct {
	mu    sync.Mutex
	paths map[string]bool
}

func (l *lateSet) add(path string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.paths == nil {
		l.paths = map[string]bool{}
	}
	l.paths[path] = true
}

func (l *lateSet) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.paths)
}

// fixLate reads the late files again and writes the manifest anew into a
// fresh spool, which it returns with its SHA-256 (for the cache).
func (r *run) fixLate(ctx context.Context, spool *os.File) (*os.File, []byte, error) {
	r.opts.Log.Info("files changed after they were read; reading them again", "count", r.late.len())
	return r.rewriteSpool(ctx, spool, &rewrite{late: r.late.paths})
}

// reseal encrypts the files named again (their old blocks are gone from
// the server) and rewrites the manifest as fixLate does.
func (r *run) reseal(ctx context.Context, spool *os.File, paths map[string]bool) (*os.File, []byte, error) {
	r.opts.Log.Warn("the server lacks blocks of unchanged encrypted files; encrypting them again", "count", len(paths))
	return r.rewriteSpool(ctx, spool, &rewrite{reseal: paths})
}

// rewriteSpool writes the spool's entries, as x changes them, into a fresh
// unlinked spool, and returns it with its SHA-256.
func (r *run) rewriteSpool(ctx context.Context, spool *os.File, x *rewrite) (*os.File, []byte, error) {
	fi, err := spool.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("manifest spool: %w", err)
	}
	out, err := os.CreateTemp("", "ib-manifest-*")
	if err != nil {
		return nil, nil, fmt.Errorf("manifest spool: %w", err)
	}
	os.Remove(out.Name()) // unlinked: gone with the process
	sum := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(out, sum), 256<<10)
	mr := spoolEntries(spool, fi.Size())
	x.r, x.enc, x.w, x.fixed, x.gone = r, json.NewEncoder(bw), bw, map[string]*manifest.Entry{}, map[string]string{}
	for {
		e, err := mr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			out.Close()
			return nil, nil, fmt.Errorf("manifest spool: %w", err)
		}
		if err := x.entry(ctx, e); err != nil {
			out.Close()
			return nil, nil, err
		}
	}
	if err := bw.Flush(); err != nil {
		out.Close()
		return nil, nil, fmt.Errorf("manifest spool: %w", err)
	}
	return out, sum.Sum(nil), nil
}

// rewrite copies the manifest's entries, replacing the late files' (read
// again) or the files to reseal (encrypted again).
type rewrite struct {
	late   map[string]bool
	reseal map[string]bool
	r      *run
	enc    *json.Encoder
	w      io.Writer
	n      int
	fixed  map[string]*manifest.Entry // late file path → its new entry
	gone   map[string]string          // vanished file → the hard link that took its place ("" none yet)
}

func (x *rewrite) entry(ctx context.Context, e *manifest.Entry) error {
	switch {
	case e.Type == manifest.TypeFile && x.reseal[e.Path]:
		old := *e
		if err := x.r.sealAgain(ctx, e); err != nil {
			return err
		}
		x.fixed[e.Path] = e
		x.r.recount(&old, e)
	case e.Type == manifest.TypeFile && x.late[e.Path]:
		old := *e
		vanished, err := x.r.copyFile(ctx, e)
		if err != nil {
			return err
		}
		if vanished {
			x.gone[e.Path] = ""
			x.r.res.Vanished++
			x.r.uncount(&old)
			return nil
		}
		x.fixed[e.Path] = e
		x.r.recount(&old, e)
	case e.Type == manifest.TypeHardlink:
		if nf, ok := x.fixed[e.Target]; ok {
			old := *e
			e.Mode, e.MTime, e.UID, e.GID, e.Size, e.Blocks, e.ChangedDuringRead = nf.Mode, nf.MTime, nf.UID, nf.GID, nf.Size, nf.Blocks, nf.ChangedDuringRead
			e.Encryption, e.PlainSize = nf.Encryption, nf.PlainSize
			x.r.recount(&old, e)
		} else if heir, ok := x.gone[e.Target]; ok {
			if heir != "" {
				e.Target = heir
				break
			}
			// The first name is gone: this one becomes the file.
			old := *e
			e.Type, e.Target = manifest.TypeFile, ""
			vanished, err := x.r.copyFile(ctx, e)
			if err != nil {
				return err
			}
			if vanished {
				x.r.uncount(&old)
				return nil
			}
			x.gone[old.Target] = e.Path
			x.fixed[old.Target] = e
			x.r.recount(&old, e)
		}
	}
	if x.n > 0 {
		x.w.Write([]byte{','})
	}
	x.n++
	if err := x.enc.Encode(e); err != nil {
		return fmt.Errorf("manifest spool: %w", err)
	}
	return nil
}

// copyFile reads a file once more, block by block, each block copied
// aside as it is hashed and uploaded from the copy when the server lacks
// it; it reads again while the file changes under the read, up to
// ChangeRetries times. vanished reports a file that is gone.
func (r *run) copyFile(ctx context.Context, e *manifest.Entry) (vanished bool, err error) {
	abs := r.abs(e.Path)
	tmp, err := os.CreateTemp("", "ib-block-*")
	if err != nil {
		return false, fmt.Errorf("block copy: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	for attempt := 0; ; attempt++ {
		rd, err := r.copyOnce(ctx, abs, e.Path, tmp)
		if errors.Is(err, errVanished) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		r.setContent(e, rd)
		e.ChangedDuringRead = false
		if rd.stable {
			return false, nil
		}
		if attempt >= r.retries() {
			e.ChangedDuringRead = true
			return false, nil
		}
		r.rereads.Add(1)
	}
}

func (r *run) copyOnce(ctx context.Context, abs, path string, tmp *os.File) (readOnce, error) {
	f, pre, err := openRegular(abs)
	if err != nil {
		return readOnce{}, err
	}
	defer f.Close()
	rd := readOnce{info: pre}
	size := pre.Size()
	if r.cuts(size) {
		rd.size, err = r.cutFile(ctx, f, size, func(b []byte, blk manifest.Block) error {
			if _, err := tmp.WriteAt(b, 0); err != nil {
				return fmt.Errorf("block copy: %w", err)
			}
			if err := r.uploadCopy(ctx, tmp, path, blk); err != nil {
				return err
			}
			rd.blocks = append(rd.blocks, blk)
			return nil
		})
	} else {
		err = r.copyFixed(ctx, f, path, tmp, size, &rd)
	}
	if err != nil {
		return readOnce{}, err
	}
	if afterRead != nil {
		afterRead(abs)
	}
	post, err := f.Stat()
	if err != nil {
		return readOnce{}, fmt.Errorf("read %s: %w", abs, err)
	}
	rd.stable = rd.size == size && scan.StampOf(pre) == scan.StampOf(post)
	return rd, nil
}

// copyFixed copies up to size bytes of f into fixed-size blocks, one at
// a time through tmp, uploading each the server lacks.
func (r *run) copyFixed(ctx context.Context, f regularFile, path string, tmp *os.File, size int64, rd *readOnce) error {
	for rd.size < size {
		want := min(r.fixedSize(), size-rd.size)
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("block copy: %w", err)
		}
		h := block.NewHasher()
		n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(ctxio.Reader(ctx, f), want))
		r.readB.Add(n)
		if err != nil {
			return fmt.Errorf("read %s: %w", f.Name(), err)
		}
		if n == 0 {
			return nil // it shrank: the stamp tells
		}
		b := manifest.Block{CID: block.FromDigest(h.Sum(nil)).String(), Size: n}
		if err := r.uploadCopy(ctx, tmp, path, b); err != nil {
			return err
		}
		rd.blocks = append(rd.blocks, b)
		rd.size += n
		if n < want {
			return nil
		}
	}
	return nil
}

// uploadCopy uploads a block copied to tmp if the server lacks it.
func (r *run) uploadCopy(ctx context.Context, tmp *os.File, path string, b manifest.Block) error {
	missing, err := r.api.Missing(ctx, []string{b.CID})
	if err != nil {
		return fmt.Errorf("ask server for missing blocks: %w", err)
	}
	if !slices.Contains(missing, b.CID) {
		return nil
	}
	s := source{cid: b.CID, path: path, abs: tmp.Name(), off: 0, size: b.Size}
	if s.size < packLimit {
		err = r.uploadPack(ctx, []source{s})
	} else {
		err = r.upload(ctx, s)
	}
	if errors.Is(err, ErrFileChanged) { // the copy is ours alone: not a change
		return fmt.Errorf("upload the copy of %s: %w", path, errors.Unwrap(err))
	}
	return err
}
