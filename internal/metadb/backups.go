package metadb

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"ib/internal/block"
	"ib/internal/manifest"
)

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

// Entry flags, a bit set in entries.flags.
const flagChanged = 1

func entryFlags(e *manifest.Entry) int {
	if e.ChangedDuringRead {
		return flagChanged
	}
	return 0
}

// MaxMissingReported bounds the CIDs a refused commit reports; the client
// uploads them and commits again, learning of any others then.
const MaxMissingReported = 100_000

// Commit records a backup in one transaction. open returns a reader of the
// manifest's entries, already validated, from the first until io.EOF; it is
// called again when a second pass is needed. If a backup with the same
// idempotency key exists, Commit returns its id and existed=true and reads
// no entry. If some blocks are not stored, nothing is recorded and their
// CIDs are returned.
func (db *DB) Commit(ctx context.Context, h Head, open func() (func() (*manifest.Entry, error), error)) (id int64, existed bool, missing []string, err error) {
	tags, key := h.Tags, h.Key
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	defer func() {
		if err != nil || len(missing) > 0 || existed {
			tx.Rollback()
		}
	}()
	if key != "" {
		err = tx.QueryRowContext(ctx, "SELECT id FROM backups WHERE idempotency_key = ?", key).Scan(&id)
		if err == nil {
			return id, true, nil, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil, fmt.Errorf("sqlite: commit: %w", err)
		}
	}
	var keyArg any
	if key != "" {
		keyArg = key
	}
	var labels any
	if len(h.Labels) > 0 {
		labels = h.Labels.Canonical()
	}
	err = tx.QueryRowContext(ctx, `INSERT INTO backups (created_at, tagset, files, dirs, symlinks, bytes, blocks, entries, idempotency_key, labels)
VALUES (?, ?, 0, 0, 0, 0, 0, 0, ?, ?) RETURNING id`, db.now().UnixNano(), tags.Canonical(), keyArg, labels).Scan(&id)
	if err != nil {
		return 0, false, nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	for k, v := range tags {
		if _, err = tx.ExecContext(ctx, "INSERT INTO backup_tags (backup_id, key, value) VALUES (?, ?, ?)", id, k, v); err != nil {
			return 0, false, nil, fmt.Errorf("sqlite: commit tags: %w", err)
		}
	}
	var s Backup
	var tree treeTracker
	newNames := map[string]int64{}
	seenMissing := map[string]bool{}
	b := &commitBatch{tx: tx, backup: id, pending: newNames}
	defer b.close()
	if err = b.loadCorrupt(ctx); err != nil {
		return 0, false, nil, err
	}
	// The match with the parent relies on its references; with blocks
	// marked corrupt, every block is looked up (and the corrupt ones are
	// reported missing).
	var ps *parentScan
	if len(b.corrupt) == 0 {
		if ps, err = findParent(ctx, tx, tags, id, func(q string) (*sql.Stmt, error) { return b.stmt(ctx, q) }); err != nil {
			return 0, false, nil, err
		}
	}
	var gone goneBlocks
	var reused seqSet // entries whose blocks are the parent's
	anyReused := false
	db.reused = 0
	var goneErr error
	dropped := func(pe *parentEntry) {
		if goneErr == nil {
			goneErr = gone.add(pe.blocks)
		}
	}
	next, err := open()
	if err != nil {
		return 0, false, nil, err
	}
	type cidPair struct {
		bin  []byte
		text string
		size int64
	}
	var cids []cidPair
	for seq := int64(0); ; seq++ {
		e, nerr := next()
		if nerr == io.EOF {
			break
		}
		if nerr != nil {
			return 0, false, nil, nerr
		}
		var packed []byte
		var target any
		cids = cids[:0]
		switch e.Type {
		case manifest.TypeDir:
			s.Dirs++
		case manifest.TypeSymlink:
			s.Symlinks++
			target = e.Target
		case manifest.TypeFile, manifest.TypeHardlink:
			s.Files++
			s.Bytes += e.Size
			if e.Type == manifest.TypeHardlink {
				target = e.Target
			}
			for _, bl := range e.Blocks {
				c, perr := block.ParseCID(bl.CID)
				if perr != nil {
					return 0, false, nil, perr
				}
				cb := c.Bytes()
				packed = binary.AppendUvarint(packed, uint64(len(cb)))
				packed = append(packed, cb...)
				packed = binary.AppendUvarint(packed, uint64(bl.Size))
				cids = append(cids, cidPair{cb, bl.CID, bl.Size})
			}
		}
		var pe *parentEntry
		if ps != nil {
			if pe, err = ps.match(ctx, e.Path, dropped); err != nil {
				return 0, false, nil, err
			}
			if goneErr != nil {
				return 0, false, nil, goneErr
			}
		}
		if pe != nil && len(packed) > 0 && bytes.Equal(pe.blocks, packed) {
			reused.add(seq)
			anyReused = true
			db.reused++
		} else {
			if pe != nil {
				dropped(pe)
			}
			for _, c := range cids {
				if err = b.addCID(c.bin, c.text, c.size); err != nil {
					return 0, false, nil, err
				}
			}
		}
		s.Entries++
		parent := tree.parent(e.Path, seq, e.Type == manifest.TypeDir)
		if len(missing) == 0 {
			b.rows = append(b.rows, id, seq, e.Path, typeCode(e.Type), e.Mode,
				e.MTime.Unix(), e.MTime.Nanosecond(), e.Size, e.UID, e.GID, target, packed, parent, entryFlags(e), nil)
			if pe != nil && pe.nameID != 0 {
				b.rows[len(b.rows)-1] = pe.nameID // same path, same name
			} else {
				b.setName(db, baseName(e.Path), newNames)
			}
		}
		if b.full() {
			if missing, err = b.flush(ctx, missing, seenMissing); err != nil {
				return 0, false, nil, err
			}
		}
	}
	if ps != nil {
		// What the parent has past the new backup's last entry was dropped.
		if err = ps.drain(ctx, dropped); err != nil {
			return 0, false, nil, err
		}
		if goneErr != nil {
			return 0, false, nil, goneErr
		}
	}
	if missing, err = b.flush(ctx, missing, seenMissing); err != nil {
		return 0, false, nil, err
	}
	if len(missing) > 0 {
		return 0, false, missing, nil
	}
	if anyReused {
		if err = b.refReused(ctx, ps.id, open, reused, &gone); err != nil {
			return 0, false, nil, err
		}
	}
	if err = tx.QueryRowContext(ctx, "SELECT count(*) FROM refs WHERE backup_id = ?", id).Scan(&s.Blocks); err != nil {
		return 0, false, nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	if _, err = tx.ExecContext(ctx, "UPDATE backups SET files=?, dirs=?, symlinks=?, bytes=?, blocks=?, entries=? WHERE id=?",
		s.Files, s.Dirs, s.Symlinks, s.Bytes, s.Blocks, s.Entries, id); err != nil {
		return 0, false, nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	if err = tx.Commit(); err != nil {
		return 0, false, nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	db.cacheNames(newNames)
	return id, false, nil, nil
}

const backupCols = "id, created_at, tagset, files, dirs, symlinks, bytes, blocks, entries, labels, added_bytes"

func scanBackup(sc interface{ Scan(...any) error }) (Backup, error) {
	var b Backup
	var created int64
	var tagset string
	var labels sql.NullString
	var added sql.NullInt64
	if err := sc.Scan(&b.ID, &created, &tagset, &b.Files, &b.Dirs, &b.Symlinks, &b.Bytes, &b.Blocks, &b.Entries, &labels, &added); err != nil {
		return Backup{}, err
	}
	if added.Valid {
		b.AddedBytes = &added.Int64
	}
	if labels.Valid {
		if err := json.Unmarshal([]byte(labels.String), &b.Labels); err != nil {
			return Backup{}, fmt.Errorf("labels of backup %d: %w", b.ID, err)
		}
	}
	b.CreatedAt = time.Unix(0, created).UTC()
	if err := json.Unmarshal([]byte(tagset), &b.Tags); err != nil {
		return Backup{}, fmt.Errorf("tags of backup %d: %w", b.ID, err)
	}
	return b, nil
}

// Get returns one backup.
func (db *DB) Get(ctx context.Context, id int64) (Backup, error) {
	b, err := scanBackup(db.r.QueryRowContext(ctx, "SELECT "+backupCols+" FROM backups WHERE id = ? AND deleting = 0", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Backup{}, ErrNotFound
	}
	if err != nil {
		return Backup{}, fmt.Errorf("sqlite: backup %d: %w", id, err)
	}
	return b, nil
}

// Latest returns the newest backup whose tags equal tags exactly.
func (db *DB) Latest(ctx context.Context, tags manifest.Tags) (Backup, error) {
	b, err := scanBackup(db.r.QueryRowContext(ctx, "SELECT "+backupCols+
		" FROM backups WHERE tagset = ? AND deleting = 0 ORDER BY created_at DESC, id DESC LIMIT 1", tags.Canonical()))
	if errors.Is(err, sql.ErrNoRows) {
		return Backup{}, ErrNotFound
	}
	if err != nil {
		return Backup{}, fmt.Errorf("sqlite: latest backup: %w", err)
	}
	return b, nil
}

// List returns the backups whose tags include every pair of filter, newest
// first.
func (db *DB) List(ctx context.Context, filter manifest.Tags) ([]Backup, error) {
	q := "SELECT " + backupCols + " FROM backups b WHERE deleting = 0"
	var args []any
	if len(filter) > 0 {
		var conds []string
		for k, v := range filter {
			conds = append(conds, "(key = ? AND value = ?)")
			args = append(args, k, v)
		}
		q += " AND (SELECT count(*) FROM backup_tags t WHERE t.backup_id = b.id AND (" + strings.Join(conds, " OR ") + ")) = ?"
		args = append(args, len(filter))
	}
	q += " ORDER BY created_at DESC, id DESC"
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list backups: %w", err)
	}
	defer rows.Close()
	var out []Backup
	for rows.Next() {
		b, err := scanBackup(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list backups: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list backups: %w", err)
	}
	return out, nil
}

// Entries returns up to limit entries of a backup with seq > after, in
// walk order, and the seq of the last one. Paging keeps read transactions
// short however large the manifest.
func (db *DB) Entries(ctx context.Context, id, after int64, limit int) ([]manifest.Entry, int64, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT seq, path, type, mode, mtime_s, mtime_ns, size, uid, gid, target, blocks, flags
FROM entries WHERE backup_id = ? AND seq > ? ORDER BY seq LIMIT ?`, id, after, limit)
	if err != nil {
		return nil, after, fmt.Errorf("sqlite: entries of %d: %w", id, err)
	}
	defer rows.Close()
	out := make([]manifest.Entry, 0, limit)
	last := after
	for rows.Next() {
		var e manifest.Entry
		var typ int
		var ms, mns int64
		var target sql.NullString
		var packed []byte
		var flags int
		if err := rows.Scan(&last, &e.Path, &typ, &e.Mode, &ms, &mns, &e.Size, &e.UID, &e.GID, &target, &packed, &flags); err != nil {
			return nil, after, fmt.Errorf("sqlite: entries of %d: %w", id, err)
		}
		e.Type = typeName(typ)
		e.MTime = unixTime(ms, mns)
		e.Target = target.String
		e.ChangedDuringRead = flags&flagChanged != 0
		if e.Blocks, err = unpackBlocks(packed); err != nil {
			return nil, after, fmt.Errorf("sqlite: entry %q of %d: %w", e.Path, id, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("sqlite: entries of %d: %w", id, err)
	}
	return out, last, nil
}

func unixTime(s, ns int64) time.Time { return time.Unix(s, ns).UTC() }

func typeCode(t manifest.Type) int {
	switch t {
	case manifest.TypeFile:
		return 1
	case manifest.TypeSymlink:
		return 2
	case manifest.TypeHardlink:
		return 3
	}
	return 0
}

func typeName(c int) manifest.Type {
	switch c {
	case 1:
		return manifest.TypeFile
	case 2:
		return manifest.TypeSymlink
	case 3:
		return manifest.TypeHardlink
	}
	return manifest.TypeDir
}

func unpackBlocks(p []byte) ([]manifest.Block, error) {
	var out []manifest.Block
	for len(p) > 0 {
		n, k := binary.Uvarint(p)
		if k <= 0 || uint64(len(p)-k) < n {
			return nil, errors.New("corrupt block list")
		}
		p = p[k:]
		c, err := block.CIDFromBytes(p[:n])
		if err != nil {
			return nil, err
		}
		p = p[n:]
		size, k := binary.Uvarint(p)
		if k <= 0 {
			return nil, errors.New("corrupt block list")
		}
		p = p[k:]
		out = append(out, manifest.Block{CID: c.String(), Size: int64(size)})
	}
	return out, nil
}

// commitBatch gathers a few hundred entries of a commit and writes them
// with one statement each for the block lookup, the entries and the
// references: statements, not rows, are what cost in SQLite.
type commitBatch struct {
	tx     *sql.Tx
	backup int64
	rows   []any // entries, entryCols values each
	cids   [][]byte
	names  map[string]string // binary CID → its text
	sizes  map[string]int64  // binary CID → the size the manifest gives it
	// File names not yet in the names table, with the rows that use them;
	// pending holds the ids given in this transaction.
	newNames map[string][]int
	pending  map[string]int64
	// stmts are the batch statements prepared once per commit: parsing a
	// statement of hundreds of placeholders cost as much as running it.
	stmts map[string]*sql.Stmt
	// corrupt holds the ids of blocks a scrub found rotten (read once, in
	// the transaction; almost always none).
	corrupt map[int64]bool
}

// loadCorrupt reads the ids of the blocks marked corrupt.
func (b *commitBatch) loadCorrupt(ctx context.Context) error {
	rows, err := b.tx.QueryContext(ctx, "SELECT id FROM blocks WHERE corrupt = 1")
	if err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	defer rows.Close()
	b.corrupt = map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("sqlite: commit: %w", err)
		}
		b.corrupt[id] = true
	}
	return rows.Err()
}

// padded rounds n up to a multiple of 64.
func padded(n int) int { return (n + 63) &^ 63 }

// stmt returns a statement of the transaction, prepared on first use.
func (b *commitBatch) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := b.stmts[q]; ok {
		return st, nil
	}
	st, err := b.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if b.stmts == nil {
		b.stmts = map[string]*sql.Stmt{}
	}
	b.stmts[q] = st
	return st, nil
}

func (b *commitBatch) close() {
	for _, st := range b.stmts {
		st.Close()
	}
}

// setName fills in the last row's name id, or leaves it for flush to find
// with the batch's other new names.
func (b *commitBatch) setName(db *DB, name string, pending map[string]int64) {
	at := len(b.rows) - 1
	if id, ok := db.names[name]; ok {
		b.rows[at] = id
	} else if id, ok := pending[name]; ok {
		b.rows[at] = id
	} else {
		if b.newNames == nil {
			b.newNames = map[string][]int{}
		}
		b.newNames[name] = append(b.newNames[name], at)
	}
}

// resolveNames records the batch's new names with two statements and fills
// in their ids: one statement per name cost more than the entries.
func (b *commitBatch) resolveNames(ctx context.Context) error {
	if len(b.newNames) == 0 {
		return nil
	}
	args := make([]any, 0, len(b.newNames))
	for name := range b.newNames {
		args = append(args, name)
	}
	ph := placeholders(len(args))
	if _, err := b.tx.ExecContext(ctx, "INSERT OR IGNORE INTO names (name) VALUES "+
		strings.TrimSuffix(strings.Repeat("(?),", len(args)), ","), args...); err != nil {
		return fmt.Errorf("sqlite: names: %w", err)
	}
	rows, err := b.tx.QueryContext(ctx, "SELECT id, name FROM names WHERE name IN ("+ph+")", args...)
	if err != nil {
		return fmt.Errorf("sqlite: names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var name string
		if err := rows.Scan(&id, &name); err != nil {
			return fmt.Errorf("sqlite: names: %w", err)
		}
		for _, at := range b.newNames[name] {
			b.rows[at] = id
		}
		if len(b.pending) >= maxPendingNames {
			// Only a cache: a name missing from it is looked up again.
			// A commit of a million distinct names would otherwise hold
			// them all.
			clear(b.pending)
		}
		b.pending[name] = id
		delete(b.newNames, name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: names: %w", err)
	}
	if len(b.newNames) > 0 {
		return fmt.Errorf("sqlite: names: %d names not found after their insert", len(b.newNames))
	}
	return nil
}

const (
	maxPendingNames = 50_000
	entryCols       = 15
	batchRows       = 256
	batchCIDs       = 500
	entriesSQL      = "INSERT INTO entries (backup_id, seq, path, type, mode, mtime_s, mtime_ns, size, uid, gid, target, blocks, parent_seq, flags, name_id) VALUES "
)

func (b *commitBatch) addCID(bin []byte, text string, size int64) error {
	if b.names == nil {
		b.names, b.sizes = map[string]string{}, map[string]int64{}
	}
	if _, dup := b.names[string(bin)]; dup {
		if b.sizes[string(bin)] != size {
			return fmt.Errorf("%w: block %s given as %d and %d bytes", ErrSizeMismatch, text, b.sizes[string(bin)], size)
		}
		return nil
	}
	b.names[string(bin)] = text
	b.sizes[string(bin)] = size
	b.cids = append(b.cids, bin)
	return nil
}

// ErrSizeMismatch is a manifest that gives a block another size than the
// stored block's: downloads of its file would break.
var ErrSizeMismatch = errors.New("block size does not match the stored block")

func (b *commitBatch) full() bool {
	return len(b.rows) >= batchRows*entryCols || len(b.cids) >= batchCIDs
}

// flush checks the batch's blocks and, while none is missing, writes its
// entries and references. It returns the missing CIDs so far.
func (b *commitBatch) flush(ctx context.Context, missing []string, seen map[string]bool) ([]string, error) {
	defer func() { b.rows, b.cids, b.names, b.sizes, b.newNames = b.rows[:0], b.cids[:0], nil, nil, nil }()
	ids := make([]int64, 0, len(b.cids))
	if len(b.cids) > 0 {
		// The list is padded with its first CID to a multiple of 64, so
		// that a few prepared statements serve every batch.
		args := make([]any, padded(len(b.cids)))
		for i := range args {
			args[i] = b.cids[0]
		}
		for i, c := range b.cids {
			args[i] = c
		}
		// The size comes from the block's row; rows of one backup's new
		// blocks lie together (ids follow the upload order).
		st, err := b.stmt(ctx, "SELECT id, cid, size FROM blocks WHERE cid IN ("+placeholders(len(args))+")")
		if err != nil {
			return missing, fmt.Errorf("sqlite: commit: %w", err)
		}
		rows, err := st.QueryContext(ctx, args...)
		if err != nil {
			return missing, fmt.Errorf("sqlite: commit: %w", err)
		}
		found := map[string]bool{}
		for rows.Next() {
			var id, size int64
			var c []byte
			if err := rows.Scan(&id, &c, &size); err != nil {
				rows.Close()
				return missing, fmt.Errorf("sqlite: commit: %w", err)
			}
			if b.corrupt[id] {
				continue // reported missing: the client's upload heals it
			}
			if want := b.sizes[string(c)]; want != size {
				rows.Close()
				return missing, fmt.Errorf("%w: block %s is %d bytes, the manifest says %d", ErrSizeMismatch, b.names[string(c)], size, want)
			}
			found[string(c)] = true
			ids = append(ids, id)
		}
		rows.Close()
		for _, c := range b.cids {
			if !found[string(c)] && !seen[b.names[string(c)]] && len(missing) < MaxMissingReported {
				seen[b.names[string(c)]] = true
				missing = append(missing, b.names[string(c)])
			}
		}
	}
	if len(missing) > 0 {
		return missing, nil // the transaction will be rolled back
	}
	if len(b.rows) > 0 {
		if err := b.resolveNames(ctx); err != nil {
			return missing, err
		}
		n := len(b.rows) / entryCols
		q := entriesSQL + strings.TrimSuffix(strings.Repeat("("+strings.TrimSuffix(strings.Repeat("?,", entryCols), ",")+"),", n), ",")
		var err error
		if n == batchRows {
			var st *sql.Stmt
			if st, err = b.stmt(ctx, q); err == nil {
				_, err = st.ExecContext(ctx, b.rows...)
			}
		} else {
			_, err = b.tx.ExecContext(ctx, q, b.rows...)
		}
		if err != nil {
			return missing, fmt.Errorf("sqlite: commit entries: %w", err)
		}
	}
	if len(ids) > 0 {
		// Padded like the lookup: repeated pairs are ignored.
		args := make([]any, 0, 2*padded(len(ids)))
		for _, id := range ids {
			args = append(args, id, b.backup)
		}
		for len(args) < cap(args) {
			args = append(args, ids[0], b.backup)
		}
		q := "INSERT OR IGNORE INTO refs (block_id, backup_id) VALUES " + strings.TrimSuffix(strings.Repeat("(?,?),", len(args)/2), ",")
		st, err := b.stmt(ctx, q)
		if err == nil {
			_, err = st.ExecContext(ctx, args...)
		}
		if err != nil {
			return missing, fmt.Errorf("sqlite: commit refs: %w", err)
		}
	}
	return missing, nil
}

// FillAdded records what backup id added: the bytes of the blocks it
// references that no other backup references now (run just after its
// commit, outside the commit's transaction).
func (db *DB) FillAdded(ctx context.Context, id int64) (int64, error) {
	var added int64
	err := db.r.QueryRowContext(ctx, `SELECT COALESCE(sum(b.size), 0) FROM refs r JOIN blocks b ON b.id = r.block_id
		WHERE r.backup_id = ? AND NOT EXISTS (SELECT 1 FROM refs o WHERE o.block_id = r.block_id AND o.backup_id != ?)`, id, id).Scan(&added)
	if err != nil {
		return 0, fmt.Errorf("sqlite: added bytes of backup %d: %w", id, err)
	}
	if _, err := db.w.ExecContext(ctx, `UPDATE backups SET added_bytes = ? WHERE id = ?`, added, id); err != nil {
		return 0, fmt.Errorf("sqlite: added bytes of backup %d: %w", id, err)
	}
	return added, nil
}
