package metadb

import (
	"context"
	"errors"
)

// ErrStageGone is a staged backup that was dropped (reaped as idle, or its
// commit taken over) while its commit still wrote to it.
var ErrStageGone = errors.New("staged backup is gone")

// A Stage is a backup being recorded while its manifest streams in. Its row
// exists from the first entry on, hidden from every reader (it is marked
// deleting, with staged_at set, which also keeps garbage collection from
// purging it); its entries and references are written in short
// transactions, and one last transaction makes it visible (Finish). A stage
// left idle (its server died, its client went away) is reaped: staged_at
// cleared, it is an ordinary deleted backup that the next purge removes.
type Stage struct {
	ID int64
	// Parent is the newest live backup of the same tags (0: none, or
	// blocks are marked corrupt): the stage already references every
	// block it references, so the parent may be deleted meanwhile.
	Parent int64
}

// CommitTx is one short transaction of a staged backup (declared here, not
// by the store package that uses it, because a store's StageTx must name
// it). Nothing it writes is seen by readers before Finish; Rollback (after
// Save or Finish a no-op) undoes this transaction's writes.
type CommitTx interface {
	// LookupBlocks returns the rows of those of cids that exist.
	LookupBlocks(ctx context.Context, cids [][]byte) ([]BlockRef, error)
	// AddEntries writes entries, finding or adding the name of each row
	// whose NameID is 0.
	AddEntries(ctx context.Context, rows []EntryRow) error
	// AddRefs references blocks by row id (a repeated one is ignored).
	AddRefs(ctx context.Context, ids []int64) error
	// DropRefs takes the references to the blocks cids out again.
	DropRefs(ctx context.Context, cids [][]byte) error
	// ClearRefs takes out every reference of the stage.
	ClearRefs(ctx context.Context) error
	// Save commits the transaction; the backup stays hidden.
	Save(ctx context.Context) error
	// Finish sets the backup's counts (its block count from its
	// references), labels, idempotency key and time, makes it visible and
	// commits. If a backup with h.Key exists already, it commits nothing
	// and returns that backup's id.
	Finish(ctx context.Context, c Counts, h Head) (existed int64, err error)
	Rollback()
}
