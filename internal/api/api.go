// Package api holds the JSON shapes of ib's HTTP API that both the server
// (httpapi, store) and the client (apiclient) speak, so that the two cannot
// drift apart.
package api

import (
	"time"

	"ib/internal/manifest"
)

// MaxManifestBytes bounds a manifest as JSON: the server refuses a larger
// commit, and the client refuses to download a larger one (a hostile server
// cannot fill its disk).
const MaxManifestBytes = 8 << 30

// Stats are the server's counts and sizes (GET /stats).
type Stats struct {
	Backups          int64   `json:"backups"`
	TagSets          int     `json:"tag_sets"`
	Blocks           int64   `json:"blocks"`
	InlineBlocks     int64   `json:"inline_blocks"`
	InlineBytes      int64   `json:"inline_bytes"`    // wire bytes in SQLite
	OffloadedBytes   int64   `json:"offloaded_bytes"` // wire bytes in the block store
	StoredBytes      int64   `json:"stored_bytes"`    // both
	UniqueBytes      int64   `json:"unique_bytes"`    // uncompressed bytes of all blocks
	LogicalBytes     int64   `json:"logical_bytes"`   // file bytes of all backups
	DedupRatio       float64 `json:"dedup_ratio"`     // logical / unique
	CompressionRatio float64 `json:"compression_ratio"`
	BlockStore       string  `json:"block_store"`
}

// GCReport is what one garbage collection did.
type GCReport struct {
	BackupsPurged  int     `json:"backups_purged"`
	BlocksDeleted  int64   `json:"blocks_deleted"`
	BytesFreed     int64   `json:"bytes_freed"` // stored bytes, inline and offloaded
	OrphansDeleted int64   `json:"orphans_deleted"`
	DurationMS     int64   `json:"duration_ms"`
	LongestLockMS  float64 `json:"longest_write_lock_ms"`
}

// PruneRequest is the body of POST /prune; an empty body runs the
// server's own retention.
type PruneRequest struct {
	KeepLast  *int          `json:"keep_last,omitempty"`
	OlderThan string        `json:"older_than,omitempty"`
	Tags      manifest.Tags `json:"tags,omitempty"`
	DryRun    bool          `json:"dry_run,omitempty"`
}

// PruneDecision is one backup's fate in a prune.
type PruneDecision struct {
	ID        int64         `json:"id"`
	Tags      manifest.Tags `json:"tags"`
	CreatedAt time.Time     `json:"created_at"`
	Reason    string        `json:"reason"`
}

// PruneAnswer is the answer of POST /prune.
type PruneAnswer struct {
	DryRun  bool            `json:"dry_run"`
	Deleted []PruneDecision `json:"deleted"`
	Kept    []PruneDecision `json:"kept"`
	GC      GCReport        `json:"gc"`
}
