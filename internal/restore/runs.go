package restore

import (
	"context"
	"fmt"
	"time"

	"ib/internal/block"
	"ib/internal/manifest"
)

// Consecutive blocks of a file are fetched together, up to runBytes in
// one request (a pack, as for small files): large files are cut into
// blocks of about 2 MiB, and a request each was a round trip each (1
// Gbit/s at 80 ms: 73% of the link, against 82% when blocks were up to
// 128 MiB). A block DEST already holds (see reuse) is not asked for.
const (
	runBytes  = 16 << 20
	runBlocks = 64
)

// runs cuts a file's blocks into runs of at most runBytes (a block larger
// than that is a run of its own) and runBlocks.
func runs(st *fileState, bs []manifest.Block) []blockRun {
	var out []blockRun
	start, startOff, off, size := 0, int64(0), int64(0), int64(0)
	for i, b := range bs {
		if i > start && (size+b.Size > runBytes || i-start == runBlocks) {
			out = append(out, blockRun{file: st, off: startOff, bs: bs[start:i]})
			start, startOff, size = i, off, 0
		}
		size += b.Size
		off += b.Size
	}
	if len(bs) > 0 {
		out = append(out, blockRun{file: st, off: startOff, bs: bs[start:]})
	}
	return out
}

// fetchRun writes a run's blocks: those DEST holds from DEST, one other
// alone, more in one pack.
func (r *run) fetchRun(ctx context.Context, run blockRun) error {
	var todo []blockJob
	off := run.off
	for _, b := range run.bs {
		j := blockJob{file: run.file, b: b, off: off}
		off += b.Size
		if ok, err := r.reuse(j); err != nil {
			return err
		} else if ok {
			if err := r.blockDone(j.file); err != nil {
				return err
			}
			continue
		}
		todo = append(todo, j)
	}
	for _, j := range todo {
		r.delta.blocksFetched.Add(1)
		r.delta.bytesFetched.Add(j.b.Size)
	}
	switch len(todo) {
	case 0:
		return nil
	case 1:
		return r.download(ctx, todo[0])
	}
	// A pack cut short is asked for again from the first block not
	// written; one cut in its first block gets that block alone first (a
	// GET, with its own retries), so every retry makes progress. Bytes
	// that do not match their CID are not asked for again.
	for attempt := 1; ; attempt++ {
		done, err := r.fetchRunOnce(ctx, todo)
		for _, j := range todo[:done] {
			if err := r.blockDone(j.file); err != nil {
				return err
			}
		}
		todo = todo[done:]
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if final(err) {
			return fmt.Errorf("restore %s: %w", run.file.e.Path, err)
		}
		r.opts.Log.Warn("block download cut; fetching the rest again", "file", run.file.e.Path, "blocks", len(todo), "err", err)
		if done == 0 {
			if err := r.download(ctx, todo[0]); err != nil {
				return err
			}
			if todo = todo[1:]; len(todo) == 0 {
				return nil
			}
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(min(attempt, 5)) * 200 * time.Millisecond):
		}
	}
}

// fetchRunOnce fetches blocks as one pack and writes each; it returns
// how many it wrote.
func (r *run) fetchRunOnce(ctx context.Context, todo []blockJob) (int, error) {
	cids := make([]string, len(todo))
	for i, j := range todo {
		cids[i] = j.b.CID
	}
	start := time.Now()
	rc, err := r.api.FetchBlocks(ctx, cids)
	if err != nil {
		return 0, err
	}
	r.elastic.observe(time.Since(start))
	defer rc.Close()
	br, release := r.packReader(rc)
	defer release()
	for done, j := range todo {
		lr, err := nextFrame(br, j.b.CID, j.b.Size+j.b.Size/255+64<<10)
		if err != nil {
			return done, err
		}
		want, err := block.ParseCID(j.b.CID)
		if err != nil {
			return done, err
		}
		err = r.writeBlock(lr, j, want)
		if err == nil {
			err = frameEnd(lr)
		}
		if err != nil {
			return done, fmt.Errorf("block %s: %w", j.b.CID, err)
		}
	}
	return len(todo), nil
}
