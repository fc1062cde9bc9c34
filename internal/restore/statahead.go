package restore

import (
	"context"
	"os"

	"ib/internal/manifest"
)

// A refresh stats every file of the backup in DEST, in walk order, one at
// a time; on a cold cache each stat waits for the disk. statAhead stats
// the coming files from a second reader of the manifest, a bounded
// distance ahead, so that their inodes are in memory when the restore
// reaches them: the waits overlap instead of adding up.

// statAheadEntries bounds how far ahead of the restore the stats run.
const statAheadEntries = 2048

type statAhead struct {
	ahead chan struct{} // a token per entry stat'ed, taken as the restore passes it
}

// start runs the stats until the manifest ends or ctx does.
func (s *statAhead) start(ctx context.Context, spool *os.File, root *os.Root, sub string) {
	s.ahead = make(chan struct{}, statAheadEntries)
	go func() {
		dirs := dirRoots{parent: root}
		defer dirs.close()
		mr := entries(spool)
		for {
			e, err := mr.Next()
			if err != nil {
				return
			}
			if (e.Type == manifest.TypeFile || e.Type == manifest.TypeHardlink) && manifest.Within(e.Path, sub) {
				dirs.lstat(e.Path)
			}
			select {
			case s.ahead <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
}

// passed notes that the restore reached the next entry.
func (s *statAhead) passed() {
	if s.ahead == nil {
		return
	}
	select {
	case <-s.ahead:
	default:
	}
}
