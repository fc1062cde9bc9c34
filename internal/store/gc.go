package store

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"ib/internal/api"
	"ib/internal/block"
	"ib/internal/blockstore"
	"ib/internal/manifest"
	"ib/internal/metadb"
	"ib/internal/prune"
)

// CIDLocker locks CIDs for the two things that must not interleave: an
// upload storing an object and recording its row (shared: two uploads of
// one block may run together), and garbage collection deleting a row and
// its object (exclusive). Without it, a block deleted and uploaded again at
// the same moment could end with a row and no bytes. A metadata store
// shared by several servers implements it (in the database); otherwise the
// store's own in-memory locks serve.
type CIDLocker interface {
	LockCIDs(ctx context.Context, cids []string, exclusive bool) (unlock func(), err error)
}

// lockCIDs takes the CIDs' locks from the metadata store if it has them.
func (s *Store) lockCIDs(ctx context.Context, cids []string, exclusive bool) (func(), error) {
	if l, ok := s.db.(CIDLocker); ok {
		return l.LockCIDs(ctx, cids, exclusive)
	}
	if len(cids) == 1 {
		return s.locks.lock(cids[0]), nil
	}
	return s.locks.lockAll(cids), nil
}

// cidLocks are one process's CID locks (always exclusive).
type cidLocks struct {
	seed  maphash.Seed
	locks [1024]sync.Mutex
}

func (l *cidLocks) stripe(cid string) int {
	return int(maphash.String(l.seed, cid) % uint64(len(l.locks)))
}

func (l *cidLocks) lock(cid string) func() {
	m := &l.locks[l.stripe(cid)]
	m.Lock()
	return m.Unlock
}

// lockAll locks the stripes of many CIDs, in stripe order (no deadlock).
func (l *cidLocks) lockAll(cids []string) func() {
	var idx []int
	for _, c := range cids {
		idx = append(idx, l.stripe(c))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		l.locks[i].Lock()
	}
	return func() {
		for _, i := range idx {
			l.locks[i].Unlock()
		}
	}
}

// GCReport is what one garbage collection did.
type GCReport struct {
	api.GCReport
	longest time.Duration // longest single write transaction
}

const gcBatch = 1000

// GC drops idle staged commits, removes the rows of deleted backups, then every block that no backup
// references and that was neither uploaded nor asked about within grace:
// its row first, then its object. Finally it lists the block store and
// removes objects without a row (left by a crash) older than grace. No step
// holds the write lock for more than one small batch.
func (s *Store) GC(ctx context.Context, grace time.Duration) (GCReport, error) {
	start := s.now()
	var rep GCReport
	reaped, err := s.db.ReapStages(ctx, s.now().Add(-StageIdle))
	if err != nil {
		return rep, err
	}
	if reaped > 0 {
		s.log.Warn("dropped staged commits idle for over an hour (their client or server went away)", "count", reaped)
	}
	n, longest, err := s.db.Purge(ctx)
	rep.BackupsPurged, rep.longest = n, longest
	if err != nil {
		return rep, err
	}
	cutoff := s.now().Add(-grace)
	after := int64(0)
	for {
		cands, err := s.db.GCCandidates(ctx, after, cutoff, gcBatch)
		if err != nil {
			return rep, err
		}
		if len(cands) == 0 {
			break
		}
		after = cands[len(cands)-1].ID
		if err := s.sweep(ctx, cands, cutoff, &rep); err != nil {
			return rep, err
		}
	}
	if err := s.sweepOrphans(ctx, cutoff, &rep); err != nil {
		return rep, err
	}
	rep.DurationMS = s.now().Sub(start).Milliseconds()
	rep.LongestLockMS = float64(rep.longest.Microseconds()) / 1000
	return rep, nil
}

func (s *Store) sweep(ctx context.Context, cands []metadb.Candidate, cutoff time.Time, rep *GCReport) error {
	ids := make([]int64, len(cands))
	keys := make([]string, len(cands))
	for i, c := range cands {
		ids[i] = c.ID
		k, err := block.CIDFromBytes(c.CID)
		if err != nil {
			return err
		}
		keys[i] = k.String()
	}
	unlock, err := s.lockCIDs(ctx, keys, true)
	if err != nil {
		return err
	}
	defer unlock()
	deleted, held, err := s.db.DeleteBlocks(ctx, ids, cutoff)
	rep.longest = max(rep.longest, held)
	if err != nil {
		return err
	}
	s.blocksDeleted(deleted)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, d := range deleted {
		rep.BlocksDeleted++
		rep.BytesFreed += d.WireSize
		if !d.Offloaded {
			continue
		}
		c, err := block.CIDFromBytes(d.CID)
		if err != nil {
			return err
		}
		g.Go(func() error {
			// The row is gone: at worst a failure here leaves an orphan
			// that the next listing removes.
			if err := s.blocks.Delete(gctx, c.String()); err != nil {
				s.log.Warn("gc: delete object", "cid", c.String(), "err", err)
			}
			return nil
		})
	}
	return g.Wait()
}

// sweepOrphans removes objects that have no row and are older than cutoff.
func (s *Store) sweepOrphans(ctx context.Context, cutoff time.Time, rep *GCReport) error {
	var batch []blockstore.Info
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		bins := make([][]byte, 0, len(batch))
		byBin := map[string]string{}
		for _, o := range batch {
			c, err := block.ParseCID(o.Key)
			if err != nil {
				s.log.Warn("gc: an object that is not a block", "key", o.Key, "store", s.blocks.String())
				continue
			}
			bins = append(bins, c.Bytes())
			byBin[string(c.Bytes())] = o.Key
		}
		known, err := s.db.Known(ctx, bins)
		if err != nil {
			return err
		}
		for bin, key := range byBin {
			if known[bin] {
				continue
			}
			if err := s.deleteOrphan(ctx, key, []byte(bin)); err != nil {
				if ctx.Err() != nil {
					return err
				}
				// left for the next run, like a failed object delete
				s.log.Warn("gc: orphan not deleted", "err", err)
				continue
			}
			rep.OrphansDeleted++
		}
		batch = batch[:0]
		return nil
	}
	err := s.blocks.List(ctx, func(o blockstore.Info) error {
		if !o.ModTime.Before(cutoff) {
			return nil
		}
		batch = append(batch, o)
		if len(batch) >= gcBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc: list %s: %w", s.blocks, err)
	}
	return flush()
}

func (s *Store) deleteOrphan(ctx context.Context, key string, bin []byte) error {
	unlock, err := s.lockCIDs(ctx, []string{key}, true)
	if err != nil {
		return err
	}
	defer unlock()
	// An upload may have recorded the row since the listing.
	known, err := s.db.Known(ctx, [][]byte{bin})
	if err != nil || known[string(bin)] {
		return err
	}
	if err := s.blocks.Delete(ctx, key); err != nil {
		return fmt.Errorf("gc: delete orphan %s: %w", key, err)
	}
	return nil
}

// PruneRequest is a prune: which backups the rules look at and whether to
// only report.
type PruneRequest struct {
	Rules  prune.Rules
	Filter manifest.Tags // only backups whose tags include these
	DryRun bool
	Grace  time.Duration // of the garbage collection that follows
}

// PruneResult reports a prune.
type PruneResult struct {
	Decisions []prune.Decision
	Tags      map[int64]manifest.Tags
	GC        GCReport
}

// Prune applies rules to the backups that match the filter, deletes those
// the rules condemn (unless DryRun), then collects garbage.
func (s *Store) Prune(ctx context.Context, req PruneRequest) (PruneResult, error) {
	rows, err := s.db.PolicyRows(ctx)
	if err != nil {
		return PruneResult{}, err
	}
	res := PruneResult{Tags: map[int64]manifest.Tags{}}
	var bs []prune.Backup
	for _, r := range rows {
		tags, err := parseTagSet(r.TagSet)
		if err != nil {
			return PruneResult{}, fmt.Errorf("backup %d: %w", r.ID, err)
		}
		if !tags.Matches(req.Filter) {
			continue
		}
		res.Tags[r.ID] = tags
		bs = append(bs, prune.Backup{ID: r.ID, CreatedAt: r.CreatedAt, TagSet: r.TagSet, Files: r.Files, Bytes: r.Bytes})
	}
	res.Decisions = prune.Decide(bs, req.Rules, s.now())
	if req.DryRun {
		return res, nil
	}
	for _, d := range res.Decisions {
		if !d.Delete {
			continue
		}
		if _, err := s.markDeleting(ctx, d.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return res, err
		}
		s.log.Info("backup pruned", "id", d.ID, "tags", res.Tags[d.ID].String(), "reason", d.Reason)
	}
	res.GC, err = s.GC(ctx, req.Grace)
	return res, err
}
