package metadbtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"ib/internal/block"
	"ib/internal/manifest"
	"ib/internal/metadb"
	"ib/internal/store"
)

// stream is a commit whose body the test writes as the client would: the
// head first, then entries, the request open until end or cut.
type stream struct {
	t    *testing.T
	pw   *io.PipeWriter
	n    int
	done chan struct{}
	res  store.CommitResult
	err  error
}

func (f *fixture) stream(t *testing.T, tags manifest.Tags, key string) *stream {
	t.Helper()
	pr, pw := io.Pipe()
	s := &stream{t: t, pw: pw, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.res, s.err = f.st.Commit(context.Background(), pr)
		pr.CloseWithError(errors.New("commit returned"))
	}()
	head, err := json.Marshal(map[string]any{"tags": tags, "idempotency_key": key})
	if err != nil {
		t.Fatal(err)
	}
	s.write(append(head[:len(head)-1], `,"entries":[`...))
	return s
}

func (s *stream) write(p []byte) {
	s.t.Helper()
	if _, err := s.pw.Write(p); err != nil {
		<-s.done
		s.t.Fatalf("commit body: %v; the commit returned %+v, %v", err, s.res, s.err)
	}
}

func (s *stream) send(es ...*manifest.Entry) {
	s.t.Helper()
	for _, e := range es {
		if s.n > 0 {
			s.write([]byte{','})
		}
		b, err := json.Marshal(e)
		if err != nil {
			s.t.Fatal(err)
		}
		s.write(b)
		s.n++
	}
}

// end closes the body and returns the commit's outcome.
func (s *stream) end() (store.CommitResult, error) {
	s.write([]byte("]}"))
	s.pw.Close()
	<-s.done
	return s.res, s.err
}

// cut breaks the body off, as a client that died.
func (s *stream) cut() error {
	s.pw.CloseWithError(errors.New("client went away"))
	<-s.done
	return s.err
}

// waitEntries waits until backup id has at least n entries recorded.
func waitEntries(t *testing.T, db DB, id int64, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		es, _, err := db.Entries(context.Background(), id, -1, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup %d has %d entries recorded after 20 s, want %d while its body streams", id, len(es), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func numbered(n int, mtime time.Time, pick func(i int) manifest.Block) []*manifest.Entry {
	es := []*manifest.Entry{dir(".", mtime)}
	for i := range n {
		es = append(es, file(fmt.Sprintf("f%04d", i), mtime, pick(i)))
	}
	return es
}

// testStagedCommit: a streamed commit is recorded while it arrives, hidden
// from every reader; its parent may be deleted and purged meanwhile; the
// blocks it only learns of at the end are looked up then, and the
// parent's blocks it dropped are no longer referenced.
func testStagedCommit(t *testing.T, b Backend) {
	f := newFixture(t, b)
	ctx := context.Background()
	mtime := time.Unix(1_700_000_000, 0).UTC()
	var bl [6]manifest.Block
	for i := range 4 {
		bl[i] = f.put(t, fmt.Appendf(nil, "block %d", i))
	}
	for i := 4; i < 6; i++ { // named now, uploaded once the stream is under way
		data := fmt.Appendf(nil, "block %d", i)
		bl[i] = manifest.Block{CID: block.Sum(data).String(), Size: int64(len(data))}
	}
	tags := manifest.Tags{"node": "staged"}
	parent := f.commit(t, tags, "", numbered(700, mtime, func(i int) manifest.Block { return bl[i%4] }))
	// The new backup drops the last 100 files, gives the first 100 a block
	// uploaded only after its stream began, and every fourth file another:
	// no entry of it has block 3 any more.
	pick := func(i int) manifest.Block {
		switch {
		case i < 100:
			return bl[5]
		case i%4 == 3:
			return bl[4]
		}
		return bl[i%4]
	}
	es := numbered(600, mtime, pick)
	wantReused := 0
	for i := range 600 {
		if pick(i) == bl[i%4] {
			wantReused++
		}
	}

	s := f.stream(t, tags, "staged-key")
	s.send(es[:400]...)
	id := parent.ID + 1
	waitEntries(t, f.db, id, 256)
	if _, err := f.db.Get(ctx, id); !errors.Is(err, metadb.ErrNotFound) {
		t.Fatalf("a staged backup is shown: %v", err)
	}
	if l, err := f.db.List(ctx, nil); err != nil || len(l) != 1 || l[0].ID != parent.ID {
		t.Fatalf("list while a backup is staged: %+v, %v", l, err)
	}
	if l, err := f.db.Latest(ctx, tags); err != nil || l.ID != parent.ID {
		t.Fatalf("latest while a backup is staged: %+v, %v", l, err)
	}
	if got, want := b.Refs(t, f.db, id), b.Refs(t, f.db, parent.ID); !slices.Equal(got, want) {
		t.Fatalf("stage references %v, want its parent's %v", got, want)
	}
	// The parent goes away meanwhile: its references were copied.
	if _, err := f.st.Delete(ctx, parent.ID); err != nil {
		t.Fatal(err)
	}
	f.tick()
	rep, err := f.st.GC(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.BackupsPurged != 1 || rep.BlocksDeleted != 0 {
		t.Fatalf("GC while staging purged %d backups and deleted %d blocks, want 1 and 0", rep.BackupsPurged, rep.BlocksDeleted)
	}
	if f.put(t, []byte("block 4")) != bl[4] || f.put(t, []byte("block 5")) != bl[5] {
		t.Fatal("blocks 4 and 5 stored under other names")
	}
	s.send(es[400:]...)
	res, err := s.end()
	if err != nil {
		t.Fatalf("staged commit: %v", err)
	}
	if res.ID != id || len(res.Missing) != 0 || res.Existed || res.Reused != int64(wantReused) {
		t.Fatalf("staged commit: %+v, want backup %d with %d entries reused", res, id, wantReused)
	}
	got, err := f.db.Get(ctx, id)
	if err != nil || got.Entries != 601 || got.Files != 600 || got.Blocks != 5 || !got.CreatedAt.Equal(f.clock) {
		t.Fatalf("staged backup %+v (%v), want 601 entries, 600 files, 5 blocks, made at %v", got, err, f.clock)
	}
	if rows := all(t, f.db, id); len(rows) != len(es) || rows[len(rows)-1].Path != "f0599" || rows[1].Blocks[0] != bl[5] {
		t.Fatalf("staged backup's entries: %d, want %d", len(rows), len(es))
	}
	f.tick()
	if _, err := f.st.GC(ctx, 0); err != nil {
		t.Fatal(err)
	}
	miss, err := f.st.Missing(ctx, []string{bl[0].CID, bl[1].CID, bl[2].CID, bl[3].CID, bl[4].CID, bl[5].CID})
	if err != nil || !slices.Equal(miss, []string{bl[3].CID}) {
		t.Fatalf("after GC missing %v (%v), want only block 3, which the staged backup dropped", miss, err)
	}
}

// testStagedCommitDropped: a body cut off, a stage reaped as idle, or a
// key another commit took meanwhile leaves nothing visible, and purging
// removes the stage's rows.
func testStagedCommitDropped(t *testing.T, b Backend) {
	f := newFixture(t, b)
	ctx := context.Background()
	mtime := time.Unix(1_700_000_000, 0).UTC()
	blk := f.put(t, []byte("the one block"))
	tags := manifest.Tags{"node": "dropped"}
	es := numbered(300, mtime, func(int) manifest.Block { return blk })
	gone := func(id int64, why string) {
		t.Helper()
		if l, err := f.db.List(ctx, nil); err != nil || len(l) != 0 {
			t.Fatalf("%s: backups listed: %+v, %v", why, l, err)
		}
		f.tick()
		if _, err := f.st.GC(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		if rows, _, err := f.db.Entries(ctx, id, -1, 10); err != nil || len(rows) != 0 {
			t.Fatalf("%s: purged stage still has %d entries (%v)", why, len(rows), err)
		}
	}

	s := f.stream(t, tags, "key")
	s.send(es...)
	waitEntries(t, f.db, 1, 256)
	if err := s.cut(); err == nil {
		t.Fatal("a commit whose body was cut off succeeded")
	}
	gone(1, "body cut off")

	s = f.stream(t, tags, "key")
	s.send(es...)
	waitEntries(t, f.db, 2, 256)
	f.advance(store.StageIdle + time.Minute)
	gone(2, "stage reaped")
	if _, err := s.end(); !errors.Is(err, metadb.ErrStageGone) {
		t.Fatalf("commit of a reaped stage: %v, want ErrStageGone", err)
	}

	blk = f.put(t, []byte("the one block")) // collected meanwhile
	s = f.stream(t, tags, "key")
	s.send(es...)
	waitEntries(t, f.db, 3, 256)
	first := f.commit(t, tags, "key", es) // the client's retry, through another server
	res, err := s.end()
	if err != nil || !res.Existed || res.ID != first.ID {
		t.Fatalf("staged commit of a key taken meanwhile: %+v, %v; want backup %d", res, err, first.ID)
	}
	if l, err := f.db.List(ctx, nil); err != nil || len(l) != 1 {
		t.Fatalf("backups after a key's two commits: %+v, %v", l, err)
	}
	f.tick()
	if _, err := f.st.GC(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if rows, _, err := f.db.Entries(ctx, 3, -1, 10); err != nil || len(rows) != 0 {
		t.Fatalf("the losing stage still has %d entries (%v)", len(rows), err)
	}
}

// testStagedCommitKeptAlive: a stage that has nothing to write for a while
// notes itself alive, and GC reaps only stages silent for StageIdle.
func testStagedCommitKeptAlive(t *testing.T, b Backend) {
	defer store.TestingSetStageTouch(20 * time.Millisecond)()
	f := newFixture(t, b)
	ctx := context.Background()
	mtime := time.Unix(1_700_000_000, 0).UTC()
	blk := f.put(t, []byte("kept alive"))
	es := numbered(300, mtime, func(int) manifest.Block { return blk })
	s := f.stream(t, manifest.Tags{"node": "alive"}, "")
	s.send(es[:280]...)
	waitEntries(t, f.db, 1, 256)
	for range 3 { // two hours in all since the stage began
		now := f.advance(40 * time.Minute)
		deadline := time.Now().Add(20 * time.Second)
		for b.StagedAt(t, f.db, 1) != now.UnixNano() {
			if time.Now().After(deadline) {
				t.Fatalf("a waiting stage did not note itself alive at %v (staged_at %d)", now, b.StagedAt(t, f.db, 1))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// A grace longer than the stage's two hours keeps its block, which
	// only its end references; its last note of life is recent.
	if rep, err := f.st.GC(ctx, 3*time.Hour); err != nil || rep.BackupsPurged != 0 {
		t.Fatalf("GC: %+v, %v", rep, err)
	}
	s.send(es[280:]...)
	res, err := s.end()
	if err != nil || res.ID != 1 {
		t.Fatalf("commit of a stage kept alive: %+v, %v", res, err)
	}
	if got, err := f.db.Get(ctx, 1); err != nil || got.Entries != 301 {
		t.Fatalf("backup kept alive: %+v, %v; want 301 entries", got, err)
	}
}
