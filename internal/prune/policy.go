// Package prune decides which backups to delete: a pure function of the
// backups, the rules and the time, so that every decision can be tested
// with golden files. The server's retention and `ib backup prune` share it.
//
// A backup goes only if every rule that is set says so: older than the age
// limit, and not among the newest KeepLast of its tag set. So the server's
// default (90 days, keep 1) never deletes the last backup of a node that
// stopped backing up.
package prune

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"ib/internal/units"
)

// Backup is what the policy looks at.
type Backup struct {
	ID        int64
	CreatedAt time.Time
	TagSet    string // canonical tags: equal strings, same tag set
}

// Rules of a prune. A zero Rules deletes nothing.
type Rules struct {
	OlderThan    time.Duration // delete backups older than this...
	HasOlderThan bool
	KeepLast     int // ...that are not among the newest KeepLast of their tag set
	HasKeepLast  bool
}

// Retention is the server's rule: retention 0 keeps everything.
func Retention(retention time.Duration, keepLatest int) Rules {
	if retention <= 0 {
		return Rules{}
	}
	return Rules{OlderThan: retention, HasOlderThan: true, KeepLast: keepLatest, HasKeepLast: keepLatest > 0}
}

// Decision is the fate of one backup, with the reason.
type Decision struct {
	Backup
	Delete bool
	Reason string
}

// Decide returns a decision for every backup, newest first within each tag
// set and tag sets in the order of their newest backup. Backups created in
// the same instant are ordered by ID (the later commit is newer).
func Decide(backups []Backup, r Rules, now time.Time) []Decision {
	sets := map[string][]Backup{}
	var order []string
	for _, b := range backups {
		if _, ok := sets[b.TagSet]; !ok {
			order = append(order, b.TagSet)
		}
		sets[b.TagSet] = append(sets[b.TagSet], b)
	}
	newer := func(a, b Backup) int { // newest first
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	}
	for _, s := range order {
		slices.SortFunc(sets[s], newer)
	}
	slices.SortFunc(order, func(a, b string) int { return newer(sets[a][0], sets[b][0]) })

	out := make([]Decision, 0, len(backups))
	for _, s := range order {
		for i, b := range sets[s] {
			out = append(out, decide(b, i, r, now))
		}
	}
	return out
}

func decide(b Backup, rank int, r Rules, now time.Time) Decision {
	d := Decision{Backup: b}
	if !r.HasOlderThan && !r.HasKeepLast {
		d.Reason = "no rule given"
		return d
	}
	age := now.Sub(b.CreatedAt)
	if r.HasKeepLast && rank < r.KeepLast {
		d.Reason = fmt.Sprintf("among the newest %d of its tag set", r.KeepLast)
		return d
	}
	if r.HasOlderThan && age <= r.OlderThan {
		d.Reason = fmt.Sprintf("not older than %s", units.FormatDuration(r.OlderThan))
		return d
	}
	d.Delete = true
	switch {
	case r.HasOlderThan && r.HasKeepLast:
		d.Reason = fmt.Sprintf("older than %s and not among the newest %d of its tag set", units.FormatDuration(r.OlderThan), r.KeepLast)
	case r.HasOlderThan:
		d.Reason = fmt.Sprintf("older than %s", units.FormatDuration(r.OlderThan))
	default:
		d.Reason = fmt.Sprintf("not among the newest %d of its tag set", r.KeepLast)
	}
	return d
}
