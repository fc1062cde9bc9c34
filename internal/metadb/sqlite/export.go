package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"

	"ib/internal/metadb"
)

// TableRows reads a whole table, row by row (ib server migrate).
type TableRows struct {
	rows  *sql.Rows
	table metadb.Table
	vals  []any
	ptrs  []any
}

// ReadTable opens a read of every row of t, in the column order of t.
func (db *DB) ReadTable(ctx context.Context, t metadb.Table) (*TableRows, error) {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	rows, err := db.r.QueryContext(ctx, "SELECT "+strings.Join(names, ", ")+" FROM "+t.Name)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read %s: %w", t.Name, err)
	}
	tr := &TableRows{rows: rows, table: t, vals: make([]any, len(names)), ptrs: make([]any, len(names))}
	for i := range tr.vals {
		tr.ptrs[i] = &tr.vals[i]
	}
	return tr, nil
}

// Next returns the next row (io.EOF after the last), its values typed by
// the columns' kinds: int64, bool, string, []byte or nil. The slice is
// reused by the next call.
func (tr *TableRows) Next() ([]any, error) {
	if !tr.rows.Next() {
		if err := tr.rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlite: read %s: %w", tr.table.Name, err)
		}
		return nil, io.EOF
	}
	if err := tr.rows.Scan(tr.ptrs...); err != nil {
		return nil, fmt.Errorf("sqlite: read %s: %w", tr.table.Name, err)
	}
	for i, c := range tr.table.Columns {
		v := tr.vals[i]
		if v == nil {
			continue
		}
		switch c.Kind {
		case metadb.Bool:
			n, ok := v.(int64)
			if !ok {
				return nil, fmt.Errorf("sqlite: read %s.%s: %T, want an integer", tr.table.Name, c.Name, v)
			}
			tr.vals[i] = n != 0
		case metadb.Text:
			if b, ok := v.([]byte); ok {
				tr.vals[i] = string(b)
			}
		case metadb.Bytes:
			if s, ok := v.(string); ok {
				tr.vals[i] = []byte(s)
			}
		}
	}
	return tr.vals, nil
}

// Close ends the read.
func (tr *TableRows) Close() error { return tr.rows.Close() }

// CountRows counts a table's rows.
func (db *DB) CountRows(ctx context.Context, table string) (int64, error) {
	var n int64
	if err := db.r.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count %s: %w", table, err)
	}
	return n, nil
}
