// Package agent runs scheduled backups of a node's folders: the sets of
// agent.toml, each a `ib backup create` run in a child process at its
// times, with a lock per set, a state file per set and notifications.
package agent

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"ib/internal/block"
	"ib/internal/encrypt"
	"ib/internal/manifest"
	"ib/internal/notify"
	"ib/internal/preset"
	"ib/internal/throttle"
)

// Config is agent.toml.
type Config struct {
	Sets   []Set    `toml:"set"`
	Notify []Notify `toml:"notify"`

	path string
}

// Set is one backup set: a folder, its tags and its schedule.
type Set struct {
	Name        string            `toml:"name"`
	Path        string            `toml:"path"`
	Tags        map[string]string `toml:"tags"`
	Labels      map[string]string `toml:"labels"`
	Schedule    string            `toml:"schedule"`
	Jitter      string            `toml:"jitter"`
	Level       string            `toml:"level"`
	Exclude     []string          `toml:"exclude"`
	Preset      string            `toml:"preset"`
	PreHook     string            `toml:"pre_hook"`
	PostHook    string            `toml:"post_hook"`
	HookTimeout string            `toml:"hook_timeout"`
	Server      string            `toml:"server"`
	// EncryptTo, Encrypt and EncryptAll are backup create's --encrypt-to,
	// --encrypt and --encrypt-all.
	EncryptTo  []string `toml:"encrypt_to"`
	Encrypt    []string `toml:"encrypt"`
	EncryptAll bool     `toml:"encrypt_all"`
	// LimitUpload is --limit-upload ("50MiB": bytes per second).
	LimitUpload string `toml:"limit_upload"`

	sched  *Schedule
	jitter time.Duration
}

// Notify is one notification target (a webhook or an email address) and
// the events it is sent on.
type Notify struct {
	notify.Target
	On []string `toml:"on"` // failure, recovered, success, warning
}

// Events a notification can be sent on.
const (
	EventFailure   = "failure"
	EventRecovered = "recovered"
	EventSuccess   = "success"
	EventWarning   = "warning"
)

var (
	events    = []string{EventFailure, EventRecovered, EventSuccess, EventWarning}
	setNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	defaultOn = []string{EventFailure, EventRecovered}
	maxJitter = 24 * time.Hour
)

// Path is the file the config was read from.
func (c *Config) Path() string { return c.path }

// Set returns the set named name.
func (c *Config) Set(name string) (*Set, bool) {
	for i := range c.Sets {
		if c.Sets[i].Name == name {
			return &c.Sets[i], true
		}
	}
	return nil, false
}

// Load reads and checks agent.toml: every error is reported, each with its
// line.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	return Parse(path, b)
}

// Parse checks the text of an agent config read from path.
func Parse(path string, b []byte) (*Config, error) {
	c := &Config{path: path}
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, decodeError(path, err)
	}
	loc := newLocator(b)
	var errs []string
	add := func(table string, i int, key, format string, args ...any) {
		errs = append(errs, fmt.Sprintf("%s:%d: %s", path, loc.line(table, i, key), fmt.Sprintf(format, args...)))
	}
	if len(c.Sets) == 0 {
		errs = append(errs, fmt.Sprintf("%s: no [[set]]: nothing to back up", path))
	}
	seen := map[string]bool{}
	for i := range c.Sets {
		s := &c.Sets[i]
		if seen[s.Name] {
			add("set", i, "name", "set %q is named twice", s.Name)
		}
		seen[s.Name] = true
		for _, e := range s.check() {
			add("set", i, e.key, "set %q: %s", s.Name, e.msg)
		}
	}
	for i := range c.Notify {
		for _, e := range c.Notify[i].check() {
			add("notify", i, e.key, "notify #%d: %s", i+1, e.msg)
		}
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return c, nil
}

// decodeError gives a TOML error its line.
func decodeError(path string, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var lines []string
		for _, e := range strict.Errors {
			row, _ := e.Position()
			lines = append(lines, fmt.Sprintf("%s:%d: unknown key %q", path, row, strings.Join(e.Key(), ".")))
		}
		return errors.New(strings.Join(lines, "\n"))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		return fmt.Errorf("%s:%d: %s", path, row, de.Error())
	}
	return fmt.Errorf("%s: %w", path, err)
}

type problem struct{ key, msg string }

func (s *Set) check() []problem {
	var ps []problem
	bad := func(key, format string, args ...any) { ps = append(ps, problem{key, fmt.Sprintf(format, args...)}) }
	if !setNameRe.MatchString(s.Name) {
		bad("name", "name: want 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	switch {
	case s.Path == "":
		bad("path", "path is missing")
	case !strings.HasPrefix(s.Path, "/") && !isWindowsAbs(s.Path):
		bad("path", "path %q: want an absolute path (the agent runs from any folder)", s.Path)
	}
	if len(s.Tags) == 0 {
		bad("tags", "tags are missing (e.g. tags = { node = \"tezos\", network = \"mainnet\" })")
	} else if err := manifest.Tags(s.Tags).Check(); err != nil {
		bad("tags", "tags: %v", err)
	}
	if err := manifest.Tags(s.Labels).CheckLabels(); err != nil {
		bad("labels", "labels: %v", err)
	}
	if s.Schedule == "" {
		bad("schedule", "schedule is missing (a cron line such as \"30 3 * * *\", or @daily, @hourly, @every 6h)")
	} else if sched, err := ParseSchedule(s.Schedule); err != nil {
		bad("schedule", "schedule: %v", err)
	} else {
		s.sched = sched
	}
	if s.Jitter != "" {
		d, err := time.ParseDuration(s.Jitter)
		if err != nil || d < 0 || d > maxJitter {
			bad("jitter", "jitter %q: want a duration from 0s to 24h, such as \"15m\"", s.Jitter)
		}
		s.jitter = d
	}
	if s.Level != "" {
		if _, err := block.ParseLevel(s.Level); err != nil {
			bad("level", "level: %v", err)
		}
	}
	if s.Preset != "" {
		if _, err := preset.Get(s.Preset); err != nil {
			bad("preset", "preset: %v", err)
		}
	}
	if s.HookTimeout != "" {
		if d, err := time.ParseDuration(s.HookTimeout); err != nil || d <= 0 {
			bad("hook_timeout", "hook_timeout %q: want a duration such as \"10m\"", s.HookTimeout)
		}
	}
	for _, x := range s.Exclude {
		if strings.TrimSpace(x) == "" || strings.ContainsAny(x, "\n\r") {
			bad("exclude", "exclude: %q is not a pattern", x)
		}
	}
	ps = append(ps, s.checkEncrypt()...)
	if _, err := throttle.ParseRate(s.LimitUpload); err != nil {
		bad("limit_upload", "limit_upload: %v", err)
	}
	if s.Server != "" {
		if err := notify.CheckURL(s.Server); err != nil {
			bad("server", "server: %v", err)
		}
	}
	return ps
}

// checkEncrypt checks the encryption keys of a set: files chosen and a
// recipient to encrypt them to, each recipient valid (a file is read).
func (s *Set) checkEncrypt() []problem {
	chosen := s.EncryptAll || len(s.Encrypt) > 0
	switch {
	case chosen && len(s.EncryptTo) == 0:
		key := "encrypt"
		if s.EncryptAll {
			key = "encrypt_all"
		}
		return []problem{{key, "encrypt/encrypt_all need encrypt_to (an age1… recipient or a recipients file; ib key generate makes one)"}}
	case !chosen && len(s.EncryptTo) > 0:
		return []problem{{"encrypt_to", "encrypt_to: say which files with encrypt = [\"PATTERN\"] or encrypt_all = true"}}
	}
	for _, x := range s.Encrypt {
		if strings.TrimSpace(x) == "" || strings.ContainsAny(x, "\n\r") {
			return []problem{{"encrypt", fmt.Sprintf("encrypt: %q is not a pattern", x)}}
		}
	}
	if _, err := encrypt.Recipients(s.EncryptTo); len(s.EncryptTo) > 0 && err != nil {
		return []problem{{"encrypt_to", fmt.Sprintf("encrypt_to: %v", err)}}
	}
	return nil
}

func (n *Notify) check() []problem {
	var ps []problem
	for key, msg := range n.Target.Check() {
		ps = append(ps, problem{key, msg})
	}
	for _, on := range n.On {
		if !slices.Contains(events, on) {
			ps = append(ps, problem{"on", fmt.Sprintf("on: %q: want some of %s", on, strings.Join(events, ", "))})
		}
	}
	slices.SortFunc(ps, func(a, b problem) int { return strings.Compare(a.key, b.key) })
	return ps
}

// Events returns the events n is sent on.
func (n *Notify) Events() []string {
	if len(n.On) == 0 {
		return defaultOn
	}
	return n.On
}

func isWindowsAbs(p string) bool {
	return len(p) > 2 && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}
