// Package sqlite is the metadata store in one SQLite file (the embedded
// default): WAL mode, one writer connection and a pool of readers, versioned
// migrations run at open. It knows SQL and rows; the rules live in the store
// package.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"ib/internal/metadb"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver, so every OS/arch cross-compiles
)

// DB is the metadata database.
type DB struct {
	w    *sql.DB // exactly one connection: SQLite has one writer
	r    *sql.DB // readers
	ckpt *sql.DB // the checkpointer's one connection
	now  func() time.Time

	puts     chan putReq
	closed   chan struct{}
	putsDone chan struct{}
	ckptDone chan struct{}
	lastCkpt atomic.Pointer[ckptResult] // for tests' messages

	// names caches name → id of the names table (rows are never deleted,
	// so entries never go stale). A transaction reads it while another,
	// just committed, adds its names: namesMu.
	namesMu sync.Mutex
	names   map[string]int64
}

// Pools are the database's connection pools by name, for their metrics:
// the writer's wait time is how long work queued for SQLite's one writer.
func (db *DB) Pools() map[string]*sql.DB {
	return map[string]*sql.DB{"sqlite_writer": db.w, "sqlite_readers": db.r}
}

// Open opens or creates the database at path and migrates it.
func Open(ctx context.Context, path string) (*DB, error) {
	dsn := func(extra string) string {
		q := url.Values{}
		// temp_store(MEMORY): statement journals (a multi-row insert that
		// may fail a constraint keeps the pages it changes until it ends)
		// stay in memory instead of a temporary file written with two
		// syscalls per page: 7 % of the server's CPU in a backup of
		// 1,000,000 tiny files.
		for _, p := range []string{"journal_mode(WAL)", "foreign_keys(1)", "busy_timeout(10000)", "synchronous(NORMAL)", "temp_store(MEMORY)"} {
			q.Add("_pragma", p)
		}
		return "file:" + path + "?" + q.Encode() + extra
	}
	// The writer keeps 32 MiB of pages and leaves checkpoints to the
	// checkpointer (checkpoint.go), but for a WAL of writerCheckpoint
	// frames.
	w, err := openOneConn(dsn(fmt.Sprintf("&_txlock=immediate&_pragma=cache_size(-32768)&_pragma=wal_autocheckpoint(%d)", writerCheckpoint)))
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	db := &DB{w: w, now: time.Now, names: map[string]int64{}}
	if err := db.migrate(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn("&_pragma=query_only(1)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	r.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)*2))
	db.r = r
	if db.ckpt, err = openOneConn(dsn("")); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	db.puts, db.closed, db.putsDone, db.ckptDone = make(chan putReq, 512), make(chan struct{}), make(chan struct{}), make(chan struct{})
	go db.putLoop()
	go db.checkpointLoop(checkpointPoll, checkpointLag)
	return db, nil
}

// openOneConn opens a pool of exactly one connection, kept open: the
// writer's (SQLite has one writer) and the checkpointer's.
func openOneConn(dsn string) (*sql.DB, error) {
	c, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	c.SetMaxOpenConns(1)
	c.SetConnMaxLifetime(0)
	c.SetConnMaxIdleTime(0)
	return c, nil
}

// SetClock replaces the clock (tests move time instead of sleeping).
func (db *DB) SetClock(now func() time.Time) { db.now = now }

// Close closes both pools; the WAL is checkpointed by the last close.
func (db *DB) Close() error {
	select {
	case <-db.closed:
	default:
		close(db.closed)
		<-db.putsDone
		<-db.ckptDone
	}
	return errors.Join(db.ckpt.Close(), db.r.Close(), db.w.Close())
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

var migrations = []string{
	// 1: the first schema.
	`
CREATE TABLE blocks (
	id         INTEGER PRIMARY KEY,
	cid        BLOB    NOT NULL UNIQUE,  -- binary CIDv1
	size       INTEGER NOT NULL,         -- uncompressed bytes
	wire_size  INTEGER NOT NULL,         -- bytes of the LZ4 frame
	data       BLOB,                     -- the wire form when inline, else NULL (block store)
	created_at INTEGER NOT NULL,         -- unix ns
	seen_at    INTEGER NOT NULL          -- unix ns of the last upload or missing-query
);
CREATE TABLE backups (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	created_at      INTEGER NOT NULL,  -- unix ns
	tagset          TEXT    NOT NULL,  -- canonical JSON of the tags
	files           INTEGER NOT NULL,
	dirs            INTEGER NOT NULL,
	symlinks        INTEGER NOT NULL,
	bytes           INTEGER NOT NULL,
	blocks          INTEGER NOT NULL,
	entries         INTEGER NOT NULL,
	idempotency_key TEXT UNIQUE
);
CREATE INDEX backups_by_tagset ON backups(tagset, created_at);
CREATE INDEX backups_by_time ON backups(created_at);
CREATE TABLE backup_tags (
	backup_id INTEGER NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
	key       TEXT    NOT NULL,
	value     TEXT    NOT NULL,
	PRIMARY KEY (backup_id, key)
) WITHOUT ROWID;
CREATE INDEX backup_tags_by_kv ON backup_tags(key, value);
CREATE TABLE entries (
	backup_id INTEGER NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
	seq       INTEGER NOT NULL,
	path      TEXT    NOT NULL,
	type      INTEGER NOT NULL,  -- 0 dir, 1 file, 2 symlink
	mode      INTEGER NOT NULL,
	mtime_s   INTEGER NOT NULL,
	mtime_ns  INTEGER NOT NULL,
	size      INTEGER NOT NULL,
	uid       INTEGER NOT NULL,
	gid       INTEGER NOT NULL,
	target    TEXT,
	blocks    BLOB,              -- packed (cid, size) pairs
	PRIMARY KEY (backup_id, seq)
) WITHOUT ROWID;
CREATE TABLE refs (
	block_id  INTEGER NOT NULL REFERENCES blocks(id),
	backup_id INTEGER NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
	PRIMARY KEY (block_id, backup_id)
) WITHOUT ROWID;
CREATE INDEX refs_by_backup ON refs(backup_id);
`,
	// 2: backups being deleted are hidden at once and removed in small
	// transactions.
	`
ALTER TABLE backups ADD COLUMN deleting INTEGER NOT NULL DEFAULT 0;
`,
	// 3: browsing one folder at a time (parent_seq) and searching file
	// names (a trigram index over the distinct names).
	`
CREATE TABLE names (
	id   INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE names_fts USING fts5(name, content='names', content_rowid='id', tokenize='trigram');
CREATE TRIGGER names_ai AFTER INSERT ON names BEGIN
	INSERT INTO names_fts(rowid, name) VALUES (new.id, new.name);
END;
ALTER TABLE entries ADD COLUMN parent_seq INTEGER;
ALTER TABLE entries ADD COLUMN name_id INTEGER;
CREATE INDEX entries_by_parent ON entries(backup_id, parent_seq, name_id);
CREATE INDEX entries_by_name ON entries(name_id);
`,
	// 4: blocks that a scrub found rotten: reported missing, so the next
	// backup that has their bytes uploads them again and heals them.
	`
ALTER TABLE blocks ADD COLUMN corrupt INTEGER NOT NULL DEFAULT 0;
`,
	// 5: the few blocks marked corrupt, indexed on their own: the commit
	// then finds blocks by CID in the CID index alone (reading the corrupt
	// flag from a row meant reading past the small block's bytes in it)
	// and sets the corrupt ones aside with this index, which costs nothing
	// to keep while no block is corrupt.
	`
CREATE INDEX blocks_corrupt ON blocks(id) WHERE corrupt = 1;
`,
	// 6: refs without the foreign key on blocks. Checking it read a
	// blocks row (with a small block's bytes in it) for each reference of
	// each commit: three quarters of the time of recording a backup's
	// references. Both writers of the pair already hold the invariant in
	// their transaction: a commit references only blocks it has just
	// looked up, and garbage collection deletes a block only where no
	// reference exists (DeleteBlocks).
	`
CREATE TABLE refs_new (
	block_id  INTEGER NOT NULL,
	backup_id INTEGER NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
	PRIMARY KEY (block_id, backup_id)
) WITHOUT ROWID;
INSERT INTO refs_new (block_id, backup_id) SELECT block_id, backup_id FROM refs;
DROP TABLE refs;
ALTER TABLE refs_new RENAME TO refs;
CREATE INDEX refs_by_backup ON refs(backup_id);
`,
	// 7: live capture. An entry's flags (1: changed while read); a
	// backup's labels (canonical JSON, metadata outside its tag set).
	// Hard links are entries of type 3 with the first path as target.
	`
ALTER TABLE entries ADD COLUMN flags INTEGER NOT NULL DEFAULT 0;
ALTER TABLE backups ADD COLUMN labels TEXT;
`,
	// 8: the activity log: jobs (backups, restores, downloads, deletes,
	// prune, GC and scrub runs) and their events.
	`
CREATE TABLE jobs (
	id        INTEGER PRIMARY KEY,
	kind      TEXT NOT NULL,
	tags      TEXT NOT NULL DEFAULT '',  -- canonical JSON, or ''
	backup_id INTEGER,
	client    TEXT NOT NULL DEFAULT '',
	started   INTEGER NOT NULL,          -- unix ns
	finished  INTEGER,                   -- unix ns; NULL while running
	status    TEXT NOT NULL,             -- running, ok, warning, failed, lost
	bytes     INTEGER NOT NULL DEFAULT 0,
	files     INTEGER NOT NULL DEFAULT 0,
	error     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX jobs_by_started ON jobs(started);
CREATE INDEX jobs_running ON jobs(id) WHERE status = 'running';
CREATE TABLE job_events (
	job_id  INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
	at      INTEGER NOT NULL,
	level   TEXT NOT NULL,
	message TEXT NOT NULL
);
CREATE INDEX job_events_by_job ON job_events(job_id, at);
`,
	// 9: the server's firing alerts, so a restart neither forgets nor
	// repeats them.
	`
CREATE TABLE alerts (
	key     TEXT PRIMARY KEY,
	kind    TEXT NOT NULL,
	message TEXT NOT NULL,
	since   INTEGER NOT NULL  -- unix ns
);
`,
	// 10: what a backup added: the bytes of the blocks it referenced
	// first, filled in just after its commit (NULL before, and for
	// backups committed before this column).
	`
ALTER TABLE backups ADD COLUMN added_bytes INTEGER;
`,
	// 11: a running job's last word from its client (unix ns), so that
	// any server sharing the database can tell a silent job from a live
	// one.
	`
ALTER TABLE jobs ADD COLUMN seen INTEGER;
`,
	// 12: encrypted content. An entry of flag 2 is an age file; its own
	// size is plain_size (NULL for the others).
	`
ALTER TABLE entries ADD COLUMN plain_size INTEGER;
`,
	// 13: staged commits. A backup recorded while its manifest streams
	// in is hidden (deleting = 1) with staged_at set to its last write
	// (unix ns); purges pass over it until it is finished (both cleared)
	// or dropped (staged_at cleared).
	`
ALTER TABLE backups ADD COLUMN staged_at INTEGER;
`,
	// 14: the trigram index of names is filled once per transaction
	// (indexNames) instead of by a trigger per name: FTS5 writes its
	// pending terms out as a new segment at the start of every statement
	// of a transaction that wrote to it, so with the trigger each batch of
	// a commit's entries wrote a segment of the names before it (a backup
	// of 1,000,000 tiny files: ~4,000 segments, 4.7 CPU-s of merging).
	// The index is made again without the per-row token counts
	// (columnsize=0): only ranking reads them, and search does not rank
	// (writing them was 1.8 of the 3 CPU-s left in that backup).
	`
DROP TRIGGER names_ai;
DROP TABLE names_fts;
CREATE VIRTUAL TABLE names_fts USING fts5(name, content='names', content_rowid='id', tokenize='trigram', columnsize=0);
INSERT INTO names_fts (names_fts) VALUES ('rebuild');
`,
	// 15: a job's key, from its client: a start retried after its answer
	// was lost finds the job it started instead of adding a second one
	// (which would end as lost ten minutes later). NULLs do not collide.
	`
ALTER TABLE jobs ADD COLUMN key TEXT;
CREATE UNIQUE INDEX jobs_by_key ON jobs(key);
`,
}

func (db *DB) migrate(ctx context.Context) error {
	var version int
	if err := db.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this ib (%d): upgrade ib", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		tx, err := db.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migration %d: %w", v+1, err)
		}
	}
	return db.backfillTree(ctx)
}

// backfillTree gives entries committed before migration 3 their parent and
// name, one backup per transaction.
func (db *DB) backfillTree(ctx context.Context) error {
	rows, err := db.w.QueryContext(ctx, "SELECT DISTINCT backup_id FROM entries WHERE name_id IS NULL")
	if err != nil {
		return fmt.Errorf("backfill: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if err := db.backfillBackup(ctx, id); err != nil {
			return fmt.Errorf("backfill backup %d: %w", id, err)
		}
	}
	return nil
}

func (db *DB) backfillBackup(ctx context.Context, id int64) error {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT seq, path, type FROM entries WHERE backup_id = ? ORDER BY seq", id)
	if err != nil {
		return err
	}
	type row struct {
		seq  int64
		path string
		typ  int
	}
	var all []row
	for rows.Next() {
		var r row
		rows.Scan(&r.seq, &r.path, &r.typ)
		all = append(all, r)
	}
	rows.Close()
	maxName, err := lastName(ctx, tx)
	if err != nil {
		return err
	}
	var t metadb.Tree
	pending := map[string]int64{}
	for _, r := range all {
		parent := nullParent(t.Parent(r.path, r.seq, r.typ == 0))
		nid, err := db.nameID(ctx, tx, metadb.BaseName(r.path), pending)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE entries SET parent_seq = ?, name_id = ? WHERE backup_id = ? AND seq = ?", parent, nid, id, r.seq); err != nil {
			return err
		}
	}
	if err := indexNames(ctx, tx, maxName); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	db.cacheNames(pending)
	return nil
}
