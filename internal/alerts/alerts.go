// Package alerts is the server's own alerting: it sees every node, so it
// says when a tag set has had no backup for too long, when a scrub found
// corrupt blocks, when a prune or GC run failed, and when the data dir is
// running out of space. Each alert is sent once when it fires and once
// when it clears; firing alerts are kept in the database.
package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"ib/internal/activity"
	"ib/internal/manifest"
	"ib/internal/metadb"
	"ib/internal/notify"
	"ib/internal/units"
)

// Kinds of alerts.
const (
	Stale   = "stale"    // a tag set's newest backup is too old
	Corrupt = "corrupt"  // the last scrub found corrupt blocks
	Prune   = "prune"    // the last prune or GC run failed
	Disk    = "low_disk" // the data dir's free space is below the minimum
)

// StaleRule gives the tag sets that include Tags their own limit (0: never
// stale).
type StaleRule struct {
	Tags  manifest.Tags
	After time.Duration
}

// Config says what to watch and where to send.
type Config struct {
	Targets    []notify.Target
	StaleAfter time.Duration // default DefaultStaleAfter
	Rules      []StaleRule   // the first rule whose tags a tag set includes applies
	MinFree    float64       // fraction of the data dir's file system; default DefaultMinFree; <0 never
	DataDir    string
	// Every is how often Run checks (default a minute; <0: Run does
	// nothing, and only Check and JobEnded alert: tests).
	Every time.Duration
}

// Defaults.
const (
	DefaultStaleAfter = 26 * time.Hour
	DefaultMinFree    = 0.05
)

// Alert is a firing alert as the API shows it.
type Alert struct {
	Key     string        `json:"key"`
	Kind    string        `json:"kind"`
	Message string        `json:"message"`
	Since   time.Time     `json:"since"`
	Tags    manifest.Tags `json:"tags,omitempty"`
}

// Rows are the firing alerts in the metadata store.
type Rows interface {
	Alerts(ctx context.Context) ([]metadb.Alert, error)
	// FireAlert records a firing alert (replacing one with its key).
	FireAlert(ctx context.Context, a metadb.Alert) error
	ClearAlert(ctx context.Context, key string) error
}

// Alerter watches and sends.
type Alerter struct {
	cfg    Config
	db     Rows
	log    *slog.Logger
	now    func() time.Time
	last   func() map[string]time.Time // newest backup per canonical tag set
	free   func(dir string) (free, total uint64, err error)
	sender notify.Sender

	mu     sync.Mutex
	firing map[string]Alert
	// Leader, if set, says whether this server checks and sends (one of
	// the servers sharing a database does); the others read the firing
	// alerts from the database.
	Leader func() bool
}

// New returns an alerter; last gives the newest backup of each tag set.
func New(ctx context.Context, cfg Config, db Rows, log *slog.Logger, last func() map[string]time.Time) (*Alerter, error) {
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = DefaultStaleAfter
	}
	if cfg.MinFree == 0 {
		cfg.MinFree = DefaultMinFree
	}
	a := &Alerter{cfg: cfg, db: db, log: log, now: time.Now, last: last, free: freeSpace,
		sender: notify.Sender{Log: log}, firing: map[string]Alert{}}
	if err := a.reload(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// reload reads the firing alerts from the database.
func (a *Alerter) reload(ctx context.Context) error {
	rows, err := a.db.Alerts(ctx)
	if err != nil {
		return err
	}
	firing := make(map[string]Alert, len(rows))
	for _, r := range rows {
		firing[r.Key] = Alert{Key: r.Key, Kind: r.Kind, Message: r.Message, Since: r.Since}
	}
	a.mu.Lock()
	a.firing = firing
	a.mu.Unlock()
	return nil
}

// SetClock replaces the clock (tests move time, as retention's do).
func (a *Alerter) SetClock(now func() time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.now = now
}

// clock returns the time now and the free-space probe (both replaceable by
// tests while the checks run).
func (a *Alerter) clock() (time.Time, func(string) (uint64, uint64, error)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.now(), a.free
}

// SetBackoff sets the first wait between attempts to send (tests).
func (a *Alerter) SetBackoff(d time.Duration) { a.sender.Backoff = d }

// Wait waits for the messages in flight.
func (a *Alerter) Wait() { a.sender.Wait() }

// Active returns the firing alerts, oldest first.
func (a *Alerter) Active() []Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Collect(maps.Values(a.firing))
	slices.SortFunc(out, func(x, y Alert) int { return x.Since.Compare(y.Since) })
	return out
}

// staleAfter is the limit of a tag set.
func (a *Alerter) staleAfter(tags manifest.Tags) time.Duration {
	for _, r := range a.cfg.Rules {
		if tags.Matches(r.Tags) {
			return r.After
		}
	}
	return a.cfg.StaleAfter
}

// Check looks at the tag sets and the free space, firing and clearing.
func (a *Alerter) Check(ctx context.Context) {
	now, _ := a.clock()
	stale := map[string]Alert{}
	for canon, last := range a.last() {
		var tags manifest.Tags
		if err := json.Unmarshal([]byte(canon), &tags); err != nil {
			continue
		}
		limit := a.staleAfter(tags)
		if age := now.Sub(last); limit > 0 && age > limit {
			key := Stale + ":" + canon
			stale[key] = Alert{Key: key, Kind: Stale, Tags: tags, Since: last.Add(limit),
				Message: fmt.Sprintf("no backup of %s for %s (expected every %s)", tags, units.FormatDuration(age.Round(time.Minute)), units.FormatDuration(limit))}
		}
	}
	a.mu.Lock()
	var fire []Alert
	var clear []Alert
	for key, al := range stale {
		if _, ok := a.firing[key]; !ok {
			fire = append(fire, al)
		}
	}
	for key, al := range a.firing {
		if al.Kind == Stale {
			if _, ok := stale[key]; !ok {
				clear = append(clear, al)
			}
		}
	}
	a.mu.Unlock()
	for _, al := range fire {
		a.Fire(ctx, al)
	}
	for _, al := range clear {
		a.Clear(ctx, al.Key, "a backup of "+al.Tags.String()+" arrived")
	}
	a.checkDisk(ctx)
}

func (a *Alerter) checkDisk(ctx context.Context) {
	if a.cfg.MinFree < 0 || a.cfg.DataDir == "" {
		return
	}
	now, probe := a.clock()
	free, total, err := probe(a.cfg.DataDir)
	if err != nil || total == 0 {
		return
	}
	frac := float64(free) / float64(total)
	if frac < a.cfg.MinFree {
		a.Fire(ctx, Alert{Key: Disk, Kind: Disk, Since: now.UTC(),
			Message: fmt.Sprintf("%.1f%% free on the data dir's file system (%s of %s), below %.1f%%", 100*frac, size(free), size(total), 100*a.cfg.MinFree)})
	} else {
		a.Clear(ctx, Disk, fmt.Sprintf("%.1f%% free on the data dir's file system", 100*frac))
	}
}

// JobEnded hears of the server's own jobs: a scrub that found corrupt
// blocks fires, a clean one clears; a failed prune fires, a good one clears.
func (a *Alerter) JobEnded(j activity.Job) {
	ctx := context.Background()
	now, _ := a.clock()
	switch {
	case j.Kind == activity.KindScrub && j.Status == activity.Warning:
		a.Fire(ctx, Alert{Key: Corrupt, Kind: Corrupt, Since: now.UTC(), Message: "scrub: " + j.Error + " (they are re-uploaded by the next backup that has their bytes; see ib server verify)"})
	case j.Kind == activity.KindScrub && j.Status == activity.OK:
		a.Clear(ctx, Corrupt, "a scrub found no corrupt block")
	case j.Kind == activity.KindPrune && j.Status == activity.Failed:
		a.Fire(ctx, Alert{Key: Prune, Kind: Prune, Since: now.UTC(), Message: "prune or GC failed: " + j.Error})
	case j.Kind == activity.KindPrune && j.Status == activity.OK:
		a.Clear(ctx, Prune, "a prune and GC run succeeded")
	}
}

// Fire sends al unless it is firing already.
func (a *Alerter) Fire(ctx context.Context, al Alert) {
	a.mu.Lock()
	if _, ok := a.firing[al.Key]; ok {
		a.mu.Unlock()
		return
	}
	a.firing[al.Key] = al
	a.mu.Unlock()
	if err := a.db.FireAlert(ctx, metadb.Alert{Key: al.Key, Kind: al.Kind, Message: al.Message, Since: al.Since}); err != nil {
		a.log.Warn("alert not kept", "err", err)
	}
	a.log.Warn("alert", "kind", al.Kind, "message", al.Message)
	a.send(ctx, "firing", al, al.Message)
}

// Clear sends the end of the alert key, if it is firing.
func (a *Alerter) Clear(ctx context.Context, key, why string) {
	a.mu.Lock()
	al, ok := a.firing[key]
	delete(a.firing, key)
	a.mu.Unlock()
	if !ok {
		return
	}
	if err := a.db.ClearAlert(ctx, key); err != nil {
		a.log.Warn("alert not cleared in the database", "err", err)
	}
	a.log.Info("alert resolved", "kind", al.Kind, "message", why)
	a.send(ctx, "resolved", al, why)
}

func (a *Alerter) send(ctx context.Context, status string, al Alert, text string) {
	title := "ib alert: " + al.Kind
	line := "ib alert: " + text
	if status == "resolved" {
		title, line = "ib resolved: "+al.Kind, "ib resolved: "+al.Message+" — "+text
	}
	body := map[string]any{"alert": al.Kind, "key": al.Key, "status": status, "message": al.Message, "since": al.Since, "tags": al.Tags, "resolution": ""}
	if status == "resolved" {
		body["resolution"] = text
	}
	for _, t := range a.cfg.Targets {
		a.sender.Send(ctx, t, notify.Message{Title: title, Text: line, Urgent: status == "firing", JSON: body})
	}
}

// Run checks every minute until ctx ends.
func (a *Alerter) Run(ctx context.Context) {
	every := a.cfg.Every
	if every < 0 {
		return
	}
	if every == 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	led := true // New read the database
	for {
		switch lead := a.Leader == nil || a.Leader(); {
		case lead && led:
			a.Check(ctx)
		case lead:
			if err := a.reload(ctx); err == nil {
				led = true
				a.Check(ctx)
			}
		default:
			led = false
			if err := a.reload(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("alerts", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func size(n uint64) string {
	const gib = 1 << 30
	return fmt.Sprintf("%.1f GiB", float64(n)/gib)
}
