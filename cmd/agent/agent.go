// Package agent is `ib agent`: scheduled backups of this node's folders
// (the sets of agent.toml), as a daemon or from cron.
package agent

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"ib/internal/agent"
	"ib/internal/cli"
	"ib/internal/config"
	"ib/internal/notify"
	"ib/internal/progress"
)

//go:embed example.toml
var example []byte

// Exit codes of `agent run --once`.
const (
	exitFailed       = 1
	exitInconsistent = 3
	exitLocked       = 4
)

type common struct {
	env      *cli.Env
	stateDir string
}

// New returns the agent command group.
func New(env *cli.Env) *cobra.Command {
	o := &common{env: env}
	c := cli.Group(&cobra.Command{
		Use:   "agent",
		Short: "Run scheduled backups of this node's folders (agent.toml)",
		Long: `The agent backs up the sets of agent.toml (in the client config dir; --config names
another) at their times: "ib agent run" as a daemon (systemd: deploy/ib-agent.service), or
"ib agent run --once" from cron. "ib agent init" writes a commented example.`,
	})
	c.PersistentFlags().StringVar(&o.stateDir, "state-dir", "", "where the sets' state and lock files are (default: $STATE_DIRECTORY, then <user state dir>/ib/agent)")
	c.AddCommand(newInit(o), newRun(o), newStatus(o), newCheck(o))
	return c
}

func (o *common) configPath() (string, error) {
	if o.env.ConfigFile != "" {
		return o.env.ConfigFile, nil
	}
	d, err := config.Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "agent.toml"), nil
}

func (o *common) load() (*agent.Config, error) {
	p, err := o.configPath()
	if err != nil {
		return nil, err
	}
	cfg, err := agent.Load(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (write an example with: ib agent init)", err)
	}
	if err != nil && strings.Contains(err.Error(), "\n") {
		// Every error on its line, as a compiler would.
		fmt.Fprintf(o.env.Stderr, "ib: %s is not valid:\n%s\n", p, err)
		return nil, cli.Exit{Code: 2}
	}
	if err != nil {
		return nil, cli.UsageError{Err: err}
	}
	return cfg, nil
}

// state is the state dir: --state-dir, $STATE_DIRECTORY (systemd's
// StateDirectory=), $XDG_STATE_HOME/ib/agent, ~/.local/state/ib/agent.
func (o *common) state() (string, error) {
	switch {
	case o.stateDir != "":
		return o.stateDir, nil
	case o.env.Getenv("STATE_DIRECTORY") != "":
		return strings.Split(o.env.Getenv("STATE_DIRECTORY"), ":")[0], nil
	case o.env.Getenv("XDG_STATE_HOME") != "":
		return filepath.Join(o.env.Getenv("XDG_STATE_HOME"), "ib", "agent"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("state dir: %w (use --state-dir)", err)
	}
	return filepath.Join(home, ".local", "state", "ib", "agent"), nil
}

func newInit(o *common) *cobra.Command {
	var force bool
	c := &cobra.Command{
		Use:   "init",
		Short: "Write a commented example agent.toml",
		Args:  cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			p, err := o.configPath()
			if err != nil {
				return err
			}
			if _, err := os.Stat(p); err == nil && !force {
				return cli.Usagef("%s exists (--force replaces it)", p)
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(p, example, 0o600); err != nil {
				return err
			}
			fmt.Fprintf(o.env.Stdout, "wrote %s: edit its [[set]], then run: ib agent check && ib agent run --once\n", p)
			return nil
		},
	}
	c.Flags().BoolVar(&force, "force", false, "replace an existing file")
	return c
}

func newCheck(o *common) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check agent.toml and print each set's next run",
		Args:  cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := o.load()
			if err != nil {
				return err
			}
			host, _ := os.Hostname()
			now := time.Now()
			for i := range cfg.Sets {
				s := &cfg.Sets[i]
				fmt.Fprintf(o.env.Stdout, "%s: %s every %q, next %s\n", s.Name, s.Path, s.Schedule, s.Next(now, host).Format(time.RFC3339))
			}
			return nil
		},
	}
}

func (o *common) runner(cfg *agent.Config, log *slog.Logger) (*agent.Runner, error) {
	dir, err := o.state()
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("agent: the ib binary: %w", err)
	}
	host, _ := os.Hostname()
	return &agent.Runner{Exe: exe, StateDir: dir, Host: host, Log: log,
		Notify: &agent.Notifier{Targets: cfg.Notify, Sender: notify.Sender{Log: log, Backoff: backoff(o.env)}}}, nil
}

// backoff is the first wait between notification attempts
// (IB_NOTIFY_BACKOFF, for tests; default 2 s).
func backoff(env *cli.Env) time.Duration {
	d, _ := time.ParseDuration(env.Getenv("IB_NOTIFY_BACKOFF"))
	return d
}

func newRun(o *common) *cobra.Command {
	var once bool
	c := &cobra.Command{
		Use:   "run [--once [SET...]]",
		Short: "Run the sets at their times (a daemon), or once now (--once, for cron)",
		Long: `Without --once: a daemon in the foreground, logging to stderr; SIGHUP reads the config
again, SIGTERM stops it (a running backup is interrupted as by Ctrl-C and runs its post hook).
A set never runs twice at once; a run missed while the machine was off or asleep runs once
when it is back.

With --once: runs the named sets (default: all) now, one after another, and exits. Prints
nothing on success. Exit status: 0 all ok, 1 a set failed, 3 a backup was committed with files
that changed while read, 4 a set was already running (its lock is held).`,
		RunE: func(c *cobra.Command, args []string) error {
			if !once && len(args) > 0 {
				return cli.Usagef("sets are named with --once only")
			}
			cfg, err := o.load()
			if err != nil {
				return err
			}
			if once {
				return o.runOnce(c.Context(), cfg, args)
			}
			return o.daemon(c.Context(), cfg)
		},
	}
	c.Flags().BoolVar(&once, "once", false, "run the sets now and exit (cron mode)")
	return c
}

func (o *common) runOnce(ctx context.Context, cfg *agent.Config, names []string) error {
	sets := cfg.Sets
	if len(names) > 0 {
		sets = nil
		for _, n := range names {
			s, ok := cfg.Set(n)
			if !ok {
				return cli.Usagef("no set %q in %s", n, cfg.Path())
			}
			sets = append(sets, *s)
		}
	}
	log := slog.New(slog.NewTextHandler(o.env.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	r, err := o.runner(cfg, log)
	if err != nil {
		return err
	}
	code := 0
	for i := range sets {
		run := r.Run(ctx, &sets[i])
		switch run.Status {
		case agent.StatusFailed:
			fmt.Fprintf(o.env.Stderr, "ib agent: set %s failed after %s: %s\n", sets[i].Name, run.Duration().Round(time.Second), run.Error)
			code = exitFailed
		case agent.StatusLocked:
			fmt.Fprintf(o.env.Stderr, "ib agent: %s: skipped\n", run.Error)
			if code != exitFailed {
				code = exitLocked
			}
		case agent.StatusWarning:
			fmt.Fprintf(o.env.Stderr, "ib agent: set %s: backup %d committed with warnings: %s\n", sets[i].Name, run.BackupID, run.Error)
			if code == 0 {
				code = exitInconsistent
			}
		}
	}
	r.Notify.Wait()
	if code != 0 {
		return cli.Exit{Code: code}
	}
	return nil
}

func (o *common) daemon(ctx context.Context, cfg *agent.Config) error {
	log := slog.New(slog.NewTextHandler(o.env.Stderr, nil))
	r, err := o.runner(cfg, log)
	if err != nil {
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	log.Info("agent started", "config", cfg.Path(), "state_dir", r.StateDir, "sets", len(cfg.Sets))
	d := &agent.Daemon{Runner: r, Load: o.load}
	err = d.Run(ctx, cfg, reload)
	r.Notify.Wait()
	return err
}

// setStatus is one set in `agent status --json`.
type setStatus struct {
	Set      string            `json:"set"`
	Path     string            `json:"path"`
	Tags     map[string]string `json:"tags"`
	Schedule string            `json:"schedule"`
	Next     time.Time         `json:"next_run"`
	agent.State
}

func newStatus(o *common) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status",
		Short: "Each set's last run, next run and last error",
		Args:  cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := o.load()
			if err != nil {
				return err
			}
			dir, err := o.state()
			if err != nil {
				return err
			}
			host, _ := os.Hostname()
			now := time.Now()
			var all []setStatus
			for i := range cfg.Sets {
				s := &cfg.Sets[i]
				st, err := agent.LoadState(dir, s.Name)
				if err != nil {
					return err
				}
				all = append(all, setStatus{Set: s.Name, Path: s.Path, Tags: s.Tags, Schedule: s.Schedule, Next: agent.NextRun(s, st, now, host), State: st})
			}
			if asJSON {
				enc := json.NewEncoder(o.env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			return printStatus(o, all)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printStatus(o *common, all []setStatus) error {
	w := tabwriter.NewWriter(o.env.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SET\tLAST RUN\tRESULT\tBACKUP\tTOOK\tSIZE\tNEXT RUN")
	for _, s := range all {
		last, result, id, took, size := "never", "-", "-", "-", "-"
		if r := s.Last; r != nil {
			last, result = r.Start.Local().Format("2006-01-02 15:04:05"), r.Status
			if r.BackupID != 0 {
				id = fmt.Sprint(r.BackupID)
				size = progress.Size(r.Bytes)
			}
			took = r.Duration().Round(time.Second).String()
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Set, last, result, id, took, size, s.Next.Local().Format("2006-01-02 15:04:05"))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, s := range all {
		if s.LastError != "" {
			fmt.Fprintf(o.env.Stdout, "%s: last error (%d failed runs in a row): %s\n", s.Set, s.Failures, s.LastError)
		}
	}
	return nil
}
