package restore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"ib/internal/ignore"
	"ib/internal/manifest"
	"ib/internal/scan"
)

// --delete: after the restore, what DEST has under the restored folder and
// the backup does not is removed, except what DEST's ignore files leave
// out (the backup's own .gitignore/.ibignore, restored with it: a node's
// keys excluded at backup time stay), protected paths and --keep
// patterns. DEST is walked in walk order beside the manifest, so memory
// stays flat however large either is. A folder the backup does not have
// is removed once empty; one that still holds a spared path stays.

// deleteExtra removes what DEST has and the backup does not.
func (r *run) deleteExtra(ctx context.Context, spool *os.File) error {
	root := r.dest
	if r.opts.Sub != "." {
		root = filepath.Join(r.dest, filepath.FromSlash(r.opts.Sub))
	}
	if fi, err := os.Lstat(root); err != nil || !fi.IsDir() {
		return nil // a single file restored: nothing around it is ours
	}
	want := manifest.NewCursor(entries(spool).Next)
	var dirs []string // folders the backup does not have, removed last
	ign := &sparing{Matcher: ignore.New(r.opts.Keep...), protected: r.opts.Protected}
	err := scan.Walk(ctx, root, scan.Options{Ignore: ign, TypesOnly: true}, func(it *scan.Item) error {
		p := it.Path
		if r.opts.Sub != "." {
			p = manifest.Join(r.opts.Sub, it.Path)
			if it.Path == "." {
				p = r.opts.Sub
			}
		}
		if p == Marker {
			return nil
		}
		e, err := want.Find(p)
		if err != nil {
			return err
		}
		if e != nil && sameKind(e.Type, it.Type) {
			return nil
		}
		if ign.protects(p) {
			return nil
		}
		if it.Type == manifest.TypeDir {
			dirs = append(dirs, p)
			return nil
		}
		if r.opts.DryRun {
			r.res.Deleted++
			if r.opts.Plan != nil {
				return r.opts.Plan(Planned{Op: "-", Path: p})
			}
			return nil
		}
		if err := r.root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete %s: %w", p, err)
		}
		r.res.Deleted++
		return nil
	})
	if err != nil {
		return fmt.Errorf("--delete: %w", err)
	}
	if r.opts.DryRun { // folders go when nothing spared is left in them
		return nil
	}
	for _, d := range slices.Backward(dirs) {
		if err := r.root.Remove(d); err == nil {
			r.res.Deleted++
		}
	}
	return nil
}

func sameKind(a, b manifest.Type) bool {
	if a == manifest.TypeHardlink {
		a = manifest.TypeFile
	}
	return a == b
}

// sparing is the walk's Ignorer for --delete: DEST's ignore files and the
// --keep patterns (both spared, never read further), and the protected
// paths.
type sparing struct {
	*ignore.Matcher
	protected []*ignore.Pattern
}

func (s *sparing) protects(p string) bool { return protected(s.protected, p) }
