// Package progress counts what a backup or restore has done and renders it
// on stderr: a live bar on a terminal, a line every few seconds otherwise,
// nothing when quiet. The engines only bump atomic counters; rendering runs
// in its own goroutine.
package progress

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// Counters are updated by the engines; a nil *Counters is valid and counts
// nothing.
type Counters struct {
	Files    atomic.Int64 // entries done
	Bytes    atomic.Int64 // logical bytes done (hashed, reused or restored)
	Uploaded atomic.Int64 // wire bytes sent or received

	TotalFiles atomic.Int64
	TotalBytes atomic.Int64
	TotalsDone atomic.Bool // the totals can be shown: final, or an estimate that ends exact
	Failed     atomic.Bool // the work failed: no last line

	phase atomic.Value // string
}

// AddFile counts one entry of n logical bytes.
func (c *Counters) AddFile(n int64) {
	if c != nil {
		c.Files.Add(1)
		c.Bytes.Add(n)
	}
}

// AddBytes counts logical bytes.
func (c *Counters) AddBytes(n int64) {
	if c != nil {
		c.Bytes.Add(n)
	}
}

// AddWire counts bytes on the wire.
func (c *Counters) AddWire(n int64) {
	if c != nil {
		c.Uploaded.Add(n)
	}
}

// Render draws the counters on w until ctx ends, then draws them once more.
// On a terminal it redraws one line in place every 200 ms; otherwise it
// prints a line every interval.
func Render(ctx context.Context, w io.Writer, c *Counters, verb string, terminal bool, interval time.Duration) {
	start := time.Now()
	tick := interval
	if terminal {
		tick = 200 * time.Millisecond
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if c.Failed.Load() {
				if terminal {
					fmt.Fprint(w, "\r\033[K")
				}
				return
			}
			line := Line(c, verb, time.Since(start))
			if terminal {
				fmt.Fprintf(w, "\r\033[K%s\n", line)
			} else {
				fmt.Fprintln(w, line)
			}
			return
		case <-t.C:
			line := Line(c, verb, time.Since(start))
			if terminal {
				fmt.Fprintf(w, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(w, line)
			}
		}
	}
}

// Line is one rendering of the counters.
func Line(c *Counters, verb string, elapsed time.Duration) string {
	files, bytes, wire := c.Files.Load(), c.Bytes.Load(), c.Uploaded.Load()
	tf, tb := c.TotalFiles.Load(), c.TotalBytes.Load()
	rate := float64(bytes) / max(elapsed.Seconds(), 0.001)
	var b strings.Builder
	if c.TotalsDone.Load() && tb > 0 {
		frac := min(float64(bytes)/float64(tb), 1)
		const width = 20
		n := int(frac * width)
		fmt.Fprintf(&b, "[%s%s] %3.0f%% ", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100)
	}
	fmt.Fprintf(&b, "%s %d", verb, files)
	if tf > 0 {
		fmt.Fprintf(&b, "/%d", tf)
	}
	word := " files"
	if max(files, tf) == 1 {
		word = " file"
	}
	fmt.Fprintf(&b, "%s, %s", word, Size(bytes))
	if tb > 0 {
		fmt.Fprintf(&b, "/%s", Size(tb))
	}
	fmt.Fprintf(&b, ", %s on the wire, %s/s", Size(wire), Size(int64(rate)))
	if c.TotalsDone.Load() && rate > 0 && tb > bytes {
		eta := time.Duration(float64(tb-bytes) / rate * float64(time.Second))
		fmt.Fprintf(&b, ", ETA %s", eta.Round(time.Second))
	}
	return b.String()
}

// Size renders a byte count with a binary unit.
func Size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// SetPhase names what the work is doing now (reading, uploading,
// committing…).
func (c *Counters) SetPhase(p string) {
	if c != nil {
		c.phase.Store(p)
	}
}

// Phase is the name SetPhase gave last, or "".
func (c *Counters) Phase() string {
	if c == nil {
		return ""
	}
	p, _ := c.phase.Load().(string)
	return p
}

// Snapshot is the counters at one time.
type Snapshot struct {
	Phase                  string
	Files, Bytes, Uploaded int64
	TotalFiles, TotalBytes int64
}

// Snap reads the counters.
func (c *Counters) Snap() Snapshot {
	return Snapshot{Phase: c.Phase(), Files: c.Files.Load(), Bytes: c.Bytes.Load(), Uploaded: c.Uploaded.Load(),
		TotalFiles: c.TotalFiles.Load(), TotalBytes: c.TotalBytes.Load()}
}

// Report calls send with the counters every interval while they change,
// until ctx ends. A send that fails is not retried: the next one carries
// newer counters.
func Report(ctx context.Context, c *Counters, interval time.Duration, send func(context.Context, Snapshot) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last Snapshot
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s := c.Snap()
		if s == last {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, interval*5)
		if send(sctx, s) == nil {
			last = s
		}
		cancel()
	}
}
