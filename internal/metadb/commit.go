package metadb

import (
	"context"

	"ib/internal/manifest"
)

// CommitTx is one commit's transaction (declared here, not by the store
// package that uses it, because a store's BeginCommit must name it). Nothing it writes is seen by
// others before Finish; Rollback (after Finish a no-op) undoes it all.
type CommitTx interface {
	// AnyCorrupt reports whether any block is marked corrupt.
	AnyCorrupt(ctx context.Context) (bool, error)
	// Parent returns the newest live backup whose tag set is tags' other
	// than the one being committed, 0 if none.
	Parent(ctx context.Context, tags manifest.Tags) (int64, error)
	// ParentEntries returns up to limit entries of backup id with seq >
	// after, in walk order.
	ParentEntries(ctx context.Context, id, after int64, limit int) ([]ParentEntry, error)
	// LookupBlocks returns the rows of those of cids that exist.
	LookupBlocks(ctx context.Context, cids [][]byte) ([]BlockRef, error)
	// AddEntries writes entries, finding or adding the name of each row
	// whose NameID is 0.
	AddEntries(ctx context.Context, rows []EntryRow) error
	// AddRefs references blocks by row id (a repeated one is ignored).
	AddRefs(ctx context.Context, ids []int64) error
	// CopyRefs references every block that backup from references.
	CopyRefs(ctx context.Context, from int64) error
	// DropRefs takes the references to the blocks cids out again.
	DropRefs(ctx context.Context, cids [][]byte) error
	// Finish sets the backup's counts (its block count from its
	// references) and commits.
	Finish(ctx context.Context, c Counts) error
	Rollback()
}
