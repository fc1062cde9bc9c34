// Package prune decides which backups to delete: a pure function of the
// backups, the rules and the time, so that every decision can be tested
// with golden files. The server's retention and `ib backup prune` share it.
//
// A backup goes only if every rule that is set says so: older than the age
// limit, and not among the newest KeepLast of its tag set. So the server's
// default (90 days, keep 1) never deletes the last backup of a node that
// stopped backing up. The server's retention also keeps the newest backup
// of each tag set that did not collapse (empty, or under half the files or
// bytes of the one before it): an unmounted disk backed up every day for
// three months does not age the last good backup out.
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
	ID           int64
	CreatedAt    time.Time
	TagSet       string // canonical tags: equal strings, same tag set
	Files, Bytes int64
}

// Rules of a prune. A zero Rules deletes nothing.
type Rules struct {
	OlderThan    time.Duration // delete backups older than this...
	HasOlderThan bool
	KeepLast     int // ...that are not among the newest KeepLast of their tag set
	HasKeepLast  bool
	// KeepWhole keeps the newest backup of each tag set that did not
	// collapse against the one before it.
	KeepWhole bool
}

// Retention is the server's rule: retention 0 keeps everything.
func Retention(retention time.Duration, keepLatest int) Rules {
	if retention <= 0 {
		return Rules{}
	}
	return Rules{OlderThan: retention, HasOlderThan: true, KeepLast: keepLatest, HasKeepLast: keepLatest > 0, KeepWhole: true}
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
		whole := -1 // the newest backup of the set that did not collapse
		if r.KeepWhole {
			whole = newestWhole(sets[s])
		}
		for i, b := range sets[s] {
			d := decide(b, i, r, now)
			if i == whole && d.Delete {
				d.Delete, d.Reason = false, "the newest backup of its tag set that did not shrink to under half of the one before"
			}
			out = append(out, d)
		}
	}
	return out
}

// newestWhole is the index in set (newest first) of the newest backup that
// did not collapse, -1 if none. Walking from the oldest, a backup is whole
// if it has files and at least half the files and bytes of the last whole
// one, or of the backup just before it when that one has files: two
// backups in a row of a smaller folder make it the new normal, an empty
// backup never does.
func newestWhole(set []Backup) int {
	half := func(b, of Backup) bool { return b.Files*2 >= of.Files && b.Bytes*2 >= of.Bytes }
	whole := -1
	for i := len(set) - 1; i >= 0; i-- {
		b := set[i]
		if b.Files == 0 {
			continue
		}
		prev := i + 1
		if whole < 0 || half(b, set[whole]) || (prev < len(set) && set[prev].Files > 0 && half(b, set[prev])) {
			whole = i
		}
	}
	return whole
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
