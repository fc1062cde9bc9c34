package sqlite

import (
	"context"
	"fmt"
	"time"

	"ib/internal/metadb"
)

// Alerts returns the firing alerts.
func (db *DB) Alerts(ctx context.Context) ([]metadb.Alert, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT key, kind, message, since FROM alerts ORDER BY since`)
	if err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	defer rows.Close()
	var out []metadb.Alert
	for rows.Next() {
		var a metadb.Alert
		var since int64
		if err := rows.Scan(&a.Key, &a.Kind, &a.Message, &since); err != nil {
			return nil, err
		}
		a.Since = time.Unix(0, since).UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// FireAlert records a firing alert.
func (db *DB) FireAlert(ctx context.Context, a metadb.Alert) error {
	if _, err := db.w.ExecContext(ctx, `INSERT OR REPLACE INTO alerts (key, kind, message, since) VALUES (?, ?, ?, ?)`,
		a.Key, a.Kind, a.Message, a.Since.UnixNano()); err != nil {
		return fmt.Errorf("alert %s: %w", a.Key, err)
	}
	return nil
}

// ClearAlert removes an alert.
func (db *DB) ClearAlert(ctx context.Context, key string) error {
	if _, err := db.w.ExecContext(ctx, `DELETE FROM alerts WHERE key = ?`, key); err != nil {
		return fmt.Errorf("alert %s: %w", key, err)
	}
	return nil
}
