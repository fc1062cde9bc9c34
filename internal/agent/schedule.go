package agent

import (
	"fmt"
	"hash/fnv"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is when a set runs: a 5-field cron line (minute hour day month
// weekday, local time) or @hourly, @daily, @weekly, @monthly, @every D.
type Schedule struct {
	spec string
	s    cron.Schedule
}

// ParseSchedule parses a schedule.
func ParseSchedule(spec string) (*Schedule, error) {
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("%q: %v", spec, err)
	}
	if every, ok := s.(cron.ConstantDelaySchedule); ok && every.Delay < time.Second {
		return nil, fmt.Errorf("%q: at least @every 1s", spec)
	}
	return &Schedule{spec: spec, s: s}, nil
}

func (s *Schedule) String() string { return s.spec }

// offset is where in [0, jitter) this host's runs of set fall: fixed for
// a host and set (a restart does not move it), spread over hosts, so 500
// nodes on "@daily" do not all start at midnight.
func offset(host, set string, jitter time.Duration) time.Duration {
	if jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(host + "\x00" + set))
	return time.Duration(h.Sum64() % uint64(jitter))
}

// Next is the set's first run time after t.
func (s *Set) Next(t time.Time, host string) time.Time {
	off := offset(host, s.Name, s.jitter)
	return s.sched.s.Next(t.Add(-off)).Add(off)
}
