package metadbtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"ib/internal/block"
	"ib/internal/manifest"
	"ib/internal/store"
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

// recorded is what a commit wrote, as the store reads it back: its
// entries, each folder's children (by seq), its references and block count.
type recorded struct {
	Entries  []manifest.Entry
	Children map[string][]int64
	Refs     []int64
	Blocks   int64
}

func record(t *testing.T, b Backend, db DB, id int64) recorded {
	t.Helper()
	ctx := context.Background()
	r := recorded{Entries: all(t, db, id), Children: map[string][]int64{}, Refs: b.Refs(t, db, id)}
	for _, e := range r.Entries {
		if e.Type != manifest.TypeDir {
			continue
		}
		n, err := db.Lookup(ctx, id, e.Path)
		if err != nil {
			t.Fatalf("lookup %s: %v", e.Path, err)
		}
		kids, err := db.Children(ctx, id, n.Seq, -1, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range kids {
			r.Children[e.Path] = append(r.Children[e.Path], k.Seq)
		}
	}
	bk, err := db.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	r.Blocks = bk.Blocks
	return r
}

// testCommitMatchesParent: a chain of backups with the same tags, each a
// random change of the one before (files dropped, added, given other
// blocks, turned into folders; blocks shared between files), is recorded
// exactly as the same manifest committed with no parent (under tags of its
// own): the same entries, tree and references. Also with the set of dropped
// blocks overflowing (the commit then looks every reused block up), with
// the newest backup being deleted (the parent is the one before), and with
// a reused block marked corrupt (reported missing, not taken from the
// parent).
func testCommitMatchesParent(t *testing.T, b Backend) {
	for _, overflow := range []bool{false, true} {
		t.Run(fmt.Sprintf("overflow=%v", overflow), func(t *testing.T) {
			if overflow {
				defer store.TestingSetMaxGone(3)()
			}
			f := newFixture(t, b)
			ctx := context.Background()
			var pool []manifest.Block
			for i := range 60 {
				pool = append(pool, f.put(t, fmt.Appendf(nil, "block %d", i)))
			}
			rng := rand.New(rand.NewPCG(7, 8))
			mtime := time.Unix(1_600_000_000, 0).UTC()
			randFile := func(path string) *manifest.Entry {
				var bs []manifest.Block
				for range rng.IntN(4) {
					bs = append(bs, pool[rng.IntN(len(pool))])
				}
				return file(path, mtime, bs...)
			}
			tr := tree{".": dir(".", mtime)}
			for d := range 5 {
				tr[fmt.Sprintf("d%d", d)] = dir(fmt.Sprintf("d%d", d), mtime)
				for i := range 8 {
					p := fmt.Sprintf("d%d/f%d", d, i)
					tr[p] = randFile(p)
				}
			}
			tr["link"] = &manifest.Entry{Path: "link", Type: manifest.TypeSymlink, Mode: 0o777, MTime: mtime, Target: "d0/f0"}

			chain := manifest.Tags{"node": "chain"}
			var reusedTotal int64
			for round := range 15 {
				es := tr.entries()
				res := f.commit(t, chain, "", es)
				if len(res.Missing) > 0 {
					t.Fatalf("round %d: missing %v", round, res.Missing)
				}
				reusedTotal += res.Reused
				oracle := f.commit(t, manifest.Tags{"node": fmt.Sprintf("oracle%d", round)}, "", es)
				if oracle.Reused != 0 {
					t.Fatalf("round %d: a backup with no parent reused %d entries", round, oracle.Reused)
				}
				got, want := record(t, b, f.db, res.ID), record(t, b, f.db, oracle.ID)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d: recorded with a parent differs from without:\n got %+v\nwant %+v", round, got, want)
				}
				if round == 7 {
					// The newest backup is being deleted: the next commit
					// matches against the one before it.
					if _, err := f.st.Delete(ctx, res.ID); err != nil {
						t.Fatal(err)
					}
				}
				mutate(rng, tr, es, randFile, mtime, overflow == (round%2 == 0))
				if round%4 == 1 {
					d := []string{"a", "e", "z"}[rng.IntN(3)] + fmt.Sprint(round)
					tr[d] = dir(d, mtime)
					for i := range 5 {
						p := fmt.Sprintf("%s/f%d", d, i)
						tr[p] = randFile(p)
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
			if err := f.db.MarkCorrupt(ctx, c.Bytes()); err != nil {
				t.Fatal(err)
			}
			if res := f.commit(t, chain, "", es); !slices.Contains(res.Missing, victim) {
				t.Fatalf("commit with a corrupt reused block: missing %v; want %s", res.Missing, victim)
			}
		})
	}
}

// mutate changes about a third of the files: drops some, gives some other
// blocks, other metadata with the same blocks (mode, mtime, owner, target,
// flags, encryption), makes folders or links of them; adds some; and
// gives some folders another mtime.
func mutate(rng *rand.Rand, tr tree, es []*manifest.Entry, randFile func(string) *manifest.Entry, mtime time.Time, folders bool) {
	for _, e := range es {
		ne := *e
		switch r := rng.IntN(30); {
		case e.Type == manifest.TypeDir && r < 3:
			ne.MTime = ne.MTime.Add(time.Second)
			tr[e.Path] = &ne
		case e.Type == manifest.TypeDir:
		case r < 2:
			delete(tr, e.Path)
		case r < 4:
			tr[e.Path] = randFile(e.Path)
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
		case r == 9 && e.Type == manifest.TypeFile:
			ne.ChangedDuringRead = !ne.ChangedDuringRead
			tr[e.Path] = &ne
		case r == 10 && e.Type == manifest.TypeFile && len(e.Blocks) > 0:
			ne.Encryption, ne.PlainSize = manifest.EncryptionAge, ne.PlainSize+1
			tr[e.Path] = &ne
		case r == 8 && folders:
			// The file becomes a folder with a file in it.
			tr[e.Path] = dir(e.Path, mtime)
			tr[e.Path+"/inner"] = randFile(e.Path + "/inner")
		}
	}
	for range 3 {
		p := fmt.Sprintf("d%d/new%d", rng.IntN(5), rng.IntN(1000))
		tr[p] = randFile(p)
	}
}
