// Package throttle caps the bytes a process sends or receives per second:
// one token bucket (golang.org/x/time/rate) that every worker's reads draw
// from, so sixteen uploads at once share one limit, as restic's
// --limit-upload does.
package throttle

import (
	"context"
	"fmt"
	"io"
	"strings"

	"golang.org/x/time/rate"

	"ib/internal/units"
)

// minRate is the lowest limit taken: below it a backup of anything real
// would never end, and the flag was more likely a typo.
const minRate = 16 << 10

// Bucket is a shared byte rate. A nil *Bucket limits nothing.
type Bucket struct {
	l     *rate.Limiter
	chunk int
}

// New returns a bucket of bytesPerSec, or nil for 0 (no limit). Its burst
// is 50 ms of the rate (at least 32 KiB): a limit holds over any second.
func New(bytesPerSec int64) *Bucket {
	if bytesPerSec <= 0 {
		return nil
	}
	burst := int(min(max(bytesPerSec/20, 32<<10), 16<<20))
	return &Bucket{l: rate.NewLimiter(rate.Limit(bytesPerSec), burst), chunk: burst}
}

// ParseRate reads a rate such as "50MiB", "50MiB/s" or "800KiB" (bytes per
// second); "" and "0" are no limit.
func ParseRate(s string) (int64, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	if s == "" || s == "0" {
		return 0, nil
	}
	n, err := units.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("invalid rate %q: want bytes per second with a KiB/MiB/GiB suffix, e.g. 50MiB", s)
	}
	if n < minRate {
		return 0, fmt.Errorf("invalid rate %q: at least 16KiB (0 for no limit)", s)
	}
	return n, nil
}

// Reader returns rc whose reads wait for the bucket's tokens: each read
// takes at most one burst and waits for what it read. Errors of rc pass
// through as they are.
func (b *Bucket) Reader(ctx context.Context, rc io.ReadCloser) io.ReadCloser {
	if b == nil || rc == nil {
		return rc
	}
	return &reader{ctx: ctx, rc: rc, b: b}
}

type reader struct {
	ctx context.Context
	rc  io.ReadCloser
	b   *Bucket
}

func (r *reader) Read(p []byte) (int, error) {
	if len(p) > r.b.chunk {
		p = p[:r.b.chunk]
	}
	n, err := r.rc.Read(p)
	if n > 0 {
		if werr := r.b.l.WaitN(r.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

func (r *reader) Close() error { return r.rc.Close() }
