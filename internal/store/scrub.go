package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"ib/internal/block"
)

// ScrubReport is what one scrub pass found.
type ScrubReport struct {
	Blocks  int64 // blocks re-hashed
	Bytes   int64 // wire bytes read
	Corrupt int64 // blocks whose bytes no longer match their CID
}

// Scrub re-reads and re-hashes every stored block at no more than
// bytesPerSec (0: no limit). A block that does not match its CID is logged,
// counted and marked corrupt: /blocks/missing then reports it, so the next
// backup that holds its bytes uploads them again and heals it.
func (s *Store) Scrub(ctx context.Context, bytesPerSec int64, onCorrupt func()) (ScrubReport, error) {
	var rep ScrubReport
	start := time.Now()
	after := int64(0)
	for {
		page, err := s.db.ScrubPage(ctx, after, 256)
		if err != nil {
			return rep, err
		}
		if len(page) == 0 {
			return rep, nil
		}
		for _, b := range page {
			after = b.ID
			c, err := block.CIDFromBytes(b.CID)
			if err != nil {
				return rep, err
			}
			var r io.Reader
			var closer io.Closer
			if b.Inline != nil {
				r = bytes.NewReader(b.Inline)
			} else {
				rc, err := s.blocks.Get(ctx, c.String())
				if err != nil {
					if ctx.Err() != nil {
						return rep, ctx.Err()
					}
					s.log.Error("scrub: block unreadable", "cid", c.String(), "store", s.blocks.String(), "err", err)
					rep.Corrupt++
					s.db.MarkCorrupt(ctx, b.CID)
					if onCorrupt != nil {
						onCorrupt()
					}
					continue
				}
				r, closer = rc, rc
			}
			cr := &countingReader{r: r}
			_, err = block.Verify(cr, c, block.MaxSize, nil)
			if closer != nil {
				closer.Close()
			}
			rep.Blocks++
			rep.Bytes += cr.n
			if err != nil {
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				if errors.Is(err, block.ErrMismatch) || errors.Is(err, block.ErrBadWire) || errors.Is(err, block.ErrTooLarge) {
					s.log.Error("scrub: corrupt block; marked missing so the next backup re-uploads it", "cid", c.String(), "err", err)
					rep.Corrupt++
					if err := s.db.MarkCorrupt(ctx, b.CID); err != nil {
						return rep, err
					}
					if onCorrupt != nil {
						onCorrupt()
					}
					continue
				}
				return rep, err
			}
			if bytesPerSec > 0 { // stay under the rate
				due := time.Duration(float64(rep.Bytes) / float64(bytesPerSec) * float64(time.Second))
				if wait := due - time.Since(start); wait > 0 {
					select {
					case <-ctx.Done():
						return rep, ctx.Err()
					case <-time.After(wait):
					}
				}
			}
		}
	}
}
