package backup

import (
	"context"

	"ib/internal/ignore"
	"ib/internal/manifest"
	"ib/internal/scan"
)

// PlanItem is one path a backup would store or leave out.
type PlanItem struct {
	Path    string
	Type    manifest.Type // of a kept path
	Size    int64         // of a kept file
	Ignored bool
	IsDir   bool            // of an ignored path
	By      *ignore.Pattern // the pattern that ignores it
}

// PlanOptions are the walk's settings a backup would use.
type PlanOptions struct {
	Excludes      []*ignore.Pattern // beside the ignore files, deciding first
	OneFileSystem bool
}

// Plan walks root as a backup would, honouring .gitignore and .ibignore,
// without reading any file or contacting a server, and reports every path
// it would store and every path it would leave out, in walk order.
func Plan(ctx context.Context, root string, o PlanOptions, fn func(PlanItem) error) (scan.Stats, error) {
	var st scan.Stats
	var ferr error
	ex := &explainer{Matcher: ignore.New(o.Excludes...), fn: func(it PlanItem) {
		if ferr == nil {
			ferr = fn(it)
		}
	}}
	err := scan.Walk(ctx, root, scan.Options{Ignore: ex, Stats: &st, OneFileSystem: o.OneFileSystem}, func(it *scan.Item) error {
		if ferr != nil {
			return ferr
		}
		pi := PlanItem{Path: it.Path, Type: it.Type}
		if it.Type == manifest.TypeFile {
			pi.Size = it.Info.Size()
		}
		return fn(pi)
	})
	if err == nil {
		err = ferr
	}
	return st, err
}

// explainer reports each ignored path with the pattern that ignored it.
type explainer struct {
	*ignore.Matcher
	fn func(PlanItem)
}

func (e *explainer) Ignored(path string, isDir bool) bool {
	p := e.Match(path, isDir)
	if p == nil || p.Negative() {
		return false
	}
	e.fn(PlanItem{Path: path, Ignored: true, IsDir: isDir, By: p})
	return true
}
