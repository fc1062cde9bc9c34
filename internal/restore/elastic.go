package restore

import (
	"slices"
	"sync"
	"time"
)

// Block fetchers start as --jobs (4) and grow on a long link: each fetch
// is a round trip before its first byte, and a backup's blocks are often
// a few MiB (SST files), about as long on the wire at 1 Gbit/s as 50 ms
// of waiting. After the first sampleFetches, one fetcher per --jobs is
// added for every 10 ms of the median time to first byte, up to four
// times --jobs (80% of a 1 Gbit/s link at 80 ms before; see README).
const (
	sampleFetches  = 8
	latencyPerStep = 10 * time.Millisecond
	maxGrowth      = 3
)

// elastic decides, from the first fetches' times to first byte, how many
// more block fetchers to start.
type elastic struct {
	mu      sync.Mutex
	samples []time.Duration
	decided bool
	grow    func(n int) // starts n more fetchers
	jobs    int
}

// observe records one fetch's time to first byte.
func (e *elastic) observe(d time.Duration) {
	e.mu.Lock()
	if e.decided {
		e.mu.Unlock()
		return
	}
	e.samples = append(e.samples, d)
	if len(e.samples) < sampleFetches {
		e.mu.Unlock()
		return
	}
	e.decided = true
	slices.Sort(e.samples)
	median := e.samples[len(e.samples)/2]
	e.mu.Unlock()
	if steps := min(int(median/latencyPerStep), maxGrowth); steps > 0 && e.grow != nil {
		e.grow(steps * e.jobs)
	}
}
