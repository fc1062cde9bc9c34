package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"ib/internal/manifest"
	"ib/internal/metadb"
)

// Get returns one backup.
func (db *DB) Get(ctx context.Context, id int64) (metadb.Backup, error) {
	b, err := metadb.ScanBackup(db.r.QueryRowContext(ctx, "SELECT "+metadb.BackupColumns+" FROM backups WHERE id = ? AND deleting = 0", id))
	if errors.Is(err, sql.ErrNoRows) {
		return metadb.Backup{}, metadb.ErrNotFound
	}
	if err != nil {
		return metadb.Backup{}, fmt.Errorf("sqlite: backup %d: %w", id, err)
	}
	return b, nil
}

// Latest returns the newest backup whose tags equal tags exactly.
func (db *DB) Latest(ctx context.Context, tags manifest.Tags) (metadb.Backup, error) {
	b, err := metadb.ScanBackup(db.r.QueryRowContext(ctx, "SELECT "+metadb.BackupColumns+
		" FROM backups WHERE tagset = ? AND deleting = 0 ORDER BY created_at DESC, id DESC LIMIT 1", tags.Canonical()))
	if errors.Is(err, sql.ErrNoRows) {
		return metadb.Backup{}, metadb.ErrNotFound
	}
	if err != nil {
		return metadb.Backup{}, fmt.Errorf("sqlite: latest backup: %w", err)
	}
	return b, nil
}

// List returns the backups whose tags include every pair of filter, newest
// first.
func (db *DB) List(ctx context.Context, filter manifest.Tags) ([]metadb.Backup, error) {
	q := "SELECT " + metadb.BackupColumns + " FROM backups b WHERE deleting = 0"
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
	var out []metadb.Backup
	for rows.Next() {
		b, err := metadb.ScanBackup(rows)
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
	rows, err := db.r.QueryContext(ctx, `SELECT seq, path, type, mode, mtime_s, mtime_ns, size, uid, gid, target, blocks, flags, plain_size
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
		var plain sql.NullInt64
		if err := rows.Scan(&last, &e.Path, &typ, &e.Mode, &ms, &mns, &e.Size, &e.UID, &e.GID, &target, &packed, &flags, &plain); err != nil {
			return nil, after, fmt.Errorf("sqlite: entries of %d: %w", id, err)
		}
		e.Type = metadb.TypeName(typ)
		e.MTime = metadb.UnixTime(ms, mns)
		e.Target = target.String
		metadb.SetFlags(&e, flags, plain.Int64)
		if e.Blocks, err = metadb.UnpackBlocks(packed); err != nil {
			return nil, after, fmt.Errorf("sqlite: entry %q of %d: %w", e.Path, id, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, after, fmt.Errorf("sqlite: entries of %d: %w", id, err)
	}
	return out, last, nil
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
