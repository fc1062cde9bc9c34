package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"ib/internal/lock"
)

// ErrLocked is a set whose lock another run holds.
var ErrLocked = lock.ErrLocked

// Runner runs sets, one `ib backup create` child process per run.
type Runner struct {
	Exe      string // the ib binary the children run
	StateDir string // state and lock files, one of each per set
	Host     string // for jitter and notifications
	Log      *slog.Logger
	Notify   *Notifier // nil sends nothing
	// Env is added to the children's environment.
	Env []string
}

// stopGrace is how long a child interrupted by a stop (SIGTERM to the
// agent) has to finish its post hook before it is killed.
const stopGrace = 15 * time.Minute

// Run runs set once, holding its lock, records the run in the set's state
// and notifies. A set whose lock is held returns a Run with StatusLocked
// and records nothing.
func (r *Runner) Run(ctx context.Context, set *Set) Run {
	held, err := lock.Try(lockPath(r.StateDir, set.Name))
	if err != nil {
		now := time.Now()
		status := StatusFailed
		if errors.Is(err, lock.ErrLocked) {
			status = StatusLocked
		}
		return Run{Start: now, End: now, Status: status, ExitCode: 4, Error: fmt.Sprintf("set %s: %v", set.Name, err)}
	}
	defer held.Release()
	st, err := LoadState(r.StateDir, set.Name)
	if err != nil {
		r.Log.Warn("set state unreadable: starting afresh", "set", set.Name, "err", err)
		st = State{Set: set.Name}
	}
	run := r.child(ctx, set)
	if run.Status == StatusLocked {
		r.Log.Warn("another backup of the set's tags runs: skipped", "set", set.Name)
		return run
	}
	failedBefore, err := st.record(r.StateDir, run)
	if err != nil {
		r.Log.Error("cannot record the run", "set", set.Name, "err", err)
	}
	lvl := slog.LevelInfo
	if run.Status != StatusOK {
		lvl = slog.LevelWarn
	}
	r.Log.Log(ctx, lvl, "run finished", "set", set.Name, "status", run.Status, "backup", run.BackupID,
		"bytes", run.Bytes, "uploaded", run.UploadedBytes, "took", run.Duration().Round(time.Millisecond), "err", run.Error)
	if r.Notify != nil {
		r.Notify.Send(ctx, eventOf(run, failedBefore), set, run, r.Host)
	}
	return run
}

// eventOf names what a run is to the notifications.
func eventOf(run Run, failedBefore bool) string {
	switch {
	case run.Status == StatusFailed:
		return EventFailure
	case failedBefore:
		return EventRecovered
	case run.Status == StatusWarning:
		return EventWarning
	}
	return EventSuccess
}

// args are the child's command line.
func (set *Set) args() []string {
	a := []string{"backup", "create", "--json", "-q"}
	for _, k := range slices.Sorted(maps.Keys(set.Tags)) {
		a = append(a, "--tag", k+"="+set.Tags[k])
	}
	for _, k := range slices.Sorted(maps.Keys(set.Labels)) {
		a = append(a, "--label", k+"="+set.Labels[k])
	}
	opt := func(flag, v string) {
		if v != "" {
			a = append(a, flag, v)
		}
	}
	opt("--level", set.Level)
	opt("--preset", set.Preset)
	opt("--pre-hook", set.PreHook)
	opt("--post-hook", set.PostHook)
	opt("--hook-timeout", set.HookTimeout)
	opt("--server", set.Server)
	opt("--limit-upload", set.LimitUpload)
	for _, x := range set.Exclude {
		a = append(a, "--exclude", x)
	}
	for _, r := range set.EncryptTo {
		a = append(a, "--encrypt-to", r)
	}
	for _, x := range set.Encrypt {
		a = append(a, "--encrypt", x)
	}
	if set.EncryptAll {
		a = append(a, "--encrypt-all")
	}
	return append(a, "--", set.Path)
}

// child runs the backup and reads its result.
func (r *Runner) child(ctx context.Context, set *Set) Run {
	run := Run{Start: time.Now()}
	cmd := exec.CommandContext(ctx, r.Exe, set.args()...)
	cmd.Env = append(append(os.Environ(), "IB_AGENT_SET="+set.Name), r.Env...)
	var stdout bytes.Buffer
	stderr := &tail{max: 4 << 10}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	if runtime.GOOS != "windows" {
		// A stop interrupts the backup as Ctrl-C would: it stops cleanly
		// and runs its post hook.
		cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
		cmd.WaitDelay = stopGrace
	}
	err := cmd.Run()
	run.End = time.Now()
	run.ExitCode = cmd.ProcessState.ExitCode()
	var res struct {
		ID            int64 `json:"id"`
		Bytes         int64 `json:"bytes"`
		UploadedBytes int64 `json:"uploaded_bytes"`
		Files         int64 `json:"files"`
	}
	if json.Unmarshal(stdout.Bytes(), &res) == nil {
		run.BackupID, run.Bytes, run.UploadedBytes, run.Files = res.ID, res.Bytes, res.UploadedBytes, res.Files
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		run.Status = StatusOK
	case errors.As(err, &exit) && run.ExitCode == 4:
		run.Status = StatusLocked // another backup of these tags (ib backup create by hand)
		run.Error = fmt.Sprintf("set %s: %s", set.Name, stderr.summary())
	case errors.As(err, &exit) && run.ExitCode == 3 && run.BackupID != 0:
		run.Status = StatusWarning
		run.Error = stderr.summary()
	default:
		run.Status = StatusFailed
		run.Error = stderr.summary()
		if run.Error == "" {
			run.Error = err.Error()
		}
		if ctx.Err() != nil {
			run.Error = "stopped: " + run.Error
		}
	}
	return run
}

// tail keeps the last max bytes written to it.
type tail struct {
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

// summary is the child's error, short: its last lines that say "ib:" or
// "WARNING", else its last line.
func (t *tail) summary() string {
	lines := strings.Split(strings.TrimSpace(string(t.b)), "\n")
	var keep []string
	for _, l := range lines {
		if strings.HasPrefix(l, "ib: ") || strings.HasPrefix(l, "WARNING") || strings.HasPrefix(l, "warning") {
			keep = append(keep, strings.TrimPrefix(l, "ib: "))
		}
	}
	if len(keep) == 0 && len(lines) > 0 {
		keep = lines[len(lines)-1:]
	}
	if len(keep) > 5 {
		keep = keep[len(keep)-5:]
	}
	return strings.Join(keep, "; ")
}
