// Package metadb is the server's metadata model: the rows that every
// metadata store (SQLite in metadb/sqlite, PostgreSQL in metadb/postgres)
// keeps and the engine reads. Blocks (small ones inline), backups with
// their tags and labels, manifest entries placed in their folder tree, the
// references from backups to blocks, the activity log and the alerts.
//
// The stores know SQL and rows; the rules that tie rows to stored bytes
// (what a commit must check, what GC may delete, parent matching, corrupt
// blocks) live in the store package, which declares the interface a
// metadata store implements. metadbtest holds the conformance suite that
// every implementation passes.
package metadb

import (
	"errors"
	"time"

	"ib/internal/manifest"
)

// ErrNotFound is returned when a backup, entry or block does not exist.
var ErrNotFound = errors.New("not found")

// Backup is a backup's summary.
type Backup struct {
	ID        int64
	CreatedAt time.Time
	Tags      manifest.Tags
	Files     int64
	Dirs      int64
	Symlinks  int64
	Bytes     int64
	Blocks    int64 // distinct blocks referenced
	Entries   int64
	Labels    manifest.Tags // nil when it has none
	// AddedBytes: the bytes of the blocks no other backup referenced when
	// it was committed; nil until known.
	AddedBytes *int64
}

// Head is what a commit says of the backup besides its entries.
type Head struct {
	Tags   manifest.Tags
	Labels manifest.Tags
	Key    string // idempotency key, "" for none
}

// Counts are a committed backup's totals, which the engine counts while
// the entries pass.
type Counts struct {
	Files, Dirs, Symlinks, Bytes, Entries int64
}

// Block is one stored block.
type Block struct {
	CID      []byte // binary CID
	Size     int64  // uncompressed
	WireSize int64
	Inline   []byte // the wire form when kept in the database; nil when in the block store
}

// BlockRef is a block row as a commit looks it up.
type BlockRef struct {
	ID      int64
	CID     []byte
	Size    int64
	Corrupt bool
}

// EntryRow is a manifest entry as a commit writes it: its number in walk
// order, its parent folder's number (-1 for the root), its block list
// packed (PackBlocks) and the id of its file name when the commit knows it
// (0: the store finds or adds the name).
type EntryRow struct {
	Seq    int64
	Parent int64
	Entry  *manifest.Entry
	Blocks []byte
	NameID int64
}

// ParentEntry is an entry of a commit's parent backup, as the match reads
// it.
type ParentEntry struct {
	Seq    int64
	Path   string
	Blocks []byte // packed
	NameID int64  // 0 if unknown
}

// Totals are the server's counts and sizes, as a scan finds them.
type Totals struct {
	Backups        int64
	LogicalBytes   int64 // file bytes of all live backups
	Blocks         int64
	InlineBlocks   int64
	InlineBytes    int64 // wire bytes kept in the database
	OffloadedBytes int64 // wire bytes in the block store
	UniqueBytes    int64 // uncompressed bytes of all blocks
	LastBackup     map[string]time.Time
}

// ScrubBlock is a block as a scrub reads it.
type ScrubBlock struct {
	ID     int64
	CID    []byte
	Inline []byte
}

// Candidate is a block that garbage collection may delete.
type Candidate struct {
	ID  int64
	CID []byte
}

// Deleted is a block row that garbage collection removed.
type Deleted struct {
	CID       []byte
	Offloaded bool // its bytes are in the block store
	Size      int64
	WireSize  int64
}

// PolicyRow is a backup as the retention policy sees it.
type PolicyRow struct {
	ID           int64
	CreatedAt    time.Time
	TagSet       string
	Files, Bytes int64
}

// Node is one entry of a backup with its place in the tree.
type Node struct {
	Seq   int64
	Entry manifest.Entry
}

// Hit is one search or history result.
type Hit struct {
	Backup Backup
	Entry  manifest.Entry
}

// Job is a row of the activity log.
type Job struct {
	ID       int64
	Kind     string
	Tags     manifest.Tags // nil: none
	BackupID int64         // 0: none
	Client   string
	Started  time.Time
	Finished time.Time // zero while running
	Seen     time.Time // the last word from its client (zero: none since it started)
	Status   string
	Bytes    int64
	Files    int64
	Error    string
	Key      string // its client's idempotency key ("": none)
}

// JobEvent is a line of a job's log.
type JobEvent struct {
	At      time.Time
	Level   string
	Message string
}

// JobFilter selects jobs; zero fields select all. Jobs come newest first,
// with ids below Before when it is set.
type JobFilter struct {
	Kind   string
	Status string
	Tags   manifest.Tags // jobs whose tags include these
	Before int64
	Limit  int
}

// Alert is a firing alert.
type Alert struct {
	Key     string
	Kind    string
	Message string
	Since   time.Time
}

// Kind is a column's type, as a copy between stores converts it.
type Kind int

// Column kinds.
const (
	Int   Kind = iota // integer, NULL allowed where the schema allows it
	Bool              // SQLite 0/1, PostgreSQL boolean
	Text              // text, NULL allowed where the schema allows it
	Bytes             // blob/bytea, NULL allowed where the schema allows it
)

// Column is one column of a table.
type Column struct {
	Name string
	Kind Kind
}

// Table is one table as every store has it.
type Table struct {
	Name    string
	Columns []Column
	// Identity: its id column numbers rows (the copy keeps the numbers
	// and moves the sequence past them).
	Identity bool
}

func cols(spec ...any) []Column {
	out := make([]Column, 0, len(spec)/2)
	for i := 0; i < len(spec); i += 2 {
		out = append(out, Column{spec[i].(string), spec[i+1].(Kind)})
	}
	return out
}

// Tables are the tables of the metadata, in an order that satisfies their
// foreign keys.
var Tables = []Table{
	{"blocks", cols("id", Int, "cid", Bytes, "size", Int, "wire_size", Int, "data", Bytes, "created_at", Int, "seen_at", Int, "corrupt", Bool), true},
	{"backups", cols("id", Int, "created_at", Int, "tagset", Text, "files", Int, "dirs", Int, "symlinks", Int, "bytes", Int, "blocks", Int,
		"entries", Int, "idempotency_key", Text, "deleting", Bool, "labels", Text, "added_bytes", Int, "staged_at", Int), true},
	{"backup_tags", cols("backup_id", Int, "key", Text, "value", Text), false},
	{"names", cols("id", Int, "name", Text), true},
	{"entries", cols("backup_id", Int, "seq", Int, "path", Text, "type", Int, "mode", Int, "mtime_s", Int, "mtime_ns", Int, "size", Int,
		"uid", Int, "gid", Int, "target", Text, "blocks", Bytes, "parent_seq", Int, "name_id", Int, "flags", Int, "plain_size", Int), false},
	{"refs", cols("block_id", Int, "backup_id", Int), false},
	{"jobs", cols("id", Int, "kind", Text, "tags", Text, "backup_id", Int, "client", Text, "started", Int, "finished", Int, "seen", Int,
		"status", Text, "bytes", Int, "files", Int, "error", Text, "key", Text), true},
	{"job_events", cols("job_id", Int, "at", Int, "level", Text, "message", Text), false},
	{"alerts", cols("key", Text, "kind", Text, "message", Text, "since", Int), false},
}
