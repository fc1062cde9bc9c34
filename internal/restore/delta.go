package restore

import (
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"ib/internal/block"
	"ib/internal/manifest"
	"ib/internal/scan"
)

// A restore over an existing DEST (--force, or a rerun) is a refresh: a
// file whose size, mtime and mode match is kept untouched, and any other
// regular file at an entry's path is read block by block: a block whose
// local bytes at the same offset already hash to the manifest's CID is
// copied from the local file, and only the others are fetched. An
// appended file fetches its tail; a file that lost a block fetches that
// block.

// deltaStats count what a refresh took from DEST and what it fetched.
type deltaStats struct {
	patched       atomic.Int64 // files written with at least one local block
	blocksReused  atomic.Int64
	bytesReused   atomic.Int64
	blocksFetched atomic.Int64
	bytesFetched  atomic.Int64 // block bytes (uncompressed) fetched
	verified      atomic.Int64 // complete-looking files verified whole
}

// countPatched counts a file written with blocks from DEST: patched, or
// (a complete-looking file that was verified and needed nothing) kept.
func (r *run) countPatched(st *fileState) {
	switch reused := st.reused.Load(); {
	case st.complete && reused == int64(len(st.e.Blocks)):
		r.delta.verified.Add(1)
	case reused > 0:
		r.delta.patched.Add(1)
	}
}

// openLocal opens the regular file DEST has at p, for its blocks, or
// returns nil.
func (r *run) openLocal(p string) *os.File {
	f, err := r.dirs.open(p)
	if err != nil {
		return nil
	}
	return f
}

// reuse copies a block from the local file when its bytes there hash to
// the block's CID; ok false means it must be fetched.
func (r *run) reuse(j blockJob) (bool, error) {
	local := j.file.local
	if local == nil {
		return false, nil
	}
	src := j.off
	if k := j.file.known; k != nil {
		var ok bool
		if src, ok = k.source(j.off, j.b, r.moves(j.file)); !ok {
			return false, nil // other bytes, known without reading them
		}
	} else if ok, _ := block.HasCID(local, j.off, j.b.Size, j.b.CID); !ok {
		return false, nil // other bytes, too short or unreadable here: fetched
	}
	if j.file.inPlace() {
		r.opts.Counters.AddBytes(j.b.Size) // already where it belongs
	} else if copyRange(j.file.f, local, src, j.off, j.b.Size) == nil {
		r.opts.Counters.AddBytes(j.b.Size)
	} else {
		w := &progressWriter{w: io.NewOffsetWriter(j.file.f, j.off), c: r.opts.Counters}
		n, err := io.Copy(w, io.NewSectionReader(local, src, j.b.Size))
		if err != nil {
			return false, fmt.Errorf("restore %s: copy a local block: %w", j.file.e.Path, err)
		}
		if n != j.b.Size {
			return false, fmt.Errorf("restore %s: the local file shrank while its blocks were copied", j.file.e.Path)
		}
	}
	j.file.reused.Add(1)
	r.delta.blocksReused.Add(1)
	r.delta.bytesReused.Add(j.b.Size)
	return true, nil
}

// moves reports whether a file's blocks may be copied from other offsets
// of DEST's file than their own: only into a copy (a file patched in
// place could overwrite a block before it is moved), and never under
// --in-place, so that a dry run plans what the restore does.
func (r *run) moves(st *fileState) bool { return !r.opts.InPlace && !st.inPlace() }

// closeLocal closes a file's local source once it is written.
func (st *fileState) closeLocal() {
	if st.local != nil {
		st.local.Close()
		st.local = nil
	}
}

// openInPlace opens DEST's file for writing where it is, or returns nil
// (then a copy is written): not when it has other hard links (patching
// would change them too), nor when it cannot be written.
func (r *run) openInPlace(p string, local *os.File) *os.File {
	fi, err := local.Stat()
	if err != nil || scan.Links(fi) > 1 {
		return nil
	}
	f, err := r.root.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	if gi, err := f.Stat(); err != nil || !os.SameFile(fi, gi) {
		f.Close()
		return nil
	}
	return f
}

// finishInPlace cuts a patched file to its size and gives it its
// metadata; its name is already its own.
func (r *run) finishInPlace(st *fileState) error {
	err := st.f.Truncate(st.e.Size)
	if err == nil {
		err = r.fileMeta(st.f, st.e)
	}
	if cerr := st.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.root.Chtimes(st.e.Path, st.e.MTime, st.e.MTime)
	}
	if err != nil {
		return fmt.Errorf("restore %s: %w", st.e.Path, err)
	}
	r.countPatched(st)
	r.mu.Lock()
	delete(r.open, st)
	r.mu.Unlock()
	r.opts.Counters.AddFile(0)
	return nil
}

// sameSmall handles a small file of one block that DEST has with other
// metadata: when its bytes are the block's, it gets the entry's mode,
// owner and mtime where it is and done is true. A file with other hard
// links is left to be written anew.
func (r *run) sameSmall(e manifest.Entry, l local) (done bool, err error) {
	if l.known != nil && !l.known.holds(0, e.Blocks[0], false) {
		return false, nil
	}
	fi := l.fi
	if fi == nil || !fi.Mode().IsRegular() || fi.Size() != e.Size || scan.Links(fi) > 1 {
		return false, nil
	}
	f, err := r.dirs.open(e.Path)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	if gi, err := f.Stat(); err != nil || !os.SameFile(fi, gi) || (l.known == nil && !hasCID(f, 0, e.Blocks[0])) {
		return false, nil
	}
	if err := r.fileMeta(f, e); err != nil {
		return false, fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if err := r.root.Chtimes(e.Path, e.MTime, e.MTime); err != nil {
		return false, fmt.Errorf("restore %s: %w", e.Path, err)
	}
	r.res.Files++
	r.res.Bytes += e.Size
	r.res.Patched++
	r.delta.blocksReused.Add(1)
	r.delta.bytesReused.Add(e.Size)
	r.opts.Counters.AddBytes(e.Size)
	r.opts.Counters.AddFile(0)
	return true, nil
}
