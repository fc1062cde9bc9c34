package backup

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// missingAskers is how many missing-queries may be in flight at once: on
// a long link one at a time capped a backup of many small files at a
// batch per round trip.
const missingAskers = 4

// batchMissing asks the server about new CIDs in batches (up to 1000, no
// more often than every questionGap unless full, so that slow hashing
// still gets quick answers without a question per file; up to
// missingAskers at once) and passes the missing ones on to the
// uploaders, each CID once: large blocks alone, small ones in packs.
func (r *run) batchMissing(ctx context.Context, in <-chan source, out chan<- []source) error {
	g, ctx := errgroup.WithContext(ctx)
	batches := make(chan []source, missingAskers)
	found := make(chan []source, missingAskers)
	var inFlight atomic.Int64
	var pace answerPace
	g.Go(func() error {
		defer close(batches)
		return collectBatches(ctx, in, batches, &inFlight, &pace)
	})
	var asking sync.WaitGroup // an asker's error cancels ctx at once
	for range missingAskers {
		asking.Add(1)
		g.Go(func() error {
			defer asking.Done()
			for batch := range batches {
				start := time.Now()
				missing, err := r.askMissing(ctx, batch)
				pace.took(time.Since(start))
				// Answered before it is passed on: a packer that sees
				// nothing in flight finds every answer in found.
				inFlight.Add(-1)
				if err != nil {
					return err
				}
				select {
				case found <- missing:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		asking.Wait()
		close(found)
		return nil
	})
	g.Go(func() error { return packMissing(ctx, found, out, &inFlight) })
	return g.Wait()
}

// questionGap is the least time between two questions that are not full:
// a client hashing slowly (a niced one, a slow disk) asked about each file
// on its own as soon as it was named, and 50 such clients at once made
// 4,816 questions where 450 do (p99 0.9 s, queued for the server's
// readers). A client that names blocks fast fills batches at once and
// never waits. When the server answers more slowly than questionGap, the
// gap is as long as its last answer took: with 50 such clients on a
// loaded server the fixed gap still let 4,801 questions through (p50 106
// ms), each client keeping the server's readers busy with questions of a
// few CIDs.
const questionGap = 25 * time.Millisecond

// answerPace is how long the last missing-query took to be answered.
type answerPace struct{ last atomic.Int64 }

func (p *answerPace) took(d time.Duration) { p.last.Store(int64(d)) }

// gap is the least time before the next question that is not full.
func (p *answerPace) gap() time.Duration {
	return max(questionGap, time.Duration(p.last.Load()))
}

// collectBatches reads CIDs into batches of the ones not asked about yet:
// a batch goes when it is full, when the input ends, or when pace's gap
// has passed since the last one went, with what has come by then.
func collectBatches(ctx context.Context, in <-chan source, batches chan<- []source, inFlight *atomic.Int64, pace *answerPace) error {
	const maxBatch = 1000
	const maxRemembered = 200_000
	asked := map[string]struct{}{}
	var last time.Time
	for {
		first, ok := <-in
		if !ok {
			return nil
		}
		batch, err := gather(ctx, in, []source{first}, maxBatch, last.Add(pace.gap()))
		if err != nil {
			return err
		}
		if len(asked) > maxRemembered {
			clear(asked) // at worst a block is uploaded twice; puts are idempotent
		}
		fresh := batch[:0]
		for _, s := range batch {
			if _, done := asked[s.cid]; !done {
				asked[s.cid] = struct{}{}
				fresh = append(fresh, s)
			}
		}
		if len(fresh) == 0 {
			continue
		}
		inFlight.Add(1)
		select {
		case batches <- fresh:
			last = time.Now()
		case <-ctx.Done():
			inFlight.Add(-1)
			return ctx.Err()
		}
	}
}

// gather adds to batch what in brings until batch holds limit, in is
// closed, or the time is past until (then what is waiting still joins).
func gather(ctx context.Context, in <-chan source, batch []source, limit int, until time.Time) ([]source, error) {
	var timeout <-chan time.Time
	if wait := time.Until(until); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	for len(batch) < limit {
		var s source
		var ok bool
		select {
		case s, ok = <-in:
		default:
			if timeout == nil {
				return batch, nil // nothing waiting, and the gap has passed
			}
			select {
			case s, ok = <-in:
			case <-timeout:
				timeout = nil
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if !ok {
			return batch, nil
		}
		batch = append(batch, s)
	}
	return batch, nil
}

// askMissing asks the server which of a batch's blocks it lacks.
func (r *run) askMissing(ctx context.Context, batch []source) ([]source, error) {
	cids := make([]string, len(batch))
	byCID := make(map[string]source, len(batch))
	for i, s := range batch {
		cids[i] = s.cid
		byCID[s.cid] = s
	}
	missing, err := r.api.Missing(ctx, cids)
	if err != nil {
		return nil, fmt.Errorf("ask server for missing blocks: %w", err)
	}
	out := make([]source, 0, len(missing))
	for _, c := range missing {
		s, ok := byCID[c]
		if !ok {
			return nil, fmt.Errorf("server answered with a CID it was not asked about: %s", c)
		}
		delete(byCID, c) // an answer naming a CID twice uploads it once
		out = append(out, s)
	}
	return out, nil
}

// packMissing sends large missing blocks alone and gathers small ones into
// packs. A pack fills while answers keep coming or questions are in
// flight, and goes as soon as neither is.
func packMissing(ctx context.Context, found <-chan []source, out chan<- []source, inFlight *atomic.Int64) error {
	var pack []source
	var packBytes int64
	send := func(p []source) error {
		select {
		case out <- p:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		var missing []source
		var ok bool
		select {
		case missing, ok = <-found:
		default:
			if len(pack) > 0 && inFlight.Load() == 0 {
				if err := send(pack); err != nil {
					return err
				}
				pack, packBytes = nil, 0
			}
			missing, ok = <-found
		}
		if !ok {
			if len(pack) > 0 {
				return send(pack)
			}
			return nil
		}
		for _, s := range missing {
			if s.size >= packLimit {
				if err := send([]source{s}); err != nil {
					return err
				}
				continue
			}
			pack = append(pack, s)
			packBytes += s.size
			if packBytes >= packBytesMax || len(pack) >= packBlocksMax {
				if err := send(pack); err != nil {
					return err
				}
				pack, packBytes = nil, 0
			}
		}
	}
}
