package backup

import (
	"context"
	"errors"

	"ib/internal/livedb"
	"ib/internal/manifest"
	"ib/internal/scan"
	"ib/internal/secrets"
)

// plan turns a walked item into its job: what the manifest says of it and
// whether its file must be read. A file unchanged since the previous
// backup (same size and mtime, not marked as changed while read) takes its
// old blocks; a later name of a file already met (a hard link) takes that
// file's content and is never read or uploaded.
func (r *run) plan(it *scan.Item, prev *prevManifest, links map[scan.FileID]*job) *job {
	j := &job{item: it, entry: it.Entry(), done: make(chan struct{})}
	if it.Type == manifest.TypeFile && !r.opts.Encrypt.Wants(it.Path) && secrets.Looks(it.Path, it.Abs) {
		if r.res.SecretCount++; len(r.res.Secrets) < 100 {
			r.res.Secrets = append(r.res.Secrets, it.Path)
		}
	}
	if it.Type == manifest.TypeFile && r.opts.OnLiveDB != nil {
		if kind := livedb.Kind(it.Path); kind != "" && livedb.Held(it.Abs) {
			l := LiveDB{Dir: manifest.Parent(it.Path), Kind: kind}
			r.res.LiveDBs = append(r.res.LiveDBs, l)
			r.opts.OnLiveDB(l)
		}
	}
	if it.Type == manifest.TypeFile {
		if id, ok := scan.LinkID(it.Info); ok {
			if first, seen := links[id]; seen {
				if r.opts.Encrypt.Wants(it.Path) && !r.opts.Encrypt.Wants(first.entry.Path) && len(r.res.ClearLinks) < 100 {
					r.res.ClearLinks = append(r.res.ClearLinks, it.Path+" = "+first.entry.Path)
				}
				j.link = first
				j.entry.Type, j.entry.Target = manifest.TypeHardlink, first.entry.Path
				close(j.done)
				return j
			}
			links[id] = j
		}
	}
	if it.Type == manifest.TypeFile && j.entry.Size > 0 {
		seal := r.opts.Encrypt.Wants(it.Path)
		if p := prev.find(it.Path); p != nil && p.Type == manifest.TypeFile && !p.ChangedDuringRead &&
			p.FileSize() == j.entry.Size && p.MTime.Equal(j.entry.MTime) && (p.Encryption != "") == seal {
			// Unchanged, and sealed then as now: its old blocks, not
			// encrypted again.
			j.entry.Blocks, j.entry.Size, j.entry.Encryption, j.entry.PlainSize = p.Blocks, p.Size, p.Encryption, p.PlainSize
			j.reused = true
		} else if blocks := prev.renamed(it, &j.entry); blocks != nil && !seal {
			j.entry.Blocks = blocks
			j.reused = true
			r.res.Renamed++
		} else {
			j.hash = true
			if p != nil && p.Type == manifest.TypeFile && p.Encryption == "" && !seal && r.cuts(p.Size) {
				j.hint = p.Blocks
			}
		}
	}
	if !j.hash {
		close(j.done)
	}
	return j
}

// takeLink gives a hard link its first name's content, once that is read
// (the collector meets the first name earlier in walk order). If the first
// name vanished before it was read, this name becomes the file: it is read
// here, and later names link to it.
func (r *run) takeLink(ctx context.Context, j *job) error {
	first := j.link
	for first.vanished && first.link != nil {
		first = first.link // a name that took over from a vanished one
	}
	if !first.vanished {
		f := &first.entry
		j.entry.Target = f.Path
		j.entry.Mode, j.entry.MTime, j.entry.UID, j.entry.GID = f.Mode, f.MTime, f.UID, f.GID
		j.entry.Size, j.entry.Blocks, j.entry.ChangedDuringRead = f.Size, f.Blocks, f.ChangedDuringRead
		j.entry.Encryption, j.entry.PlainSize = f.Encryption, f.PlainSize
		return nil
	}
	j.entry.Type, j.entry.Target = manifest.TypeFile, ""
	j.link = nil
	j.hash = true
	err := r.readFile(ctx, j, make([]byte, 1<<20))
	if errors.Is(err, errVanished) {
		j.vanished = true
		return nil
	}
	if err != nil {
		return err
	}
	first.link = j // later names of the vanished one follow to this one
	return nil
}
