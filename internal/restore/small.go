package restore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"ib/internal/block"
	"ib/internal/manifest"
)

// maxSmallWire bounds the wire form of a small block in a pack: LZ4 never
// grows 256 KiB by more than a few hundred bytes.
const maxSmallWire = smallLimit + 64<<10

// fetchSmall restores files of one small block each: their blocks come in
// one request, and each file is written whole, stamped and renamed. A pack
// cut short is asked for again from where it stopped.
func (r *run) fetchSmall(ctx context.Context, files []manifest.Entry) error {
	users := map[string][]int{} // CID → the files made of it
	var cids []string
	for i, e := range files {
		c := e.Blocks[0].CID
		if block.IsInline(c) { // from the backup, but not asked of the server
			if err := r.writeInline(e); err != nil {
				return err
			}
			r.delta.blocksFetched.Add(1)
			r.delta.bytesFetched.Add(e.Size)
			continue
		}
		if _, ok := users[c]; !ok {
			cids = append(cids, c)
			r.delta.blocksFetched.Add(1)
			r.delta.bytesFetched.Add(e.Blocks[0].Size)
		}
		users[c] = append(users[c], i)
	}
	if len(cids) == 0 {
		return nil
	}
	var buf bytes.Buffer
	for attempt := 1; ; attempt++ {
		done, err := r.fetchSmallOnce(ctx, files, cids, users, &buf)
		cids = cids[done:]
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt == 5 || final(err) || errors.As(err, new(*writeErr)) {
			return err
		}
		r.opts.Log.Warn("block download cut; fetching the rest again", "blocks", len(cids), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
}

var errPack = errors.New("the server answered other blocks than those asked for")

// nextFrame reads the header of a pack's next block, which must be cid,
// and returns a reader of its wire form (at most maxWire bytes).
func nextFrame(br *bufio.Reader, cid string, maxWire int64) (*io.LimitedReader, error) {
	got, n, err := block.ReadFrameHeader(br, maxWire)
	if err == io.EOF {
		return nil, io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	if got != cid {
		return nil, fmt.Errorf("%w: got %s, want %s", errPack, got, cid)
	}
	return &io.LimitedReader{R: br, N: n}, nil
}

// frameEnd fails unless a block's decoding used its whole wire form.
func frameEnd(lr *io.LimitedReader) error {
	if lr.N != 0 {
		return fmt.Errorf("%w: %d bytes after the LZ4 frame", block.ErrBadWire, lr.N)
	}
	return nil
}

// writeErr marks a failure to write the destination, which no new request
// mends.
type writeErr struct{ error }

func (w *writeErr) Unwrap() error { return w.error }

// fetchSmallOnce returns how many of cids it restored.
func (r *run) fetchSmallOnce(ctx context.Context, files []manifest.Entry, cids []string, users map[string][]int, buf *bytes.Buffer) (int, error) {
	rc, err := r.api.FetchBlocks(ctx, cids)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	br, release := r.packReader(rc)
	defer release()
	for done, c := range cids {
		lr, err := nextFrame(br, c, maxSmallWire)
		if err != nil {
			return done, err
		}
		first := files[users[c][0]]
		want, err := block.ParseCID(c)
		if err != nil {
			return done, fmt.Errorf("restore %s: %w", first.Path, err)
		}
		buf.Reset()
		size, err := block.Verify(lr, want, first.Blocks[0].Size, buf)
		if err == nil && size != first.Blocks[0].Size {
			err = fmt.Errorf("%w: %d bytes, the manifest says %d", errSize, size, first.Blocks[0].Size)
		}
		if err == nil {
			err = frameEnd(lr)
		}
		if err != nil {
			// A frame cut by the connection reads as a bad frame: asked
			// for again, like a cut download of a large block.
			return done, fmt.Errorf("restore %s: block %s: %w", first.Path, c, err)
		}
		for _, i := range users[c] {
			if err := r.writeSmall(files[i], buf.Bytes()); err != nil {
				return done, &writeErr{err}
			}
		}
	}
	return len(cids), nil
}

// writeInline writes a file named by an identity CID: its bytes are the
// CID's (the manifest's check saw that they are as many as its size).
func (r *run) writeInline(e manifest.Entry) error {
	c, err := block.ParseCID(e.Blocks[0].CID)
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	data, _ := block.InlineData(c)
	if int64(len(data)) != e.Size {
		return fmt.Errorf("restore %s: %w: %d bytes, the manifest says %d", e.Path, errSize, len(data), e.Size)
	}
	if err := r.writeSmall(e, data); err != nil {
		return &writeErr{err}
	}
	return nil
}

// writeSmall writes a whole file under its temporary name and places it.
func (r *run) writeSmall(e manifest.Entry, data []byte) error {
	tmp := tmpName(e.Path)
	f, err := r.create(tmp)
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		r.root.Remove(tmp)
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	r.opts.Counters.AddBytes(int64(len(data)))
	if err := r.place(f, tmp, e); err != nil {
		r.root.Remove(tmp)
		return err
	}
	r.opts.Counters.AddFile(0)
	return nil
}
