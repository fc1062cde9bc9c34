package sqlite

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"ib/internal/block"
	"ib/internal/metadb"
)

// TestPutBlocksGrouped: concurrent calls, grouped by the writer into shared
// transactions, each get one answer per block of their own, in order, and
// of the calls that record the same block exactly one is told it is new.
func TestPutBlocksGrouped(t *testing.T) {
	ctx := context.Background()
	db := openTemp(t)
	blockN := func(i int) metadb.Block {
		data := fmt.Appendf(nil, "block %d", i)
		return metadb.Block{CID: block.Sum(data).Bytes(), Size: int64(len(data)), WireSize: 1, Inline: []byte{byte(i)}}
	}
	const callers, perCall, distinct = 16, 300, 1000
	answers := make([][]bool, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch := make([]metadb.Block, perCall)
			for i := range batch {
				batch[i] = blockN((c*perCall/2 + i) % distinct) // neighbours overlap by half
			}
			if c%4 == 0 {
				batch = batch[:1] // some single puts among the packs
				added, err := db.PutBlock(ctx, batch[0])
				if err != nil {
					t.Error(err)
				}
				answers[c] = []bool{added}
				return
			}
			added, err := db.PutBlocks(ctx, batch)
			if err != nil {
				t.Error(err)
			}
			if len(added) != len(batch) {
				t.Errorf("caller %d: %d answers for %d blocks", c, len(added), len(batch))
			}
			answers[c] = added
		}()
	}
	wg.Wait()
	newCount := map[int]int{}
	for c, added := range answers {
		for i, a := range added {
			if a {
				newCount[(c*perCall/2+i)%distinct]++
			}
		}
	}
	var rows int
	if err := db.w.QueryRowContext(ctx, "SELECT count(*) FROM blocks").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if len(newCount) != rows {
		t.Fatalf("%d blocks reported new, %d rows", len(newCount), rows)
	}
	for i, n := range newCount {
		if n != 1 {
			t.Fatalf("block %d reported new %d times", i, n)
		}
	}
}
