package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"

	"ib/internal/metadb"
)

// ErrNotEmpty is a migration into a database that already holds backups
// or blocks.
var ErrNotEmpty = errors.New("the database already holds metadata")

// CheckEmpty fails with ErrNotEmpty unless every table is empty.
func (db *DB) CheckEmpty(ctx context.Context) error {
	for _, t := range metadb.Tables {
		n, err := db.CountRows(ctx, t.Name)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: %d rows in %s", ErrNotEmpty, n, t.Name)
		}
	}
	return nil
}

// ImportTables copies every table of metadb.Tables in one transaction
// (COPY), keeping the ids, and moves each identity past its largest id;
// open returns a table's rows (io.EOF after the last). On any error
// nothing is written. It returns the rows written per table.
func (db *DB) ImportTables(ctx context.Context, open func(metadb.Table) (next func() ([]any, error), done func() error, err error)) (map[string]int64, error) {
	counts := map[string]int64{}
	err := pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) error {
		for _, t := range metadb.Tables {
			next, done, err := open(t)
			if err != nil {
				return err
			}
			n, err := copyTable(ctx, tx, t, next)
			if derr := done(); err == nil {
				err = derr
			}
			if err != nil {
				return err
			}
			counts[t.Name] = n
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}

func copyTable(ctx context.Context, tx pgx.Tx, t metadb.Table, next func() ([]any, error)) (int64, error) {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	src := pgx.CopyFromFunc(func() ([]any, error) {
		row, err := next()
		if err == io.EOF {
			return nil, nil
		}
		return row, err
	})
	n, err := tx.CopyFrom(ctx, pgx.Identifier{t.Name}, names, src)
	if err != nil {
		return n, fmt.Errorf("postgres: write %s: %w", t.Name, err)
	}
	if t.Identity {
		if _, err := tx.Exec(ctx, fmt.Sprintf(
			"SELECT setval(pg_get_serial_sequence('%s', 'id'), GREATEST((SELECT max(id) FROM %s), 1), (SELECT count(*) > 0 FROM %s))",
			t.Name, t.Name, t.Name)); err != nil {
			return n, fmt.Errorf("postgres: identity of %s: %w", t.Name, err)
		}
	}
	return n, nil
}

// CountRows counts a table's rows.
func (db *DB) CountRows(ctx context.Context, table string) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count %s: %w", table, err)
	}
	return n, nil
}
