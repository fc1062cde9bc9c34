// Package hook runs the commands a backup runs before and after itself:
// a pre hook that may stop a node, take a checkpoint or mount a snapshot,
// and tell the backup what it did through lines on its stdout; and a post
// hook that undoes it, whatever became of the backup.
//
// A hook is one command line run through the system's shell (sh -c, or
// cmd /C on Windows) with the backup's facts in its environment. A hook
// that runs past its timeout is killed with every process it started.
package hook

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"ib/internal/manifest"
)

// DefaultTimeout bounds a hook that does not finish.
const DefaultTimeout = 10 * time.Minute

// Hook is one command and where its output goes.
type Hook struct {
	Command string
	Timeout time.Duration // DefaultTimeout when zero
	Stderr  io.Writer     // the hook's stderr, and its stdout lines that are not directives
}

// Facts are what a hook learns of its backup, as environment variables.
type Facts struct {
	Path string        // IB_PATH: the folder backed up
	Tags manifest.Tags // IB_TAGS: k=v,… sorted by key
	// For the post hook:
	Status string // IB_STATUS: ok, failed or interrupted
	ID     int64  // IB_BACKUP_ID, when a backup was made
}

// The statuses a post hook is told.
const (
	StatusOK          = "ok"
	StatusFailed      = "failed"
	StatusInterrupted = "interrupted"
)

// Directives are what a pre hook said on its stdout:
//
//	ib-label KEY=VALUE   metadata of this backup, outside its tag set
//	ib-tag KEY=VALUE     a tag added to the backup's tag set
//	ib-path DIR          back up DIR instead of the path given
type Directives struct {
	Labels manifest.Tags
	Tags   manifest.Tags
	Path   string
}

func (f Facts) env() []string {
	keys := make([]string, 0, len(f.Tags))
	for k := range f.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var tags []string
	for _, k := range keys {
		tags = append(tags, k+"="+f.Tags[k])
	}
	env := append(os.Environ(), "IB_PATH="+f.Path, "IB_TAGS="+strings.Join(tags, ","))
	if f.Status != "" {
		env = append(env, "IB_STATUS="+f.Status)
	}
	if f.ID > 0 {
		env = append(env, fmt.Sprintf("IB_BACKUP_ID=%d", f.ID))
	}
	return env
}

// Pre runs a pre hook and reads its directives. A hook that fails (exit
// status not 0, timeout) or says something it may not is an error.
func (h Hook) Pre(ctx context.Context, f Facts) (Directives, error) {
	var out bytes.Buffer
	if err := h.run(ctx, f, &out); err != nil {
		return Directives{}, fmt.Errorf("pre hook: %w", err)
	}
	d, err := parse(&out, h.stderr(), f.Path)
	if err != nil {
		return Directives{}, fmt.Errorf("pre hook: %w", err)
	}
	return d, nil
}

// Post runs a post hook. It runs even when ctx is cancelled (the backup
// was interrupted): only its own timeout stops it.
func (h Hook) Post(ctx context.Context, f Facts) error {
	var out bytes.Buffer
	err := h.run(context.WithoutCancel(ctx), f, &out)
	io.Copy(h.stderr(), &out)
	if err != nil {
		return fmt.Errorf("post hook: %w", err)
	}
	return nil
}

func (h Hook) stderr() io.Writer {
	if h.Stderr == nil {
		return io.Discard
	}
	return h.Stderr
}

func (h Hook) run(ctx context.Context, f Facts, stdout io.Writer) error {
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := shell(ctx, h.Command)
	cmd.Env = f.env()
	cmd.Stdout = stdout
	cmd.Stderr = h.stderr()
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%q did not finish within %s: killed", h.Command, timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("%q failed: %s", h.Command, ee.ProcessState)
	}
	if err != nil {
		return fmt.Errorf("%q: %w", h.Command, err)
	}
	return nil
}

// shell makes the command that runs line through the system's shell.
func shell(ctx context.Context, line string) *exec.Cmd {
	if runtime.GOOS == "windows" {
		return exec.CommandContext(ctx, "cmd", "/C", line)
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", line)
	killGroup(cmd)
	return cmd
}

// parse reads a pre hook's stdout: directive lines are taken, every other
// line goes to w.
func parse(out io.Reader, w io.Writer, base string) (Directives, error) {
	d := Directives{Labels: manifest.Tags{}, Tags: manifest.Tags{}}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		word, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch word {
		case "ib-label", "ib-tag":
			k, v, err := manifest.ParseTag(rest)
			if err != nil {
				return Directives{}, fmt.Errorf("%s: %w", word, err)
			}
			if word == "ib-label" {
				d.Labels[k] = v
			} else {
				d.Tags[k] = v
			}
		case "ib-path":
			if rest == "" {
				return Directives{}, errors.New("ib-path needs a folder")
			}
			if !filepath.IsAbs(rest) {
				rest = filepath.Join(base, rest)
			}
			d.Path = rest
		default:
			fmt.Fprintln(w, line)
		}
	}
	if err := sc.Err(); err != nil {
		return Directives{}, fmt.Errorf("reading its output: %w", err)
	}
	if err := d.Labels.CheckLabels(); err != nil {
		return Directives{}, err
	}
	return d, nil
}
