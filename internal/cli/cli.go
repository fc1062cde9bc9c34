// Package cli holds what every ib command shares: its output streams, the
// mapping of errors to exit codes (0 ok, 1 failure, 2 usage), tag flags,
// and the client settings resolved from flags, environment and config file.
package cli

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"ib/internal/apiclient"
	"ib/internal/config"
	"ib/internal/lock"
	"ib/internal/manifest"
	"ib/internal/throttle"
)

// Env is the world a command runs in.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	ConfigFile     string // --config
}

// Interactive reports whether a person can answer a question: standard
// input and standard error are terminals.
func (e *Env) Interactive() bool {
	f, ok := e.Stdin.(*os.File)
	return ok && term.IsTerminal(int(f.Fd())) && IsTerminal(e.Stderr)
}

// Confirm asks what on the terminal and wants "y" or "yes"; yes skips the
// question; off a terminal the command needs yes (a script says so
// explicitly, a typo in it never deletes by default).
func (e *Env) Confirm(yes bool, what string) error {
	if yes {
		return nil
	}
	if !e.Interactive() {
		return Usagef("%s: not on a terminal, so pass --yes to confirm", what)
	}
	fmt.Fprintf(e.Stderr, "%s? [y/N] ", what)
	line, _ := bufio.NewReader(e.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errors.New("cancelled: nothing was deleted")
}

// UsageError is a mistake in the command line: exit status 2.
type UsageError struct{ Err error }

func (u UsageError) Error() string { return u.Err.Error() }
func (u UsageError) Unwrap() error { return u.Err }

// Usagef returns a usage error.
func Usagef(format string, args ...any) error {
	return UsageError{fmt.Errorf(format, args...)}
}

// Exit is an error that sets the exit status itself; with a nil Err the
// command prints nothing more (diff's "differences found" is exit 1).
type Exit struct {
	Code int
	Err  error
}

func (e Exit) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}
func (e Exit) Unwrap() error { return e.Err }

// ErrInconsistent reports a backup that was created but holds files that
// kept changing while read: exit status 3.
var ErrInconsistent = errors.New("backup created, but some files may be inconsistent")

// ExitCode maps an error to the exit status: 0 ok, 1 failure, 2 usage,
// 3 backup created with files that changed while read, 4 another run holds
// the lock.
func ExitCode(err error) int {
	var u UsageError
	var ex Exit
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ex):
		return ex.Code
	case errors.As(err, &u):
		return 2
	case errors.Is(err, ErrInconsistent):
		return 3
	case errors.Is(err, lock.ErrLocked):
		return 4
	}
	return 1
}

// Args checks the number of positional arguments, as a usage error.
func Args(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min || len(args) > max {
			if min == max {
				return Usagef("%s takes %d argument(s), got %d (see --help)", cmd.CommandPath(), min, len(args))
			}
			return Usagef("%s takes %d to %d arguments, got %d (see --help)", cmd.CommandPath(), min, max, len(args))
		}
		return nil
	}
}

// TagsAnnotation marks commands that take arbitrary --KEY=VALUE tags.
const TagsAnnotation = "ib-tags"

// RewriteTags turns every "--KEY=VALUE" whose KEY is not a flag of the
// command it is given to into "--tag KEY=VALUE", for the commands marked
// with TagsAnnotation. A KEY that looks like a mistyped flag (--levl=fast)
// is refused instead: it would make a new tag set and a full re-read.
func RewriteTags(root *cobra.Command, args []string) ([]string, error) {
	c, _, err := root.Find(args)
	if err != nil || c.Annotations[TagsAnnotation] == "" {
		return args, nil
	}
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...), nil
		}
		if name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && strings.HasPrefix(a, "--") && name != "" {
			if c.Flags().Lookup(name) == nil && c.InheritedFlags().Lookup(name) == nil {
				if near := nearFlag(c, name); near != "" {
					return nil, Usagef("unknown flag --%s (did you mean --%s?); a tag named %s needs --tag %s=%s", name, near, name, name, value)
				}
				out = append(out, "--tag", a[2:])
				continue
			}
		}
		out = append(out, a)
	}
	return out, nil
}

// nearFlag returns the command's flag that name looks like a typo of: a
// prefix of it (--serv), or one edit away (two for names over 5 letters).
func nearFlag(c *cobra.Command, name string) string {
	limit := 1
	if len(name) > 5 {
		limit = 2
	}
	best := ""
	visit := func(f *pflag.Flag) {
		if best != "" || f.Hidden {
			return
		}
		if (len(name) >= 3 && strings.HasPrefix(f.Name, name)) || editDistance(name, f.Name) <= limit {
			best = f.Name
		}
	}
	c.Flags().VisitAll(visit)
	c.InheritedFlags().VisitAll(visit)
	return best
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ParseTags parses KEY=VALUE pairs; a key given twice is an error.
func ParseTags(pairs []string) (manifest.Tags, error) {
	tags := manifest.Tags{}
	for _, p := range pairs {
		k, v, err := manifest.ParseTag(p)
		if err != nil {
			return nil, UsageError{err}
		}
		if _, dup := tags[k]; dup {
			return nil, Usagef("tag %q given twice", k)
		}
		tags[k] = v
	}
	return tags, nil
}

// Client settings, resolved: flags over environment over the config file.
type Client struct {
	Server string
	Token  string
	CACert string
	Jobs   int
	RJobs  int
	// Backups are the client config's [[backup]] tables.
	Backups config.Client
	// Identity is the config's age identity file, if any.
	Identity string
	// LimitUp and LimitDown are bytes per second (0: no limit).
	LimitUp, LimitDown int64
}

// SetLimits takes --limit-upload and --limit-download over the config's
// limits ("" leaves a limit as it is).
func (c *Client) SetLimits(up, down string) error {
	for _, l := range []struct {
		flag, v string
		to      *int64
	}{{"--limit-upload", up, &c.LimitUp}, {"--limit-download", down, &c.LimitDown}} {
		if l.v == "" {
			continue
		}
		n, err := throttle.ParseRate(l.v)
		if err != nil {
			return Usagef("%s: %v", l.flag, err)
		}
		*l.to = n
	}
	return nil
}

// ResolveClient reads the client config and applies env and flags. The
// config's token is the one kept for the server resolved: a --server or
// IB_SERVER naming another server gets no token from the file.
func (e *Env) ResolveClient(serverFlag, tokenFlag, caFlag string) (Client, error) {
	path, err := config.ClientPath(e.ConfigFile)
	if err != nil {
		return Client{}, err
	}
	f, migrated, err := config.LoadClient(path)
	if err != nil {
		return Client{}, err
	}
	if migrated {
		// The old single-token file: keep it in its new form (a file we
		// cannot write only misses the migration).
		config.Save(path, f)
	}
	c := Client{Server: f.Server, Jobs: f.Jobs, RJobs: f.RestoreJobs, Backups: config.Client{Backups: f.Backups}, Identity: f.Identity}
	if c.LimitUp, err = throttle.ParseRate(f.LimitUpload); err != nil {
		return Client{}, Usagef("%s: limit_upload: %v", path, err)
	}
	if c.LimitDown, err = throttle.ParseRate(f.LimitDownload); err != nil {
		return Client{}, Usagef("%s: limit_download: %v", path, err)
	}
	if v := e.Getenv("IB_SERVER"); v != "" {
		c.Server = v
	}
	if serverFlag != "" {
		c.Server = serverFlag
	}
	if c.Server == "" {
		return Client{}, Usagef("no server: run `ib login URL --token TOKEN`, or pass --server or set IB_SERVER")
	}
	kept := f.For(c.Server)
	c.Token = kept.Token
	c.CACert = cmp.Or(kept.CACert, f.CACert)
	if v := e.Getenv("IB_CA_CERT"); v != "" {
		c.CACert = v
	}
	if caFlag != "" {
		c.CACert = caFlag
	}
	if v := e.Getenv("IB_TOKEN"); v != "" {
		c.Token = v
	}
	if tokenFlag != "" {
		c.Token = tokenFlag
	}
	return c, nil
}

// APIClient makes the HTTP client, logging retries on log.
func (c Client) APIClient(log *slog.Logger) (*apiclient.Client, error) {
	api, err := apiclient.New(c.Server, c.Token)
	if err != nil {
		return nil, UsageError{err}
	}
	if c.CACert != "" {
		if err := api.TrustCA(c.CACert); err != nil {
			return nil, UsageError{err}
		}
	}
	api.OnRetry = func(op string, err error, wait time.Duration) {
		log.Debug("retrying", "op", op, "err", err, "in", wait.Round(time.Millisecond))
	}
	api.OnWarn = func(msg string) { log.Warn(msg) }
	api.Upload, api.Download = throttle.New(c.LimitUp), throttle.New(c.LimitDown)
	return api, nil
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Logger logs to w as text at the given level.
func Logger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// Group makes a command that only holds subcommands refuse unknown ones
// (cobra would print help and exit 0).
func Group(c *cobra.Command) *cobra.Command {
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			if c.SuggestionsMinimumDistance <= 0 {
				c.SuggestionsMinimumDistance = 2
			}
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				return Usagef("unknown command %q for %q (did you mean %q?)", args[0], c.CommandPath(), s[0])
			}
			return Usagef("unknown command %q for %q (see --help)", args[0], c.CommandPath())
		}
		return c.Help()
	}
	return c
}

// NewPassphrase is Passphrase for a passphrase to encrypt with: on a
// terminal it is asked twice, and must match.
func NewPassphrase(env *Env, envVar, prompt string) func() (string, error) {
	ask := Passphrase(env, envVar, prompt)
	return func() (string, error) {
		p, err := ask()
		if err != nil || env.Getenv(envVar) != "" {
			return p, err
		}
		again, err := Passphrase(env, envVar, "again")()
		if err != nil {
			return "", err
		}
		if again != p {
			return "", errors.New("the passphrases do not match")
		}
		return p, nil
	}
}

// Passphrase returns how to get a passphrase: the variable envVar, else a
// prompt on the terminal (echo off).
func Passphrase(env *Env, envVar, prompt string) func() (string, error) {
	return func() (string, error) {
		if p := env.Getenv(envVar); p != "" {
			return p, nil
		}
		f, ok := env.Stdin.(*os.File)
		if !ok || !env.Interactive() {
			return "", fmt.Errorf("a passphrase is needed: set %s or run on a terminal", envVar)
		}
		fmt.Fprintf(env.Stderr, "%s: ", prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(env.Stderr)
		return string(b), err
	}
}
