package backup

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"ib/internal/manifest"
	"ib/internal/scan"
)

// Renames: a file at a new path whose inode, size and mtime equal those of
// a file of the previous backup takes that file's blocks without being
// read (a node that moves a folder, a snapshot rotated by rename). The
// inodes are kept by the manifest cache, beside the manifest, never in
// the manifest: one record per file of the cached backup, sorted by
// inode, with the offset of its entry in the cached manifest.

// inodeRec is one file of the cached backup.
type inodeRec struct {
	dev, ino uint64
	size     int64
	mtime    int64 // ns
	off      int64 // of its entry in the cached manifest
}

const inodeRecSize = 40

func cmpInode(a, b inodeRec) int { return cmp.Or(cmp.Compare(a.dev, b.dev), cmp.Compare(a.ino, b.ino)) }

// encodeInodes sorts recs and encodes them.
func encodeInodes(recs []inodeRec) []byte {
	slices.SortFunc(recs, cmpInode)
	out := make([]byte, 0, len(recs)*inodeRecSize)
	for _, r := range recs {
		out = binary.LittleEndian.AppendUint64(out, r.dev)
		out = binary.LittleEndian.AppendUint64(out, r.ino)
		out = binary.LittleEndian.AppendUint64(out, uint64(r.size))
		out = binary.LittleEndian.AppendUint64(out, uint64(r.mtime))
		out = binary.LittleEndian.AppendUint64(out, uint64(r.off))
	}
	return out
}

// inodeIndex finds the cached backup's files by inode.
type inodeIndex struct {
	data     []byte // sorted records
	manifest *os.File
}

func (x *inodeIndex) rec(i int) inodeRec {
	b := x.data[i*inodeRecSize:]
	return inodeRec{
		dev: binary.LittleEndian.Uint64(b), ino: binary.LittleEndian.Uint64(b[8:]),
		size: int64(binary.LittleEndian.Uint64(b[16:])), mtime: int64(binary.LittleEndian.Uint64(b[24:])),
		off: int64(binary.LittleEndian.Uint64(b[32:])),
	}
}

// find returns the blocks of the cached backup's file with e's inode,
// size and mtime, or nil.
func (x *inodeIndex) find(it *scan.Item, e *manifest.Entry) []manifest.Block {
	if x == nil || e.Size == 0 {
		return nil
	}
	st := scan.StampOf(it.Info)
	if st.Ino == 0 {
		return nil
	}
	want := inodeRec{dev: st.Dev, ino: st.Ino}
	n := len(x.data) / inodeRecSize
	lo, hi := 0, n
	for lo < hi {
		m := (lo + hi) / 2
		if cmpInode(x.rec(m), want) < 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == n {
		return nil
	}
	r := x.rec(lo)
	if cmpInode(r, want) != 0 || r.size != e.Size || r.mtime != e.MTime.UnixNano() {
		return nil
	}
	var old manifest.Entry
	if err := json.NewDecoder(io.NewSectionReader(x.manifest, r.off, 1<<30)).Decode(&old); err != nil {
		return nil
	}
	// The record is only a pointer: the entry itself must agree.
	if old.Type != manifest.TypeFile || old.ChangedDuringRead || old.Encryption != "" || old.Size != e.Size || !old.MTime.Equal(e.MTime) ||
		manifest.CheckPath(old.Path) != nil {
		return nil
	}
	var sum int64
	for _, b := range old.Blocks {
		sum += b.Size
	}
	if sum != old.Size {
		return nil
	}
	return old.Blocks
}

// inodesName is the inode file beside a cached manifest.
func inodesName(manifestName string) string {
	return strings.TrimSuffix(manifestName, ".json") + ".ino"
}

// loadInodes reads the inode file of the cached manifest f, if any.
func loadInodes(f *os.File) *inodeIndex {
	data, err := os.ReadFile(inodesName(f.Name()))
	if err != nil || len(data)%inodeRecSize != 0 || len(data) == 0 {
		return nil
	}
	return &inodeIndex{data: data, manifest: f}
}

// storeInodes writes the inode file of a cached manifest.
func storeInodes(manifestName string, recs []inodeRec) error {
	tmp := inodesName(manifestName) + ".tmp"
	if err := os.WriteFile(tmp, encodeInodes(recs), 0o600); err != nil {
		return fmt.Errorf("manifest cache: %w", err)
	}
	return os.Rename(tmp, inodesName(manifestName))
}

// appendInode records a file written to the spool at off, for the next
// backup: not a hard link, an empty file or one that changed while read.
func appendInode(recs []inodeRec, j *job, off int64) []inodeRec {
	e := &j.entry
	if e.Type != manifest.TypeFile || e.Size == 0 || e.ChangedDuringRead {
		return recs
	}
	st := scan.StampOf(j.item.Info)
	if st.Ino == 0 || st.Size != e.Size || st.MTime != e.MTime.UnixNano() {
		return recs // re-read under another stat: let the next backup look again
	}
	return append(recs, inodeRec{dev: st.Dev, ino: st.Ino, size: e.Size, mtime: e.MTime.UnixNano(), off: off})
}

// offsetWriter counts the bytes written through it.
type offsetWriter struct {
	w io.Writer
	n int64
}

func (o *offsetWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	o.n += int64(n)
	return n, err
}
