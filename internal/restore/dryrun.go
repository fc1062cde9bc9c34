package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"ib/internal/block"
	"ib/internal/manifest"
)

// A dry run says what a restore into DEST would do, writing nothing: the
// files it would keep, patch (with the blocks it would take from DEST and
// fetch), write new or replace, and with Delete what it would remove. It
// reads DEST's stale files to hash their blocks, as the restore would.

// Planned is one line of a dry run.
type Planned struct {
	Op      string `json:"op"` // "+" new, "~" patched, "T" replaced (another type), "-" deleted
	Path    string `json:"path"`
	Reused  int64  `json:"bytes_reused,omitempty"`
	Fetched int64  `json:"bytes_fetched,omitempty"`
}

func (p Planned) String() string {
	switch p.Op {
	case "-":
		return "- " + p.Path
	case "~":
		return fmt.Sprintf("~ %s (%d bytes from DEST, %d fetched)", p.Path, p.Reused, p.Fetched)
	}
	return fmt.Sprintf("%s %s (%d bytes fetched)", p.Op, p.Path, p.Fetched)
}

// dryRun plans the restore of the checked manifest in spool into dest.
func dryRun(ctx context.Context, api API, id int64, spool *os.File, dest string, opts Options) (Result, error) {
	r := &run{api: api, opts: opts, dest: dest}
	var res Result
	root, err := os.OpenRoot(dest)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.fresh = true
	case err != nil:
		return Result{}, fmt.Errorf("restore: %w", err)
	default:
		defer root.Close()
		r.root, r.dirs.parent = root, root
		defer r.dirs.close()
		defer r.previous(ctx, id)()
	}
	mr := entries(spool)
	for {
		e, err := mr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Result{}, err
		}
		if !manifest.Within(e.Path, opts.Sub) || e.Path == "." {
			continue
		}
		switch e.Type {
		case manifest.TypeDir:
			res.Dirs++
			continue
		case manifest.TypeSymlink:
			res.Symlinks++
			continue
		}
		if r.keep(e) {
			continue // protected: DEST keeps its own
		}
		res.Files++
		res.Bytes += e.Size
		if e.Type == manifest.TypeHardlink && r.linkable(e) {
			continue // a link: no bytes
		}
		if err := r.planFile(e, &res, opts.Plan); err != nil {
			return Result{}, err
		}
	}
	res.Protected, res.ProtectedCount = r.res.Protected, r.res.ProtectedCount
	if opts.Delete && !r.fresh {
		r.res = res
		if err := r.deleteExtra(ctx, spool); err != nil {
			return Result{}, err
		}
		res = r.res
	}
	return res, nil
}

// planFile plans one file: kept, patched from DEST, new or replaced.
func (r *run) planFile(e *manifest.Entry, res *Result, fn func(Planned) error) error {
	p := Planned{Op: "+", Path: e.Path}
	var fi fs.FileInfo
	if !r.fresh {
		fi, _ = r.dirs.lstat(e.Path)
	}
	known := r.known(*e, fi)
	switch {
	case fi != nil && !fi.Mode().IsRegular():
		p.Op = "T"
	case fi != nil:
		if complete(fi, *e) && !r.opts.VerifyExisting {
			res.Kept++
			return nil
		}
		p.Op = "~"
	}
	var local *os.File
	if p.Op == "~" && known == nil {
		local = r.openLocal(e.Path)
		if local != nil {
			defer local.Close()
		}
	}
	var off int64
	for _, b := range e.Blocks {
		if known != nil && known.holds(off, b, !r.opts.InPlace) || known == nil && local != nil && hasCID(local, off, b) {
			p.Reused += b.Size
			res.BlocksReused++
		} else {
			p.Fetched += b.Size
			res.BlocksFetched++
		}
		off += b.Size
	}
	res.BytesReused += p.Reused
	res.BytesFetched += p.Fetched
	if p.Op == "~" && p.Fetched == 0 {
		res.Kept++ // verified whole
		return nil
	}
	if p.Reused > 0 {
		res.Patched++ // as the restore counts: written with blocks from DEST
	}
	if fn != nil {
		return fn(p)
	}
	return nil
}

// hasCID reports whether local holds block b at off (an unreadable file
// does not).
func hasCID(local *os.File, off int64, b manifest.Block) bool {
	ok, _ := block.HasCID(local, off, b.Size, b.CID)
	return ok
}
