package units

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	good := map[string]time.Duration{
		"90d": 90 * 24 * time.Hour, "36h": 36 * time.Hour, "2s": 2 * time.Second,
		"1d12h": 36 * time.Hour, "0": 0, "1.5d": 36 * time.Hour, "0d": 0,
	}
	for s, want := range good {
		got, err := ParseDuration(s)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "d", "-1h", "-2d", "3x", "1d-1h", "ad", "NaNd", "Infd"} {
		if _, err := ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) accepted", s)
		}
	}
}

func TestParseSize(t *testing.T) {
	good := map[string]int64{"1MiB": 1 << 20, "4096": 4096, "128MiB": 128 << 20, "2KiB": 2048, "1GiB": 1 << 30, "10B": 10}
	for s, want := range good {
		got, err := ParseSize(s)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "1MB", "-1", "x", "1.5MiB", "99999999999TiB"} {
		if _, err := ParseSize(s); err == nil {
			t.Errorf("ParseSize(%q) accepted", s)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		90 * 24 * time.Hour: "90d", 36 * time.Hour: "1d12h", 2 * time.Second: "2s",
		90 * time.Minute: "1h30m", 0: "0s", 3*time.Hour + 2*time.Second: "3h0m2s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if d > 0 {
			if back, err := ParseDuration(FormatDuration(d)); err != nil || back != d {
				t.Errorf("round trip of %v: %v %v", d, back, err)
			}
		}
	}
}

// FuzzUnits: parsing never panics; accepted values are not negative.
func FuzzUnits(f *testing.F) {
	for _, s := range []string{"90d", "1.5d", "36h", "1MiB", "128MiB", "-1", "1e400d", "NaNd", "Infd", "9223372036854775807B"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseDuration(s); err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
		if n, err := ParseSize(s); err == nil && n < 0 {
			t.Fatalf("ParseSize(%q) = %v", s, n)
		}
	})
}
