package restore

import (
	"testing"
	"time"
)

// The first fetches' median time to first byte decides how many fetchers
// to add: none on a near link, one per --jobs per 10 ms, at most three
// times --jobs; later fetches change nothing.
func TestElastic(t *testing.T) {
	for _, c := range []struct {
		ttfb time.Duration
		want int
	}{{time.Millisecond, 0}, {15 * time.Millisecond, 4}, {25 * time.Millisecond, 8}, {80 * time.Millisecond, 12}} {
		added := 0
		e := elastic{jobs: 4, grow: func(n int) { added += n }}
		for i := range sampleFetches + 5 {
			d := c.ttfb
			if i == 0 {
				d = time.Second // one slow outlier does not decide
			}
			e.observe(d)
		}
		if added != c.want {
			t.Errorf("median %s: %d fetchers added, want %d", c.ttfb, added, c.want)
		}
	}
}
