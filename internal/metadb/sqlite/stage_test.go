package sqlite

import (
	"context"
	"testing"
)

// TestCopyParentRefs: a stage gets its parent's references while the
// parent is live; a parent deleted before the copy gives none and no parent
// (its references may be purged at any moment); a live parent without
// references (all its blocks inline) stays the parent.
func TestCopyParentRefs(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	if _, err := db.w.ExecContext(ctx, `INSERT INTO backups (id, created_at, tagset, files, dirs, symlinks, bytes, blocks, entries, deleting)
VALUES (1, 1, 't', 0, 0, 0, 0, 0, 0, 0), (2, 2, 't', 0, 0, 0, 0, 0, 0, 1), (3, 3, 'u', 0, 0, 0, 0, 0, 0, 0),
(10, 10, 't', 0, 0, 0, 0, 0, 0, 1), (11, 11, 't', 0, 0, 0, 0, 0, 0, 1), (12, 12, 'u', 0, 0, 0, 0, 0, 0, 1);
INSERT INTO refs (block_id, backup_id) VALUES (7, 1), (8, 1), (9, 1), (7, 2), (8, 2)`); err != nil {
		t.Fatal(err)
	}
	refs := func(id int64) (n int) {
		if err := db.w.QueryRowContext(ctx, "SELECT count(*) FROM refs WHERE backup_id = ?", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, c := range []struct{ stage, parent, want, refs int64 }{
		{10, 1, 1, 3}, // live: copied
		{11, 2, 0, 0}, // deleted before the copy: no parent, nothing copied
		{12, 3, 3, 0}, // live, no references: still the parent
	} {
		got, err := db.copyParentRefs(ctx, c.stage, c.parent)
		if err != nil || got != c.want || int64(refs(c.stage)) != c.refs {
			t.Errorf("stage %d, parent %d: parent %d, %d refs, %v; want parent %d, %d refs", c.stage, c.parent, got, refs(c.stage), err, c.want, c.refs)
		}
	}
}
