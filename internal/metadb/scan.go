package metadb

import (
	"encoding/json"
	"fmt"
	"time"

	"ib/internal/manifest"
)

// Scanner is a row as both stores' drivers give it (database/sql, pgx).
type Scanner interface{ Scan(dest ...any) error }

// BackupColumns are the columns ScanBackup reads, in its order.
const BackupColumns = "id, created_at, tagset, files, dirs, symlinks, bytes, blocks, entries, labels, added_bytes"

// ScanBackup reads a row of BackupColumns.
func ScanBackup(sc Scanner) (Backup, error) {
	var b Backup
	var created int64
	var tagset string
	var labels *string
	if err := sc.Scan(&b.ID, &created, &tagset, &b.Files, &b.Dirs, &b.Symlinks, &b.Bytes, &b.Blocks, &b.Entries, &labels, &b.AddedBytes); err != nil {
		return Backup{}, err
	}
	if labels != nil {
		if err := json.Unmarshal([]byte(*labels), &b.Labels); err != nil {
			return Backup{}, fmt.Errorf("labels of backup %d: %w", b.ID, err)
		}
	}
	b.CreatedAt = time.Unix(0, created).UTC()
	if err := json.Unmarshal([]byte(tagset), &b.Tags); err != nil {
		return Backup{}, fmt.Errorf("tags of backup %d: %w", b.ID, err)
	}
	return b, nil
}

// JobColumns are the columns ScanJob reads, in its order.
const JobColumns = `id, kind, tags, COALESCE(backup_id, 0), client, started, COALESCE(finished, 0), COALESCE(seen, 0), status, bytes, files, error`

// ScanJob reads a row of JobColumns.
func ScanJob(sc Scanner) (Job, error) {
	var j Job
	var tags string
	var started, finished, seen int64
	if err := sc.Scan(&j.ID, &j.Kind, &tags, &j.BackupID, &j.Client, &started, &finished, &seen, &j.Status, &j.Bytes, &j.Files, &j.Error); err != nil {
		return Job{}, err
	}
	if tags != "" {
		if err := json.Unmarshal([]byte(tags), &j.Tags); err != nil {
			return Job{}, fmt.Errorf("job %d tags: %w", j.ID, err)
		}
	}
	j.Started = time.Unix(0, started).UTC()
	if finished != 0 {
		j.Finished = time.Unix(0, finished).UTC()
	}
	if seen != 0 {
		j.Seen = time.Unix(0, seen).UTC()
	}
	return j, nil
}

// TagsJSON is a job's tags column: canonical JSON, or "" for none.
func TagsJSON(t manifest.Tags) string {
	if len(t) == 0 {
		return ""
	}
	return t.Canonical()
}
