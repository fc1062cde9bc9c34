package metadb

import (
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
}

// MaxMissingReported bounds the CIDs a refused commit reports; the client
// uploads them and commits again, learning of any others then.
const MaxMissingReported = 100_000

// Commit records a backup in one transaction. next yields the manifest's
// entries, already validated, until io.EOF. If a backup with the same
// idempotency key exists, Commit returns its id and existed=true and reads
// no entry. If some blocks are not stored, nothing is recorded and their
// CIDs are returned.
func (db *DB) Commit(ctx context.Context, tags manifest.Tags, key string, next func() (*manifest.Entry, error)) (id int64, existed bool, missing []string, err error) {
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
	err = tx.QueryRowContext(ctx, `INSERT INTO backups (created_at, tagset, files, dirs, symlinks, bytes, blocks, entries, idempotency_key)
VALUES (?, ?, 0, 0, 0, 0, 0, 0, ?) RETURNING id`, db.now().UnixNano(), tags.Canonical(), keyArg).Scan(&id)
	if err != nil {
		return 0, false, nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	for k, v := range tags {
		if _, err = tx.ExecContext(ctx, "INSERT INTO backup_tags (backup_id, key, value) VALUES (?, ?, ?)", id, k, v); err != nil {
			return 0, false, nil, fmt.Errorf("sqlite: commit tags: %w", err)
		}
	}
	insEntry, err := tx.PrepareContext(ctx, `INSERT INTO entries
(backup_id, seq, path, type, mode, mtime_s, mtime_ns, size, uid, gid, target, blocks, parent_seq, name_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return 0, false, nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	defer insEntry.Close()
	findBlock, err := tx.PrepareContext(ctx, "SELECT id FROM blocks WHERE cid = ? AND corrupt = 0")
	if err != nil {
		return 0, false, nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	defer findBlock.Close()
	insRef, err := tx.PrepareContext(ctx, "INSERT OR IGNORE INTO refs (block_id, backup_id) VALUES (?, ?)")
	if err != nil {
		return 0, false, nil, fmt.Errorf("sqlite: commit: %w", err)
	}
	defer insRef.Close()

	var s Backup
	var tree treeTracker
	newNames := map[string]int64{}
	seenMissing := map[string]bool{}
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
		switch e.Type {
		case manifest.TypeDir:
			s.Dirs++
		case manifest.TypeSymlink:
			s.Symlinks++
			target = e.Target
		case manifest.TypeFile:
			s.Files++
			s.Bytes += e.Size
			for _, b := range e.Blocks {
				c, perr := block.ParseCID(b.CID)
				if perr != nil {
					return 0, false, nil, perr
				}
				cb := c.Bytes()
				packed = binary.AppendUvarint(packed, uint64(len(cb)))
				packed = append(packed, cb...)
				packed = binary.AppendUvarint(packed, uint64(b.Size))
				var bid int64
				qerr := findBlock.QueryRowContext(ctx, cb).Scan(&bid)
				if errors.Is(qerr, sql.ErrNoRows) {
					if !seenMissing[b.CID] && len(missing) < MaxMissingReported {
						seenMissing[b.CID] = true
						missing = append(missing, b.CID)
					}
					continue
				}
				if qerr != nil {
					return 0, false, nil, fmt.Errorf("sqlite: commit: %w", qerr)
				}
				if len(missing) > 0 {
					continue // will be rolled back; only collect what is missing
				}
				if _, err = insRef.ExecContext(ctx, bid, id); err != nil {
					return 0, false, nil, fmt.Errorf("sqlite: commit refs: %w", err)
				}
			}
		}
		s.Entries++
		if len(missing) > 0 {
			continue
		}
		parent := tree.parent(e.Path, seq, e.Type == manifest.TypeDir)
		nameID, err := db.nameID(ctx, tx, baseName(e.Path), newNames)
		if err != nil {
			return 0, false, nil, err
		}
		if _, err = insEntry.ExecContext(ctx, id, seq, e.Path, typeCode(e.Type), e.Mode,
			e.MTime.Unix(), e.MTime.Nanosecond(), e.Size, e.UID, e.GID, target, packed, parent, nameID); err != nil {
			return 0, false, nil, fmt.Errorf("sqlite: commit entry %q: %w", e.Path, err)
		}
	}
	if len(missing) > 0 {
		return 0, false, missing, nil
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

const backupCols = "id, created_at, tagset, files, dirs, symlinks, bytes, blocks, entries"

func scanBackup(sc interface{ Scan(...any) error }) (Backup, error) {
	var b Backup
	var created int64
	var tagset string
	if err := sc.Scan(&b.ID, &created, &tagset, &b.Files, &b.Dirs, &b.Symlinks, &b.Bytes, &b.Blocks, &b.Entries); err != nil {
		return Backup{}, err
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
	rows, err := db.r.QueryContext(ctx, `SELECT seq, path, type, mode, mtime_s, mtime_ns, size, uid, gid, target, blocks
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
		if err := rows.Scan(&last, &e.Path, &typ, &e.Mode, &ms, &mns, &e.Size, &e.UID, &e.GID, &target, &packed); err != nil {
			return nil, after, fmt.Errorf("sqlite: entries of %d: %w", id, err)
		}
		e.Type = typeName(typ)
		e.MTime = unixTime(ms, mns)
		e.Target = target.String
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
	}
	return 0
}

func typeName(c int) manifest.Type {
	switch c {
	case 1:
		return manifest.TypeFile
	case 2:
		return manifest.TypeSymlink
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
