// Package transfer moves a server's metadata from its SQLite file into
// PostgreSQL (ib server migrate) and checks the copy: the same rows, ids
// kept, every backup's manifest the same. Blocks stay where they are.
package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"ib/internal/manifest"
	"ib/internal/metadb"
	"ib/internal/metadb/postgres"
	"ib/internal/metadb/sqlite"
)

// Copy copies every table of src into dst, which must be empty, in one
// transaction of dst. It returns the rows copied per table.
func Copy(ctx context.Context, src *sqlite.DB, dst *postgres.DB) (map[string]int64, error) {
	if err := dst.CheckEmpty(ctx); err != nil {
		return nil, err
	}
	return dst.ImportTables(ctx, func(t metadb.Table) (func() ([]any, error), func() error, error) {
		rows, err := src.ReadTable(ctx, t)
		if err != nil {
			return nil, nil, err
		}
		return rows.Next, rows.Close, nil
	})
}

// counter counts a table's rows.
type counter interface {
	CountRows(ctx context.Context, table string) (int64, error)
}

// reader reads backups and their entries.
type reader interface {
	counter
	List(ctx context.Context, filter manifest.Tags) ([]metadb.Backup, error)
	Get(ctx context.Context, id int64) (metadb.Backup, error)
	Entries(ctx context.Context, id, after int64, limit int) ([]manifest.Entry, int64, error)
}

// Report is what Verify compared.
type Report struct {
	Rows    map[string]int64 // per table, equal on both sides
	Backups int              // backups whose summary and manifest hash matched
}

// Verify compares the row count of every table and, for every live
// backup, its summary and the hash of its manifest's entries.
func Verify(ctx context.Context, src, dst reader) (Report, error) {
	rep := Report{Rows: map[string]int64{}}
	for _, t := range metadb.Tables {
		a, err := src.CountRows(ctx, t.Name)
		if err != nil {
			return rep, err
		}
		b, err := dst.CountRows(ctx, t.Name)
		if err != nil {
			return rep, err
		}
		if a != b {
			return rep, fmt.Errorf("table %s: %d rows in the source, %d in the copy", t.Name, a, b)
		}
		rep.Rows[t.Name] = a
	}
	backups, err := src.List(ctx, nil)
	if err != nil {
		return rep, err
	}
	for _, b := range backups {
		if err := sameBackup(ctx, src, dst, b); err != nil {
			return rep, err
		}
		rep.Backups++
	}
	return rep, nil
}

func sameBackup(ctx context.Context, src, dst reader, b metadb.Backup) error {
	c, err := dst.Get(ctx, b.ID)
	if err != nil {
		return fmt.Errorf("backup %d in the copy: %w", b.ID, err)
	}
	if x, y := summary(b), summary(c); x != y {
		return fmt.Errorf("backup %d: summary %s in the source, %s in the copy", b.ID, x, y)
	}
	h1, err := ManifestHash(ctx, src, b.ID)
	if err != nil {
		return err
	}
	h2, err := ManifestHash(ctx, dst, b.ID)
	if err != nil {
		return err
	}
	if h1 != h2 {
		return fmt.Errorf("backup %d: manifest hash %s in the source, %s in the copy", b.ID, h1, h2)
	}
	return nil
}

func summary(b metadb.Backup) string {
	j, _ := json.Marshal(b)
	return string(j)
}

// ManifestHash is the SHA-256 of a backup's entries in walk order, each as
// its JSON.
func ManifestHash(ctx context.Context, r interface {
	Entries(ctx context.Context, id, after int64, limit int) ([]manifest.Entry, int64, error)
}, id int64) (string, error) {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for after := int64(-1); ; {
		page, last, err := r.Entries(ctx, id, after, 5000)
		if err != nil {
			return "", err
		}
		if len(page) == 0 {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		for i := range page {
			if err := enc.Encode(&page[i]); err != nil {
				return "", err
			}
		}
		after = last
	}
}
