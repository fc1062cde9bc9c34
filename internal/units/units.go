// Package units parses the durations and sizes of ib's flags: Go durations
// plus a "d" (day) suffix ("90d", "36h", "1d12h"), and byte counts with an
// optional KiB/MiB/GiB/TiB suffix ("1MiB", "4096").
package units

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseDuration accepts Go's syntax and whole or fractional days ("90d",
// "1.5d", "2d12h"). Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	var total time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		days, err := strconv.ParseFloat(s[:i], 64)
		if err != nil || !(days >= 0 && days <= 100_000) { // also refuses NaN
			return 0, fmt.Errorf("invalid duration %q: want e.g. 90d, 36h, 15m", orig)
		}
		total = time.Duration(days * 24 * float64(time.Hour))
		s = s[i+1:]
		if s == "" {
			return total, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q: want e.g. 90d, 36h, 15m", orig)
	}
	return total + d, nil
}

var sizeUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}}

// ParseSize accepts a byte count with an optional binary suffix.
func ParseSize(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range sizeUnits {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: want bytes or a KiB/MiB/GiB suffix, e.g. 1MiB", s)
	}
	return n * mult, nil
}

// FormatDuration renders a duration the way ParseDuration reads it, with
// days for whole days ("90d", "1d12h", "36m").
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	days := d / (24 * time.Hour)
	rest := d % (24 * time.Hour)
	s := ""
	if days > 0 {
		s = fmt.Sprintf("%dd", days)
	}
	if rest > 0 {
		r := rest.String()
		if strings.HasSuffix(r, "m0s") {
			r = strings.TrimSuffix(r, "0s")
		}
		if strings.HasSuffix(r, "h0m") {
			r = strings.TrimSuffix(r, "0m")
		}
		s += r
	}
	return s
}
