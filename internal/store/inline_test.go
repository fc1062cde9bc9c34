package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/ipfs/go-cid"

	"ib/internal/block"
	"ib/internal/store"
)

// Identity CIDs carry their bytes: never missing, never uploaded, no row
// and no reference, served like stored blocks.
func TestInlineCIDsNeedNoBlock(t *testing.T) {
	f := newStore(t)
	ctx := context.Background()
	tiny := block.Inline([]byte("MANIFEST-000042\n")).String()
	stored := []byte("a block the server holds, longer than an inline CID may be: " + string(make([]byte, 200)))
	sc := block.Sum(stored).String()
	wire, _ := block.Encode(stored, block.FastLevel)
	absent := block.Sum([]byte("absent")).String()
	if err := f.st.PutBlock(ctx, sc, bytes.NewReader(wire), -1); err != nil {
		t.Fatal(err)
	}

	missing, err := f.st.Missing(ctx, []string{tiny, absent, sc, tiny})
	if err != nil || len(missing) != 1 || missing[0] != absent {
		t.Fatalf("Missing = %v, %v; want only %s", missing, err, absent)
	}
	if missing, err := f.st.Missing(ctx, []string{tiny}); err != nil || len(missing) != 0 {
		t.Fatalf("Missing of an inline CID alone = %v, %v", missing, err)
	}
	iw, _ := block.Encode([]byte("MANIFEST-000042\n"), block.FastLevel)
	if err := f.st.PutBlock(ctx, tiny, bytes.NewReader(iw), -1); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("PutBlock of an inline CID: %v, want ErrInvalid", err)
	}
	if _, err := f.st.PutPack(ctx, bytes.NewReader(block.AppendFrame(nil, tiny, iw))); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("PutPack of an inline CID: %v, want ErrInvalid", err)
	}

	commit := func(blocks string, size int) store.CommitResult {
		t.Helper()
		body := fmt.Sprintf(`{"tags":{"node":"x"},"entries":[{"path":".","type":"dir","mode":493,"mtime":"2024-01-01T00:00:00Z"},`+
			`{"path":"CURRENT","type":"file","mode":420,"mtime":"2024-01-01T00:00:00Z","size":%d,"blocks":[%s]}]}`, size, blocks)
		res, err := f.st.Commit(ctx, bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatalf("commit %s: %v", blocks, err)
		}
		return res
	}
	// Only an inline CID: committed on a server that holds nothing for it.
	res := commit(fmt.Sprintf(`{"cid":%q,"size":16}`, tiny), 16)
	if res.ID == 0 || len(res.Missing) > 0 {
		t.Fatalf("commit of an inline file: %+v", res)
	}
	// Beside a stored block and an absent one: only the absent one is missing.
	res = commit(fmt.Sprintf(`{"cid":%q,"size":16},{"cid":%q,"size":%d},{"cid":%q,"size":6}`, tiny, sc, len(stored), absent), 16+len(stored)+6)
	if len(res.Missing) != 1 || res.Missing[0] != absent {
		t.Fatalf("commit with an absent block: missing %v", res.Missing)
	}
	res = commit(fmt.Sprintf(`{"cid":%q,"size":16},{"cid":%q,"size":%d}`, tiny, sc, len(stored)), 16+len(stored))
	if res.ID == 0 || len(res.Missing) > 0 {
		t.Fatalf("commit of inline and stored blocks: %+v", res)
	}

	rc, size, err := f.st.OpenBlock(ctx, tiny)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	var data bytes.Buffer
	if size != int64(len(got)) {
		t.Fatalf("OpenBlock: %d bytes, size %d", len(got), size)
	}
	if _, err := block.Verify(bytes.NewReader(got), mustCID(t, tiny), 1<<10, &data); err != nil || data.String() != "MANIFEST-000042\n" {
		t.Fatalf("OpenBlock of an inline CID: %q, %v", data.String(), err)
	}
	var pack bytes.Buffer
	if err := f.st.WriteBlocks(ctx, []string{sc, tiny}, &pack); err != nil {
		t.Fatal(err)
	}
	want := block.AppendFrame(block.AppendFrame(nil, sc, wire), tiny, got)
	if !bytes.Equal(pack.Bytes(), want) {
		t.Fatalf("WriteBlocks: %d bytes, want %d", pack.Len(), len(want))
	}
	fr, err := f.st.OpenFile(ctx, res.ID, "CURRENT")
	if err != nil {
		t.Fatal(err)
	}
	whole, err := io.ReadAll(fr)
	fr.Close()
	if err != nil || !bytes.Equal(whole, append([]byte("MANIFEST-000042\n"), stored...)) {
		t.Fatalf("OpenFile: %d bytes, %v", len(whole), err)
	}
}

func mustCID(t *testing.T, s string) cid.Cid {
	t.Helper()
	p, err := block.ParseCID(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
