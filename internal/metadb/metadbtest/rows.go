package metadbtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"ib/internal/block"
	"ib/internal/manifest"
	"ib/internal/metadb"
	"ib/internal/store"
)

// testCommitMissingAndKey: a commit naming a block not stored records
// nothing and names it once; a block given another size is refused; a
// repeated idempotency key returns the first backup.
func testCommitMissingAndKey(t *testing.T, b Backend) {
	f := newFixture(t, b)
	ctx := context.Background()
	mtime := time.Unix(1_700_000_000, 0).UTC()
	have := f.put(t, []byte("stored"))
	absent := manifest.Block{CID: block.Sum([]byte("absent")).String(), Size: 6}
	es := []*manifest.Entry{dir(".", mtime), file("a", mtime, have, absent), file("b", mtime, absent)}
	res := f.commit(t, manifest.Tags{"n": "x"}, "", es)
	if !slices.Equal(res.Missing, []string{absent.CID}) || res.ID != 0 {
		t.Fatalf("commit with a missing block: %+v, want only %s missing", res, absent.CID)
	}
	if list, _ := f.db.List(ctx, nil); len(list) != 0 {
		t.Fatalf("a refused commit left backups: %+v", list)
	}
	f.put(t, []byte("absent"))
	first := f.commit(t, manifest.Tags{"n": "x"}, "key-1", es)
	again := f.commit(t, manifest.Tags{"n": "x"}, "key-1", es)
	if first.ID == 0 || first.Existed || !again.Existed || again.ID != first.ID {
		t.Fatalf("idempotent commits: first %+v, again %+v", first, again)
	}
	bk, err := f.db.Get(ctx, first.ID)
	if err != nil || bk.Files != 2 || bk.Dirs != 1 || bk.Bytes != 18 || bk.Blocks != 2 || bk.Entries != 3 {
		t.Fatalf("backup row: %+v, %v", bk, err)
	}
	wrong := []*manifest.Entry{dir(".", mtime), file("a", mtime, manifest.Block{CID: have.CID, Size: have.Size + 1})}
	body := fmt.Sprintf(`{"tags":{"n":"y"},"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"},
{"path":"a","type":"file","mode":420,"mtime":"2024-01-01T00:00:00Z","size":%d,"blocks":[{"cid":%q,"size":%d}]}]}`,
		wrong[1].Size, have.CID, wrong[1].Size)
	if _, err := f.st.Commit(ctx, stringsReader(body)); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a block given another size: %v, want ErrInvalid", err)
	}
}

// testSameKeyAtOnce: commits of one idempotency key at once (a client's
// retry through another server) make one backup; every answer names it.
func testSameKeyAtOnce(t *testing.T, b Backend) {
	f := newFixture(t, b)
	mtime := time.Unix(1_700_000_000, 0).UTC()
	have := f.put(t, []byte("stored"))
	es := []*manifest.Entry{dir(".", mtime), file("a", mtime, have)}
	body, err := json.Marshal(map[string]any{"tags": manifest.Tags{"n": "k"}, "entries": es, "idempotency_key": "same"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 6
	results := make([]store.CommitResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = f.st.Commit(context.Background(), bytes.NewReader(body))
		}()
	}
	wg.Wait()
	made := 0
	for i, r := range results {
		if errs[i] != nil || r.ID != results[0].ID || r.ID == 0 {
			t.Fatalf("commit %d: %+v, %v (first: %d)", i, r, errs[i], results[0].ID)
		}
		if !r.Existed {
			made++
		}
	}
	if list, _ := f.db.List(context.Background(), nil); made != 1 || len(list) != 1 {
		t.Fatalf("%d commits made a backup, %d backups listed; want 1 and 1", made, len(list))
	}
}

// testSeenRefresh: Present refreshes the last-seen time of a block seen
// before staleBefore, and writes nothing for one seen since (GC's
// candidates tell the difference).
func testSeenRefresh(t *testing.T, b Backend) {
	f := newFixture(t, b)
	ctx := context.Background()
	t0 := f.clock
	a := f.put(t, []byte("seen block"))
	p, _ := block.ParseCID(a.CID)
	cid := p.Bytes()
	candidate := func(cutoff time.Time) bool {
		cs, err := f.db.GCCandidates(ctx, 0, cutoff, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if string(c.CID) == string(cid) {
				return true
			}
		}
		return false
	}
	f.clock = t0.Add(10 * time.Minute)
	present, err := f.db.Present(ctx, [][]byte{cid}, t0.Add(5*time.Minute).UnixNano())
	if err != nil || !present[string(cid)] {
		t.Fatalf("present: %v %v", present, err)
	}
	if candidate(t0.Add(9 * time.Minute)) {
		t.Fatal("a block last seen before staleBefore was not refreshed")
	}
	f.clock = t0.Add(20 * time.Minute)
	if present, _ = f.db.Present(ctx, [][]byte{cid}, t0.Add(5*time.Minute).UnixNano()); !present[string(cid)] {
		t.Fatal("a fresh block is not present")
	}
	if !candidate(t0.Add(15 * time.Minute)) {
		t.Fatal("a block seen since staleBefore was refreshed again")
	}
}

// testBlocks: Present answers only for stored blocks not marked corrupt;
// a corrupt block is Known, healed by a new upload; Block and InlineBlocks
// return the rows.
func testBlocks(t *testing.T, b Backend) {
	f := newFixture(t, b)
	ctx := context.Background()
	a, c := f.put(t, []byte("block a")), f.put(t, []byte("block c"))
	bin := func(m manifest.Block) []byte { p, _ := block.ParseCID(m.CID); return p.Bytes() }
	none := block.Sum([]byte("none")).Bytes()
	present, err := f.db.Present(ctx, [][]byte{bin(a), none, bin(c)}, math.MaxInt64)
	if err != nil || !present[string(bin(a))] || !present[string(bin(c))] || present[string(none)] || len(present) != 2 {
		t.Fatalf("present: %v, %v", present, err)
	}
	if err := f.db.MarkCorrupt(ctx, bin(a)); err != nil {
		t.Fatal(err)
	}
	present, _ = f.db.Present(ctx, [][]byte{bin(a), bin(c)}, math.MaxInt64)
	known, _ := f.db.Known(ctx, [][]byte{bin(a), bin(c), none})
	if present[string(bin(a))] || !known[string(bin(a))] || !known[string(bin(c))] || len(known) != 2 {
		t.Fatalf("corrupt block: present %v, known %v", present, known)
	}
	page, err := f.db.ScrubPage(ctx, 0, 10)
	if err != nil || len(page) != 1 || string(page[0].CID) != string(bin(c)) {
		t.Fatalf("scrub page skips corrupt blocks: %+v, %v", page, err)
	}
	f.put(t, []byte("block a")) // the upload heals it
	if present, _ = f.db.Present(ctx, [][]byte{bin(a)}, math.MaxInt64); !present[string(bin(a))] {
		t.Fatal("a corrupt block uploaded again is still not present")
	}
	row, err := f.db.Block(ctx, bin(c))
	if err != nil || row.Size != 7 || len(row.Inline) == 0 || row.WireSize != int64(len(row.Inline)) {
		t.Fatalf("block row: %+v, %v", row, err)
	}
	if _, err := f.db.Block(ctx, none); !errors.Is(err, metadb.ErrNotFound) {
		t.Fatalf("absent block: %v", err)
	}
	rows, err := f.db.InlineBlocks(ctx, [][]byte{bin(a), none, bin(c)})
	if err != nil || len(rows) != 2 || rows[string(bin(a))].Size != 7 {
		t.Fatalf("inline blocks: %v, %v", rows, err)
	}
}

// testPutBlocksConcurrent: concurrent calls each get one answer per block
// of their own, in order, and of the calls that record the same block
// exactly one is told it is new.
func testPutBlocksConcurrent(t *testing.T, b Backend) {
	db := b.Open(t)
	ctx := context.Background()
	blockN := func(i int) metadb.Block {
		data := fmt.Appendf(nil, "block %d", i)
		return metadb.Block{CID: block.Sum(data).Bytes(), Size: int64(len(data)), WireSize: 1, Inline: []byte{byte(i)}}
	}
	const callers, perCall, distinct = 16, 300, 1000
	answers := make([][]bool, callers)
	batches := make([][]metadb.Block, callers)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		batch := make([]metadb.Block, perCall)
		for i := range batch {
			batch[i] = blockN((c*perCall/2 + i) % distinct) // neighbours overlap by half
		}
		if c%4 == 0 {
			batch = batch[:1]
		}
		if c%5 == 1 {
			batch = append(batch, batch[0]) // a block twice in one call
		}
		batches[c] = batch
		wg.Add(1)
		go func() {
			defer wg.Done()
			added, err := db.PutBlocks(ctx, batch)
			if err != nil {
				errs <- err
				return
			}
			answers[c] = added
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	newCount := map[string]int{}
	for c, batch := range batches {
		if len(answers[c]) != len(batch) {
			t.Fatalf("caller %d: %d answers for %d blocks", c, len(answers[c]), len(batch))
		}
		for i, bl := range batch {
			if answers[c][i] {
				newCount[string(bl.CID)]++
			}
		}
	}
	for k, n := range newCount {
		if n != 1 {
			t.Fatalf("block %x told new %d times", k, n)
		}
	}
	tot, err := db.ScanTotals(ctx)
	if err != nil || tot.Blocks != int64(len(newCount)) || tot.InlineBlocks != tot.Blocks {
		t.Fatalf("totals %+v (%v), want %d blocks all inline", tot, err, len(newCount))
	}
}

// testReads: list with a tag filter, latest, lookup, children in walk
// order, search (case-insensitive, '_' and '%' literal), history, added
// bytes and the totals.
func testReads(t *testing.T, b Backend) {
	f := newFixture(t, b)
	ctx := context.Background()
	mtime := time.Unix(1_700_000_000, 0).UTC()
	x, y := f.put(t, []byte("x-data")), f.put(t, []byte("y-data-longer"))
	tree1 := []*manifest.Entry{dir(".", mtime), dir("etc", mtime), file("etc/Node_Key.json", mtime, x), file("etc/other", mtime, y),
		{Path: "ln", Type: manifest.TypeSymlink, Mode: 0o777, MTime: mtime, Target: "etc/other"}}
	one := f.commit(t, manifest.Tags{"node": "tezos", "net": "main"}, "", tree1)
	tree2 := []*manifest.Entry{dir(".", mtime), dir("etc", mtime), file("etc/Node_Key.json", mtime.Add(time.Second), y)}
	two := f.commit(t, manifest.Tags{"node": "tezos", "net": "main"}, "", tree2)
	other := f.commit(t, manifest.Tags{"node": "geth"}, "", tree2)
	// An encrypted file keeps its encryption and plain size.
	z := f.put(t, []byte("an age file's bytes"))
	sealed := file("etc/key.json", mtime, z)
	sealed.Encryption, sealed.PlainSize = manifest.EncryptionAge, 2
	enc := f.commit(t, manifest.Tags{"node": "sealed"}, "", []*manifest.Entry{dir(".", mtime), dir("etc", mtime), sealed})
	if es := all(t, f.db, enc.ID); len(es) != 3 || es[2].Encryption != manifest.EncryptionAge || es[2].PlainSize != 2 || es[1].Encryption != "" {
		t.Fatalf("encrypted entry read back: %+v", es)
	}
	if n, err := f.db.Lookup(ctx, enc.ID, "etc/key.json"); err != nil || n.Entry.Encryption != manifest.EncryptionAge || n.Entry.PlainSize != 2 {
		t.Fatalf("encrypted entry looked up: %+v, %v", n.Entry, err)
	}
	if _, err := f.st.Delete(ctx, enc.ID); err != nil {
		t.Fatal(err)
	}
	list, err := f.db.List(ctx, manifest.Tags{"node": "tezos"})
	if err != nil || len(list) != 2 || list[0].ID != two.ID || list[1].ID != one.ID {
		t.Fatalf("list node=tezos: %+v, %v", list, err)
	}
	if list, _ := f.db.List(ctx, nil); len(list) != 3 {
		t.Fatalf("list all: %d backups", len(list))
	}
	if l, err := f.db.Latest(ctx, manifest.Tags{"node": "tezos", "net": "main"}); err != nil || l.ID != two.ID || l.Tags["net"] != "main" {
		t.Fatalf("latest: %+v, %v", l, err)
	}
	if _, err := f.db.Latest(ctx, manifest.Tags{"node": "tezos"}); !errors.Is(err, metadb.ErrNotFound) {
		t.Fatalf("latest of a tag set with no backup: %v", err)
	}
	n, err := f.db.Lookup(ctx, one.ID, "etc/other")
	if err != nil || n.Entry.Size != y.Size || len(n.Entry.Blocks) != 1 || n.Entry.Blocks[0] != y {
		t.Fatalf("lookup: %+v, %v", n, err)
	}
	if _, err := f.db.Lookup(ctx, one.ID, "etc/none"); !errors.Is(err, metadb.ErrNotFound) {
		t.Fatalf("lookup of a missing path: %v", err)
	}
	etc, _ := f.db.Lookup(ctx, one.ID, "etc")
	kids, err := f.db.Children(ctx, one.ID, etc.Seq, -1, 10)
	if err != nil || len(kids) != 2 || kids[0].Entry.Path != "etc/Node_Key.json" || kids[1].Entry.Path != "etc/other" {
		t.Fatalf("children: %+v, %v", kids, err)
	}
	if l, _ := f.db.Lookup(ctx, one.ID, "ln"); l.Entry.Target != "etc/other" || l.Entry.Type != manifest.TypeSymlink {
		t.Fatalf("symlink: %+v", l)
	}
	hits, err := f.db.Search(ctx, "node_k", manifest.Tags{"node": "tezos"}, 10)
	if err != nil || len(hits) != 2 || hits[0].Backup.ID != two.ID || hits[1].Backup.ID != one.ID {
		t.Fatalf("search node_k: %+v, %v", hits, err)
	}
	if hits, _ := f.db.Search(ctx, "node%k", nil, 10); len(hits) != 0 {
		t.Fatalf("search with a literal %%: %+v", hits)
	}
	if hits, _ := f.db.Search(ctx, "nodexkey", nil, 10); len(hits) != 0 {
		t.Fatalf("'_' matched another character: %+v", hits)
	}
	hist, err := f.db.History(ctx, two.ID, "etc/Node_Key.json", 10)
	if err != nil || len(hist) != 2 || hist[0].Backup.ID != one.ID || !hist[1].Entry.MTime.Equal(mtime.Add(time.Second)) {
		t.Fatalf("history: %+v, %v", hist, err)
	}
	for _, c := range []struct {
		id   int64
		want int64
	}{{one.ID, x.Size}, {two.ID, 0}, {other.ID, 0}} {
		// one alone holds x; y is shared by all three.
		if got, err := f.db.FillAdded(ctx, c.id); err != nil || got != c.want {
			t.Fatalf("added bytes of %d: %d, %v; want %d", c.id, got, err, c.want)
		}
	}
	if bk, _ := f.db.Get(ctx, one.ID); bk.AddedBytes == nil || *bk.AddedBytes != x.Size {
		t.Fatalf("added bytes not kept: %+v", bk.AddedBytes)
	}
	tot, err := f.db.ScanTotals(ctx)
	if err != nil || tot.Backups != 3 || tot.Blocks != 3 || tot.UniqueBytes != x.Size+y.Size+z.Size || len(tot.LastBackup) != 2 {
		t.Fatalf("totals: %+v, %v", tot, err)
	}
}

// testDeleteAndGC: a deleted backup is hidden at once and its rows purged;
// GC deletes exactly the unreferenced blocks not seen within the grace,
// and a missing-query spares a block.
func testDeleteAndGC(t *testing.T, b Backend) {
	f := newFixture(t, b)
	ctx := context.Background()
	mtime := time.Unix(1_700_000_000, 0).UTC()
	keep, drop, asked := f.put(t, []byte("kept")), f.put(t, []byte("dropped")), f.put(t, []byte("asked about"))
	f.put(t, []byte("never referenced"))
	kept := f.commit(t, manifest.Tags{"n": "keep"}, "", []*manifest.Entry{dir(".", mtime), file("k", mtime, keep)})
	gone := f.commit(t, manifest.Tags{"n": "gone"}, "", []*manifest.Entry{dir(".", mtime), file("d", mtime, drop), file("k", mtime, keep)})
	if _, err := f.st.Delete(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Get(ctx, gone.ID); !errors.Is(err, metadb.ErrNotFound) {
		t.Fatalf("a deleted backup is still shown: %v", err)
	}
	if err := f.db.MarkDeleting(ctx, gone.ID); !errors.Is(err, metadb.ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	f.clock = f.clock.Add(2 * time.Hour)
	if _, err := f.st.Missing(ctx, []string{asked.CID}); err != nil { // seen now: spared
		t.Fatal(err)
	}
	rep, err := f.st.GC(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if rep.BlocksDeleted != 2 {
		t.Fatalf("GC deleted %d blocks, want 2 (the dropped and the never referenced): %+v", rep.BlocksDeleted, rep)
	}
	miss, _ := f.st.Missing(ctx, []string{keep.CID, drop.CID, asked.CID})
	if !slices.Equal(miss, []string{drop.CID}) {
		t.Fatalf("after GC missing %v, want only the dropped block", miss)
	}
	if refs := b.Refs(t, f.db, gone.ID); len(refs) != 0 {
		t.Fatalf("purged backup still has references %v", refs)
	}
	if es := all(t, f.db, kept.ID); len(es) != 2 {
		t.Fatalf("kept backup has %d entries", len(es))
	}
}

// testJobsAndAlerts: jobs start, log, end, list newest first with filters,
// expire; alerts fire, replace and clear.
func testJobsAndAlerts(t *testing.T, b Backend) {
	db := b.Open(t)
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ids := make([]int64, 3)
	for i := range ids {
		// the first two with keys, the third without
		key := []string{"k-0", "k-1", ""}[i]
		id, existed, err := db.StartJob(ctx, metadb.Job{Kind: []string{"backup", "restore", "backup"}[i], Tags: manifest.Tags{"node": "n"}, Started: t0.Add(time.Duration(i) * time.Minute), Key: key})
		if err != nil || existed {
			t.Fatalf("start job %d: %v (existed %v)", i, err, existed)
		}
		ids[i] = id
	}
	// A start retried with its key finds its job; one without a key or
	// with a new key adds one.
	if id, existed, err := db.StartJob(ctx, metadb.Job{Kind: "backup", Started: t0, Key: "k-1"}); err != nil || !existed || id != ids[1] {
		t.Fatalf("start retried with key k-1: id %d existed %v err %v, want %d existed", id, existed, err, ids[1])
	}
	for _, key := range []string{"", "k-2"} {
		id, existed, err := db.StartJob(ctx, metadb.Job{Kind: "verify", Started: t0.Add(-time.Hour), Key: key})
		if err != nil || existed || slices.Contains(ids, id) {
			t.Fatalf("start with key %q: id %d existed %v err %v, want a new job", key, id, existed, err)
		}
		if err := db.FinishJob(ctx, metadb.Job{ID: id, Finished: t0.Add(-time.Hour), Status: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AddJobEvent(ctx, ids[0], metadb.JobEvent{At: t0, Level: "info", Message: "hello"}); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishJob(ctx, metadb.Job{ID: ids[0], Finished: t0.Add(time.Hour), Status: "ok", BackupID: 42, Bytes: 7}); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishJob(ctx, metadb.Job{ID: ids[0], Finished: t0, Status: "ok"}); !errors.Is(err, metadb.ErrNotFound) {
		t.Fatalf("finishing a finished job: %v", err)
	}
	j, evs, err := db.Job(ctx, ids[0])
	if err != nil || j.Status != "ok" || j.BackupID != 42 || j.Bytes != 7 || len(evs) != 1 || evs[0].Message != "hello" || !j.Finished.Equal(t0.Add(time.Hour)) {
		t.Fatalf("job: %+v %+v %v", j, evs, err)
	}
	backups, err := db.Jobs(ctx, metadb.JobFilter{Kind: "backup", Limit: 10})
	if err != nil || len(backups) != 2 || backups[0].ID != ids[2] {
		t.Fatalf("backup jobs: %+v, %v", backups, err)
	}
	lost, deleted, err := db.ExpireJobs(ctx, t0.Add(2*time.Hour), func(j metadb.Job) bool { return j.ID == ids[1] }, t0.Add(30*time.Second))
	// deleted: ids[0] and the two verify jobs, all started before keep
	if err != nil || !slices.Equal(lost, []int64{ids[1]}) || deleted != 3 {
		t.Fatalf("expire: lost %v, deleted %d, %v", lost, deleted, err)
	}
	if _, _, err := db.Job(ctx, ids[0]); !errors.Is(err, metadb.ErrNotFound) {
		t.Fatalf("expired job: %v", err)
	}
	for _, a := range []metadb.Alert{{Key: "k1", Kind: "stale", Message: "one", Since: t0}, {Key: "k1", Kind: "stale", Message: "two", Since: t0}, {Key: "k2", Kind: "disk", Message: "d", Since: t0.Add(time.Hour)}} {
		if err := db.FireAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.ClearAlert(ctx, "k2"); err != nil {
		t.Fatal(err)
	}
	al, err := db.Alerts(ctx)
	if err != nil || len(al) != 1 || al[0].Message != "two" || !al[0].Since.Equal(t0) {
		t.Fatalf("alerts: %+v, %v", al, err)
	}
}

// testPresentSizes: a missing-query of any length (across the widths of
// its statements and the batches of 500) answers exactly, whether its
// present rows are fresh (a read) or stale (refreshed in a write).
func testPresentSizes(t *testing.T, b Backend) {
	f := newFixture(t, b)
	ctx := context.Background()
	var rows []metadb.Block
	var cids [][]byte
	for i := range 1300 {
		c := block.Sum(fmt.Appendf(nil, "sized question %d", i))
		cids = append(cids, c.Bytes())
		if i%2 == 0 {
			rows = append(rows, metadb.Block{CID: c.Bytes(), Size: 1, WireSize: 1, Inline: []byte{0}})
		}
	}
	if _, err := f.db.PutBlocks(ctx, rows); err != nil {
		t.Fatal(err)
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(cids), func(i, j int) { cids[i], cids[j] = cids[j], cids[i] })
	stored := map[string]bool{}
	for _, r := range rows {
		stored[string(r.CID)] = true
	}
	for _, stale := range []bool{false, true} {
		for _, n := range []int{1, 7, 8, 9, 64, 499, 500, 501, 1234} {
			f.tick()
			before := int64(0)
			if stale {
				before = f.clock.UnixNano() // every row was seen before now
			}
			present, err := f.db.Present(ctx, cids[:n], before)
			if err != nil {
				t.Fatal(err)
			}
			for i, c := range cids[:n] {
				if present[string(c)] != stored[string(c)] {
					t.Fatalf("stale %v, %d CIDs: CID %d present %v, stored %v", stale, n, i, present[string(c)], stored[string(c)])
				}
			}
			if len(present) > n/2+1 {
				t.Fatalf("stale %v, %d CIDs: %d present", stale, n, len(present))
			}
		}
	}
}

// testNamesStoredBefore: a commit whose batch mixes names another tag set
// stored (not matched through a parent, nor cached) with new ones gives
// every entry its own name: search finds each under both.
func testNamesStoredBefore(t *testing.T, b Backend) {
	f := newFixture(t, b)
	ctx := context.Background()
	mt := time.Unix(1700000000, 0).UTC()
	x := f.put(t, []byte("some content of a file, longer than an inline CID may carry: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123"))
	one := f.commit(t, manifest.Tags{"node": "a"}, "", []*manifest.Entry{dir(".", mt), dir("x", mt), file("x/alpha.log", mt, x), file("x/beta.log", mt, x)})
	if b.ForgetNames != nil {
		b.ForgetNames(f.db)
	}
	two := f.commit(t, manifest.Tags{"node": "b"}, "", []*manifest.Entry{dir(".", mt), dir("y", mt), file("y/alpha.log", mt, x), file("y/gamma.log", mt, x), file("y/zeta.log", mt, x)})
	if one.ID == 0 || two.ID == 0 || len(two.Missing) > 0 {
		t.Fatalf("commits: %+v %+v", one, two)
	}
	for q, want := range map[string][]string{"alpha": {"y/alpha.log", "x/alpha.log"}, "beta": {"x/beta.log"}, "gamma": {"y/gamma.log"}, "zeta": {"y/zeta.log"}} {
		hits, err := f.db.Search(ctx, q, nil, 10)
		if err != nil || len(hits) != len(want) {
			t.Fatalf("search %s: %+v, %v", q, hits, err)
		}
		for i, h := range hits {
			if h.Entry.Path != want[i] {
				t.Errorf("search %s: hit %d is %s, want %s", q, i, h.Entry.Path, want[i])
			}
		}
	}
}
