package store

import (
	"context"
	"time"

	"ib/internal/manifest"
	"ib/internal/metadb"
)

// Meta is the metadata store the engine runs on (metadb/sqlite,
// metadb/postgres): rows and SQL, no rules. Its contracts are checked for
// every implementation by metadbtest.
type Meta interface {
	BlockRows
	BackupRows
	Committer
	Collector
	Ping(ctx context.Context) error
	// SetClock replaces the clock the store stamps rows with.
	SetClock(now func() time.Time)
}

// BlockRows are the block rows.
type BlockRows interface {
	// Present returns which of cids have a block row not marked corrupt,
	// and refreshes the last-seen time of those last seen before
	// staleBefore (unix ns), so that GC spares a block a client was just
	// told it need not upload; a row GC removes before its refresh is not
	// present. It takes no write for rows seen since staleBefore.
	Present(ctx context.Context, cids [][]byte, staleBefore int64) (map[string]bool, error)
	// PutBlocks records blocks whose bytes are stored (inline, or already
	// durable in the block store) and reports which rows are new.
	// Recording a block again refreshes its last-seen time and gives a
	// block marked corrupt its bytes back (and clears the mark).
	PutBlocks(ctx context.Context, bs []metadb.Block) ([]bool, error)
	// Block returns one block's row with its inline bytes; ErrNotFound.
	Block(ctx context.Context, cid []byte) (metadb.Block, error)
	// InlineBlocks returns the rows of those of cids that exist.
	InlineBlocks(ctx context.Context, cids [][]byte) (map[string]metadb.Block, error)
	// Known returns which of cids have a row, corrupt or not.
	Known(ctx context.Context, cids [][]byte) (map[string]bool, error)
	// MarkCorrupt flags a block whose bytes do not match its CID.
	MarkCorrupt(ctx context.Context, cid []byte) error
	// ScrubPage returns up to limit blocks not marked corrupt with id >
	// after, by id.
	ScrubPage(ctx context.Context, after int64, limit int) ([]metadb.ScrubBlock, error)
}

// BackupRows read backups and their entries. A backup being deleted is
// never returned.
type BackupRows interface {
	Get(ctx context.Context, id int64) (metadb.Backup, error)
	// Latest: the newest backup whose tags equal tags exactly.
	Latest(ctx context.Context, tags manifest.Tags) (metadb.Backup, error)
	// List: the backups whose tags include every pair of filter, newest
	// first.
	List(ctx context.Context, filter manifest.Tags) ([]metadb.Backup, error)
	// Entries: up to limit entries with seq > after in walk order, and
	// the seq of the last one.
	Entries(ctx context.Context, id, after int64, limit int) ([]manifest.Entry, int64, error)
	// Lookup: the entry at path ("." the root); ErrNotFound.
	Lookup(ctx context.Context, id int64, path string) (metadb.Node, error)
	// Children: up to limit entries of folder dirSeq with seq > after.
	Children(ctx context.Context, id, dirSeq, after int64, limit int) ([]metadb.Node, error)
	// Search: entries whose name contains q (case-insensitively) in
	// backups whose tags include filter, newest backup first.
	Search(ctx context.Context, q string, filter manifest.Tags, limit int) ([]metadb.Hit, error)
	// History: the entries at path in every backup of backup id's tag
	// set, oldest first.
	History(ctx context.Context, id int64, path string, limit int) ([]metadb.Hit, error)
	// FillAdded records and returns the bytes of the blocks backup id
	// references that no other backup references.
	FillAdded(ctx context.Context, id int64) (int64, error)
	ScanTotals(ctx context.Context) (metadb.Totals, error)
	// LastBackups: the newest live backup's time per tag set (canonical).
	LastBackups(ctx context.Context) (map[string]time.Time, error)
	PolicyRows(ctx context.Context) ([]metadb.PolicyRow, error)
}

// Committer records a backup while its manifest streams in (a
// metadb.Stage): its entries in short transactions, made visible by one.
type Committer interface {
	// BeginStage adds the hidden row of a backup of h and copies its
	// parent's references. If a backup with h.Key exists, it returns that
	// backup's id as existed and no stage.
	BeginStage(ctx context.Context, h metadb.Head) (st metadb.Stage, existed int64, err error)
	// StageTx starts a short transaction of stage id and notes it as
	// alive; metadb.ErrStageGone if the stage was dropped.
	StageTx(ctx context.Context, id int64) (metadb.CommitTx, error)
	// DropStage turns a stage into a deleted backup.
	DropStage(ctx context.Context, id int64) error
	// ParentEntries returns up to limit entries of backup id with seq >
	// after, in walk order.
	ParentEntries(ctx context.Context, id, after int64, limit int) ([]metadb.ParentEntry, error)
}

// Collector are the writes of deletion and garbage collection.
type Collector interface {
	// MarkDeleting hides a backup at once; ErrNotFound.
	MarkDeleting(ctx context.Context, id int64) error
	// Purge removes the rows of every hidden backup in short
	// transactions, resuming after a crash; it returns how many and the
	// longest it held a write lock.
	Purge(ctx context.Context) (int, time.Duration, error)
	// ReapStages drops the stages not written to since before (their
	// server or client died); Purge then removes them.
	ReapStages(ctx context.Context, before time.Time) (int, error)
	// GCCandidates: up to limit unreferenced blocks with id > after last
	// seen before cutoff, by id. Only reads.
	GCCandidates(ctx context.Context, after int64, cutoff time.Time, limit int) ([]metadb.Candidate, error)
	// DeleteBlocks deletes those of ids still unreferenced and unseen
	// since cutoff, atomically with that check, and returns them.
	DeleteBlocks(ctx context.Context, ids []int64, cutoff time.Time) ([]metadb.Deleted, time.Duration, error)
}
