package store

import (
	"context"
	"sync"
	"time"

	"ib/internal/api"
	"ib/internal/metadb"
)

type totals struct {
	mu sync.Mutex
	t  metadb.Totals
}

// Hooks hear of writes as they happen (metrics counters).
type Hooks struct {
	BlockStored     func() // a new block row
	BackupCommitted func()
}

// SetHooks installs hooks; call it before serving.
func (s *Store) SetHooks(h Hooks) { s.hooks = h }

// RefreshTotals reads the totals from the database again (other servers
// of a shared database change them too).
func (s *Store) RefreshTotals(ctx context.Context) error { return s.loadTotals(ctx) }

func (s *Store) loadTotals(ctx context.Context) error {
	t, err := s.db.ScanTotals(ctx)
	if err != nil {
		return err
	}
	s.totals.mu.Lock()
	s.totals.t = t
	s.totals.mu.Unlock()
	return nil
}

func (s *Store) blockAdded(b metadb.Block) {
	if s.hooks.BlockStored != nil {
		s.hooks.BlockStored()
	}
	s.totals.mu.Lock()
	defer s.totals.mu.Unlock()
	t := &s.totals.t
	t.Blocks++
	t.UniqueBytes += b.Size
	if b.Inline != nil {
		t.InlineBlocks++
		t.InlineBytes += b.WireSize
	} else {
		t.OffloadedBytes += b.WireSize
	}
}

func (s *Store) blocksDeleted(ds []metadb.Deleted) {
	s.totals.mu.Lock()
	defer s.totals.mu.Unlock()
	t := &s.totals.t
	for _, d := range ds {
		t.Blocks--
		t.UniqueBytes -= d.Size
		if d.Offloaded {
			t.OffloadedBytes -= d.WireSize
		} else {
			t.InlineBlocks--
			t.InlineBytes -= d.WireSize
		}
	}
}

func (s *Store) backupAdded(b metadb.Backup) {
	if s.hooks.BackupCommitted != nil {
		s.hooks.BackupCommitted()
	}
	s.totals.mu.Lock()
	defer s.totals.mu.Unlock()
	t := &s.totals.t
	t.Backups++
	t.LogicalBytes += b.Bytes
	ts := b.Tags.Canonical()
	if b.CreatedAt.After(t.LastBackup[ts]) {
		t.LastBackup[ts] = b.CreatedAt
	}
}

// backupRemoved updates the totals after a deletion; the newest backup of
// each tag set is read again (a small query on the backups table).
func (s *Store) backupRemoved(ctx context.Context, b metadb.Backup) {
	s.lz4.forget(b.ID)
	last, err := s.db.LastBackups(ctx)
	s.totals.mu.Lock()
	defer s.totals.mu.Unlock()
	t := &s.totals.t
	t.Backups--
	t.LogicalBytes -= b.Bytes
	if err == nil {
		t.LastBackup = last
	} else {
		s.log.Warn("refresh last backup times", "err", err)
	}
}

// Stats returns the counts and sizes, kept in memory: scanned once at
// start and updated by every write, so /stats and metrics never scan a table.
func (s *Store) Stats() api.Stats {
	s.totals.mu.Lock()
	t := s.totals.t
	tagSets := len(t.LastBackup)
	s.totals.mu.Unlock()
	st := api.Stats{
		Backups: t.Backups, TagSets: tagSets, Blocks: t.Blocks, InlineBlocks: t.InlineBlocks,
		InlineBytes: t.InlineBytes, OffloadedBytes: t.OffloadedBytes, StoredBytes: t.InlineBytes + t.OffloadedBytes,
		UniqueBytes: t.UniqueBytes, LogicalBytes: t.LogicalBytes, BlockStore: s.BlockStoreKind(),
	}
	if t.UniqueBytes > 0 {
		st.DedupRatio = float64(t.LogicalBytes) / float64(t.UniqueBytes)
	}
	if st.StoredBytes > 0 {
		st.CompressionRatio = float64(t.UniqueBytes) / float64(st.StoredBytes)
	}
	return st
}

// LastBackups returns the time of the newest backup of each tag set
// (canonical tags), from memory.
func (s *Store) LastBackups() map[string]time.Time {
	s.totals.mu.Lock()
	defer s.totals.mu.Unlock()
	out := make(map[string]time.Time, len(s.totals.t.LastBackup))
	for k, v := range s.totals.t.LastBackup {
		out[k] = v
	}
	return out
}
