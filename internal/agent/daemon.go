package agent

import (
	"context"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// Daemon runs every set of its config at the set's times until stopped.
type Daemon struct {
	Runner *Runner
	// Load reads the config again (SIGHUP); a config that does not load
	// is logged and the running one kept.
	Load func() (*Config, error)
	Now  func() time.Time // default time.Now
	// Tick bounds each wait, so that a wall clock that jumped (the machine
	// slept) is seen within it (default 30 s).
	Tick time.Duration
}

// NextRun is when a set runs next, from its state: after its last run, or
// at once if that time passed unrun (the machine was off or asleep: one
// run, not one per missed time); from now when it never ran.
func NextRun(set *Set, st State, now time.Time, host string) time.Time {
	if st.Last == nil {
		return set.Next(now, host)
	}
	if due := set.Next(st.Last.Start, host); due.After(now) {
		return due
	}
	return now
}

type slot struct {
	set     *Set
	next    time.Time
	running bool
}

// Run schedules until ctx ends (SIGTERM), then interrupts the running
// backups (each stops as on Ctrl-C and runs its post hook) and waits for
// them. A value on reload reads the config again.
func (d *Daemon) Run(ctx context.Context, cfg *Config, reload <-chan struct{}) error {
	now := d.Now
	if now == nil {
		now = time.Now
	}
	tick := d.Tick
	if tick <= 0 {
		tick = 30 * time.Second
	}
	log := d.Runner.Log
	var mu sync.Mutex
	slots := map[string]*slot{}
	plan := func(cfg *Config) {
		mu.Lock()
		defer mu.Unlock()
		keep := map[string]*slot{}
		for i := range cfg.Sets {
			set := &cfg.Sets[i]
			if old, ok := slots[set.Name]; ok && old.running {
				old.set = set // takes effect after this run
				keep[set.Name] = old
				continue
			}
			st, _ := LoadState(d.Runner.StateDir, set.Name)
			keep[set.Name] = &slot{set: set, next: NextRun(set, st, now(), d.Runner.Host)}
			log.Info("set scheduled", "set", set.Name, "schedule", set.sched.String(), "next", keep[set.Name].next.Format(time.RFC3339))
		}
		slots = keep
	}
	plan(cfg)
	notifyReady()
	runCtx, stopRuns := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRuns()
	var wg sync.WaitGroup
	done := make(chan struct{}, 1)
	for {
		mu.Lock()
		t := now()
		wait := tick
		for _, s := range slots {
			if s.running {
				continue
			}
			if !s.next.After(t) {
				s.running = true
				wg.Add(1)
				go func(s *slot) {
					defer wg.Done()
					d.Runner.Run(runCtx, s.set)
					mu.Lock()
					s.running = false
					s.next = s.set.Next(now(), d.Runner.Host)
					mu.Unlock()
					select {
					case done <- struct{}{}:
					default:
					}
				}(s)
				continue
			}
			wait = min(wait, s.next.Sub(t))
		}
		mu.Unlock()
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			notifyStopping()
			log.Info("stopping: interrupting running backups and waiting for them")
			stopRuns()
			wg.Wait()
			return nil
		case <-reload:
			timer.Stop()
			c, err := d.Load()
			if err != nil {
				log.Error("config not reloaded; keeping the running one", "err", err)
				continue
			}
			log.Info("config reloaded", "sets", len(c.Sets))
			d.Runner.setNotify(c.Notify)
			plan(c)
		case <-done:
			timer.Stop()
		case <-timer.C:
		}
	}
}

func (r *Runner) setNotify(targets []Notify) {
	if r.Notify != nil {
		r.Notify.SetTargets(targets)
	}
}

// notifyReady tells systemd (Type=notify) that the agent runs, when it
// was started by one.
func notifyReady()    { sdNotify("READY=1") }
func notifyStopping() { sdNotify("STOPPING=1") }

func sdNotify(state string) {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return
	}
	if sock[0] == '@' {
		sock = "\x00" + sock[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		slog.Debug("sd_notify", "err", err)
		return
	}
	defer c.Close()
	c.Write([]byte(state))
}
