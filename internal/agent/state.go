package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Statuses of a run.
const (
	StatusOK      = "ok"
	StatusWarning = "warning" // committed, with files that changed while read (exit 3)
	StatusFailed  = "failed"
	StatusLocked  = "locked" // another run of the set held its lock
)

// Run is one run of a set.
type Run struct {
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	Status        string    `json:"status"`
	ExitCode      int       `json:"exit_code"`
	BackupID      int64     `json:"backup_id,omitempty"`
	Bytes         int64     `json:"bytes"`
	UploadedBytes int64     `json:"uploaded_bytes"`
	Files         int64     `json:"files"`
	Error         string    `json:"error,omitempty"`
}

// Duration is how long the run took.
func (r Run) Duration() time.Duration { return r.End.Sub(r.Start) }

// State is what the agent keeps about a set between runs (and processes:
// `agent run`, `agent run --once` and `agent status` share it).
type State struct {
	Set         string     `json:"set"`
	Last        *Run       `json:"last,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	Failures    int        `json:"consecutive_failures"`
}

func statePath(dir, set string) string { return filepath.Join(dir, set+".json") }
func lockPath(dir, set string) string  { return filepath.Join(dir, set+".lock") }

// LoadState reads a set's state; a set never run has an empty one.
func LoadState(dir, set string) (State, error) {
	st := State{Set: set}
	b, err := os.ReadFile(statePath(dir, set))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("agent state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return State{Set: set}, fmt.Errorf("agent state %s: %w", statePath(dir, set), err)
	}
	return st, nil
}

// record adds a finished run to the state and saves it; failed reports
// whether the run before this one had failed (for "recovered").
func (st *State) record(dir string, r Run) (failedBefore bool, err error) {
	failedBefore = st.Last != nil && st.Last.Status == StatusFailed
	st.Last = &r
	switch r.Status {
	case StatusOK, StatusWarning:
		end := r.End
		st.LastSuccess, st.Failures, st.LastError = &end, 0, ""
	case StatusFailed:
		st.Failures++
		st.LastError = r.Error
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return failedBefore, fmt.Errorf("agent state: %w", err)
	}
	tmp := statePath(dir, st.Set) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return failedBefore, fmt.Errorf("agent state: %w", err)
	}
	if err := os.Rename(tmp, statePath(dir, st.Set)); err != nil {
		return failedBefore, fmt.Errorf("agent state: %w", err)
	}
	return failedBefore, nil
}
