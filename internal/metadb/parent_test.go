package metadb

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"ib/internal/block"
	"ib/internal/manifest"
)

// tree is a backup's content by path; entries gives it in walk order.
type tree map[string]*manifest.Entry

func (tr tree) entries() []*manifest.Entry {
	paths := make([]string, 0, len(tr))
	for p := range tr {
		paths = append(paths, p)
	}
	slices.SortFunc(paths, manifest.Compare)
	out := make([]*manifest.Entry, len(paths))
	for i, p := range paths {
		out[i] = tr[p]
	}
	return out
}

func opener(es []*manifest.Entry) func() (func() (*manifest.Entry, error), error) {
	return func() (func() (*manifest.Entry, error), error) {
		i := 0
		return func() (*manifest.Entry, error) {
			if i == len(es) {
				return nil, io.EOF
			}
			i++
			return es[i-1], nil
		}, nil
	}
}

// recorded is what a commit wrote: its entries (but the backup id) and
// the blocks it references.
type recorded struct {
	Entries [][]any
	Refs    []int64
	Blocks  int64
}

func record(t *testing.T, db *DB, id int64) recorded {
	t.Helper()
	ctx := context.Background()
	var r recorded
	rows, err := db.w.QueryContext(ctx, `SELECT seq, path, type, mode, mtime_s, mtime_ns, size, uid, gid,
target, blocks, parent_seq, name_id FROM entries WHERE backup_id = ? ORDER BY seq`, id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		vals := make([]any, 13)
		ptrs := make([]any, 13)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		r.Entries = append(r.Entries, vals)
	}
	rows.Close()
	rows, err = db.w.QueryContext(ctx, "SELECT block_id FROM refs WHERE backup_id = ? ORDER BY block_id", id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var b int64
		rows.Scan(&b)
		r.Refs = append(r.Refs, b)
	}
	rows.Close()
	if err := db.w.QueryRowContext(ctx, "SELECT blocks FROM backups WHERE id = ?", id).Scan(&r.Blocks); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCommitMatchesParent: a chain of backups with the same tags, each a
// random change of the one before (files dropped, added, given other
// blocks, turned into folders; blocks shared between files), is recorded
// exactly as the same manifest committed with no parent (under tags of
// its own): the same entries, name ids and references. Also with the set
// of dropped blocks overflowing (the commit then looks every reused block
// up), with the newest backup being deleted (the parent is the one before),
// and with a reused block marked corrupt (reported missing, not taken from
// the parent).
func TestCommitMatchesParent(t *testing.T) {
	for _, overflow := range []bool{false, true} {
		t.Run(fmt.Sprintf("overflow=%v", overflow), func(t *testing.T) {
			if overflow {
				defer func(n int) { maxGone = n }(maxGone)
				maxGone = 3
			}
			ctx := context.Background()
			db, err := Open(ctx, filepath.Join(t.TempDir(), "ib.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			clock := time.Unix(1_700_000_000, 0)
			db.SetClock(func() time.Time { clock = clock.Add(time.Second); return clock })

			var pool []manifest.Block
			var rows []Block
			for i := range 60 {
				data := fmt.Appendf(nil, "block %d", i)
				c := block.Sum(data)
				pool = append(pool, manifest.Block{CID: c.String(), Size: int64(len(data))})
				rows = append(rows, Block{CID: c.Bytes(), Size: int64(len(data)), WireSize: 1, Inline: []byte{0}})
			}
			if _, err := db.PutBlocks(ctx, rows); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(7, 8))
			mtime := time.Unix(1_600_000_000, 0).UTC()
			file := func(path string) *manifest.Entry {
				e := &manifest.Entry{Path: path, Type: manifest.TypeFile, Mode: 0o644, MTime: mtime}
				for range rng.IntN(4) {
					b := pool[rng.IntN(len(pool))]
					e.Blocks = append(e.Blocks, b)
					e.Size += b.Size
				}
				return e
			}
			dir := func(path string) *manifest.Entry {
				return &manifest.Entry{Path: path, Type: manifest.TypeDir, Mode: 0o755, MTime: mtime}
			}
			tr := tree{".": dir(".")}
			for d := range 5 {
				tr[fmt.Sprintf("d%d", d)] = dir(fmt.Sprintf("d%d", d))
				for f := range 8 {
					p := fmt.Sprintf("d%d/f%d", d, f)
					tr[p] = file(p)
				}
			}
			tr["link"] = &manifest.Entry{Path: "link", Type: manifest.TypeSymlink, Mode: 0o777, MTime: mtime, Target: "d0/f0"}

			chain := manifest.Tags{"node": "chain"}
			var reusedTotal int64
			for round := range 15 {
				es := tr.entries()
				id, _, missing, err := db.Commit(ctx, Head{Tags: chain}, opener(es))
				if err != nil || len(missing) > 0 {
					t.Fatalf("round %d: commit: %v, missing %v", round, err, missing)
				}
				reusedTotal += db.reused
				oracle, _, _, err := db.Commit(ctx, Head{Tags: manifest.Tags{"node": fmt.Sprintf("oracle%d", round)}}, opener(es))
				if err != nil {
					t.Fatal(err)
				}
				if db.reused != 0 {
					t.Fatalf("round %d: a backup with no parent reused %d entries", round, db.reused)
				}
				got, want := record(t, db, id), record(t, db, oracle)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d: recorded with a parent differs from without:\n got %+v\nwant %+v", round, got, want)
				}
				if round == 7 {
					// The newest backup is being deleted: the next commit
					// matches against the one before it.
					if err := db.MarkDeleting(ctx, id); err != nil {
						t.Fatal(err)
					}
				}
				// Change about a third of the files: drop some, give some
				// other blocks, other metadata with the same blocks, make
				// folders or links of them; add some, and now and then a
				// whole folder, before or after the others.
				for _, e := range es {
					ne := *e
					switch r := rng.IntN(30); {
					case e.Type == manifest.TypeDir:
					case r < 2:
						delete(tr, e.Path)
					case r < 4:
						tr[e.Path] = file(e.Path)
					case r == 4:
						ne.Mode ^= 0o100
						tr[e.Path] = &ne
					case r == 5:
						ne.MTime = ne.MTime.Add(time.Duration(rng.IntN(1e9)))
						tr[e.Path] = &ne
					case r == 6:
						ne.UID, ne.GID = ne.UID+1, ne.GID+2
						tr[e.Path] = &ne
					case r == 7 && e.Type == manifest.TypeSymlink:
						ne.Target += "x"
						tr[e.Path] = &ne
					case r == 7:
						tr[e.Path] = &manifest.Entry{Path: e.Path, Type: manifest.TypeSymlink, Mode: 0o777, MTime: mtime, Target: "elsewhere"}
					case r == 8 && overflow == (round%2 == 0):
						// The file becomes a folder with a file in it.
						tr[e.Path] = dir(e.Path)
						tr[e.Path+"/inner"] = file(e.Path + "/inner")
					}
				}
				for range 3 {
					p := fmt.Sprintf("d%d/new%d", rng.IntN(5), rng.IntN(1000))
					tr[p] = file(p)
				}
				if round%4 == 1 {
					d := []string{"a", "e", "z"}[rng.IntN(3)] + fmt.Sprint(round)
					tr[d] = dir(d)
					for f := range 5 {
						p := fmt.Sprintf("%s/f%d", d, f)
						tr[p] = file(p)
					}
				}
			}
			if reusedTotal == 0 {
				t.Fatal("no commit took any entry's blocks from its parent")
			}
			t.Logf("entries whose blocks came from the parent: %d", reusedTotal)

			// A reused block that a scrub found corrupt is reported missing.
			es := tr.entries()
			var victim string
			for _, e := range es {
				if len(e.Blocks) > 0 {
					victim = e.Blocks[0].CID
					break
				}
			}
			c, _ := block.ParseCID(victim)
			if err := db.MarkCorrupt(ctx, c.Bytes()); err != nil {
				t.Fatal(err)
			}
			_, _, missing, err := db.Commit(ctx, Head{Tags: chain}, opener(es))
			if err != nil || !slices.Contains(missing, victim) {
				t.Fatalf("commit with a corrupt reused block: missing %v, %v; want %s", missing, err, victim)
			}
		})
	}
}
