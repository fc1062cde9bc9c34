package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"ib/internal/manifest"
)

// A refresh of a DEST that this client restored whole knows what DEST held
// then: the client keeps, per DEST, the backup it last restored there
// (Options.StateDir). A file in DEST whose size and mtime are still those
// of its entry in that backup is taken to hold that entry's blocks, as a
// file with the new entry's size and mtime is taken to be complete: its
// blocks with the new entry's CIDs at the same offsets are copied without
// being hashed, and the others are fetched without being read. Stale bytes
// are never read back to learn that they are stale. --verify-existing
// trusts nothing and hashes.

// restoredState is what the client keeps about one DEST.
type restoredState struct {
	Dest   string    `json:"dest"`
	Backup int64     `json:"backup"`
	Time   time.Time `json:"time"`
}

func stateFile(dir, dest string) string {
	h := sha256.Sum256([]byte(dest))
	return filepath.Join(dir, hex.EncodeToString(h[:12])+".json")
}

// lastRestored returns the backup last restored whole into dest, or 0.
func lastRestored(dir, dest string) int64 {
	if dir == "" {
		return 0
	}
	b, err := os.ReadFile(stateFile(dir, dest))
	var st restoredState
	if err != nil || json.Unmarshal(b, &st) != nil || st.Dest != dest {
		return 0
	}
	return st.Backup
}

// saveRestored records that backup id was restored whole into dest.
func saveRestored(dir, dest string, id int64) error {
	if dir == "" {
		return nil
	}
	b, _ := json.Marshal(restoredState{Dest: dest, Backup: id, Time: time.Now().UTC()})
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	tmp := stateFile(dir, dest) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	if err := os.Rename(tmp, stateFile(dir, dest)); err != nil {
		return fmt.Errorf("restore state: %w", err)
	}
	return nil
}

// knownBlocks are the blocks of DEST's file, as its entry in the backup
// last restored there gives them: by offset, and where each CID first is.
type knownBlocks struct {
	at    map[int64]manifest.Block
	where map[string]int64
}

// source returns where DEST's file holds block b, to be written at off:
// at off itself, or (when moved allows it) wherever else the file has it.
// Content-defined blocks make the second common: bytes inserted before a
// block move it without changing it.
func (k *knownBlocks) source(off int64, b manifest.Block, moved bool) (int64, bool) {
	if kb, ok := k.at[off]; ok && kb.CID == b.CID && kb.Size == b.Size {
		return off, true
	}
	if !moved {
		return 0, false
	}
	src, ok := k.where[b.CID]
	return src, ok && k.at[src].Size == b.Size
}

// holds reports whether DEST's file has block b for off (see source).
func (k *knownBlocks) holds(off int64, b manifest.Block, moved bool) bool {
	_, ok := k.source(off, b, moved)
	return ok
}

// previous opens the manifest of the backup last restored into DEST, for
// known; nothing when there is none, it is this one, or it is gone.
func (r *run) previous(ctx context.Context, id int64) (close func()) {
	old := lastRestored(r.opts.StateDir, r.absDest())
	if r.fresh || r.opts.VerifyExisting || old == 0 || old == id {
		return func() {}
	}
	spool, err := fetch(ctx, r.api, old)
	if err != nil {
		r.opts.Log.Debug("the backup last restored here is not readable: stale files are hashed", "backup", old, "err", err)
		return func() {}
	}
	r.prev = manifest.NewCursor(manifest.Checked(entries(spool)))
	return func() { spool.Close() }
}

// known returns the blocks DEST's file at e.Path holds, when its size and
// mtime are those of its entry in the backup last restored there, or nil
// (then its blocks are hashed). It is called in walk order.
func (r *run) known(e manifest.Entry, fi fs.FileInfo) *knownBlocks {
	if r.prev == nil {
		return nil
	}
	old, err := r.prev.Find(e.Path)
	if err != nil {
		r.opts.Log.Warn("the backup last restored here has a bad manifest: stale files are hashed", "err", err)
		r.prev = nil
		return nil
	}
	if old == nil || !old.Type.HasContent() {
		return nil
	}
	if fi == nil || !fi.Mode().IsRegular() || fi.Size() != old.Size || !fi.ModTime().Equal(old.MTime) {
		return nil
	}
	k := &knownBlocks{at: make(map[int64]manifest.Block, len(old.Blocks)), where: make(map[string]int64, len(old.Blocks))}
	var off int64
	for _, b := range old.Blocks {
		k.at[off] = b
		if _, ok := k.where[b.CID]; !ok {
			k.where[b.CID] = off
		}
		off += b.Size
	}
	return k
}

// absDest is DEST as the state names it.
func (r *run) absDest() string {
	if abs, err := filepath.Abs(r.dest); err == nil {
		return abs
	}
	return r.dest
}
