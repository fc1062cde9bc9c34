package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"ib/internal/backup"
	"ib/internal/cli"
	"ib/internal/config"
	"ib/internal/hook"
	"ib/internal/ignore"
	"ib/internal/manifest"
	"ib/internal/preset"
	"ib/internal/units"
)

// liveFlags are backup create's flags for backing up a running node.
type liveFlags struct {
	preHook, postHook string
	hookTimeout       string
	labels            []string
	excludes          []string
	oneFS             bool
	changeRetries     int
	onChange          string
	preset            string
}

func (l *liveFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&l.preHook, "pre-hook", "", "run CMD (sh -c) before the backup; its stdout may say ib-label K=V, ib-tag K=V, ib-path DIR")
	f.StringVar(&l.postHook, "post-hook", "", "run CMD (sh -c) after the backup, whatever became of it (IB_STATUS, IB_BACKUP_ID)")
	f.StringVar(&l.hookTimeout, "hook-timeout", "10m", "kill a hook that runs longer")
	f.StringArrayVar(&l.labels, "label", nil, "a KEY=VALUE label of this backup (shown, not part of its tag set; repeatable)")
	f.StringArrayVar(&l.excludes, "exclude", nil, "leave out paths matching PATTERN (gitignore syntax, beside the ignore files; repeatable)")
	f.BoolVar(&l.oneFS, "one-file-system", false, "do not descend into other file systems (mount points are kept, empty)")
	f.IntVar(&l.changeRetries, "change-retries", 3, "read a file that changed while read again up to N times, then store it as last read and exit 3")
	f.StringVar(&l.onChange, "on-change", "warn", "a file still changing after the retries: warn (exit 3) or fail (exit 1, nothing committed)")
	f.StringVar(&l.preset, "preset", "", "node preset: "+strings.Join(preset.Names(), ", ")+" (see `ib backup presets`)")
	c.RegisterFlagCompletionFunc("preset", cobra.FixedCompletions(preset.Names(), cobra.ShellCompDirectiveNoFileComp))
	c.RegisterFlagCompletionFunc("on-change", cobra.FixedCompletions([]string{"warn", "fail"}, cobra.ShellCompDirectiveNoFileComp))
}

// livePlan is the live-capture part of one backup create: flags merged
// over the client config's [[backup]] table for its tags, and checked.
type livePlan struct {
	pre, post    hook.Hook
	labels       manifest.Tags
	excludes     []*ignore.Pattern
	userExcludes []*ignore.Pattern // --exclude and the table's
	preset       *preset.Preset
	oneFS        bool
	retries      int
	failOnChange bool
}

// resolve merges the flags over the config table and checks them all.
func (l *liveFlags) resolve(c *cobra.Command, cfg config.BackupSettings, stderr io.Writer) (*livePlan, error) {
	fl := c.Flags()
	pick := func(flag, flagVal, cfgVal string) string {
		if fl.Changed(flag) || cfgVal == "" {
			return flagVal
		}
		return cfgVal
	}
	p := &livePlan{labels: manifest.Tags{}}
	timeout, err := units.ParseDuration(pick("hook-timeout", l.hookTimeout, cfg.HookTimeout))
	if err != nil || timeout <= 0 {
		return nil, cli.Usagef("invalid --hook-timeout %q: want a duration such as 10m", pick("hook-timeout", l.hookTimeout, cfg.HookTimeout))
	}
	p.pre = hook.Hook{Command: pick("pre-hook", l.preHook, cfg.PreHook), Timeout: timeout, Stderr: stderr}
	p.post = hook.Hook{Command: pick("post-hook", l.postHook, cfg.PostHook), Timeout: timeout, Stderr: stderr}
	for _, kv := range l.labels {
		k, v, err := manifest.ParseTag(kv)
		if err != nil {
			return nil, cli.UsageError{Err: fmt.Errorf("--label: %w", err)}
		}
		p.labels[k] = v
	}
	if name := pick("preset", l.preset, cfg.Preset); name != "" {
		ps, err := preset.Get(name)
		if err != nil {
			return nil, cli.UsageError{Err: fmt.Errorf("--preset: %w", err)}
		}
		p.preset = &ps
		p.excludes = ignore.Excludes("preset "+ps.Name, ps.Exclude)
	}
	p.userExcludes = ignore.Excludes("exclude", append(cfg.Exclude, l.excludes...))
	p.excludes = append(p.excludes, p.userExcludes...)
	p.oneFS = l.oneFS || cfg.OneFileSystem
	p.retries = l.changeRetries
	if !fl.Changed("change-retries") && cfg.ChangeRetries != nil {
		p.retries = *cfg.ChangeRetries
	}
	if p.retries < 0 || p.retries > 100 {
		return nil, cli.Usagef("invalid --change-retries %d: want 0 to 100", p.retries)
	}
	switch pick("on-change", l.onChange, cfg.OnChange) {
	case "warn":
	case "fail":
		p.failOnChange = true
	default:
		return nil, cli.Usagef("invalid --on-change %q: want warn or fail", pick("on-change", l.onChange, cfg.OnChange))
	}
	return p, nil
}

// options sets the engine's options of the plan (the labels and tags come
// after the pre hook: see runHooked).
func (p *livePlan) options(o *backup.Options) {
	o.OneFileSystem = p.oneFS
	o.ChangeRetries = p.retries
	if p.retries == 0 {
		o.ChangeRetries = -1
	}
	o.FailOnChange = p.failOnChange
}

// prepare runs the pre hook and takes in what it said, and the preset's
// labels: the path to back up and the tags may change. The caller runs
// finish afterwards whenever prepare ran the pre hook, even if it failed.
func (p *livePlan) prepare(ctx context.Context, path string, tags manifest.Tags) (string, manifest.Tags, error) {
	if p.pre.Command != "" {
		abs, _ := filepath.Abs(path)
		d, err := p.pre.Pre(ctx, hook.Facts{Path: abs, Tags: tags})
		if err != nil {
			return "", nil, err
		}
		if len(d.Tags) > 0 {
			tags = maps.Clone(tags)
			maps.Copy(tags, d.Tags)
		}
		for k, v := range d.Labels {
			if _, set := p.labels[k]; !set { // --label wins
				p.labels[k] = v
			}
		}
		if d.Path != "" {
			path = d.Path
		}
	}
	if p.preset != nil {
		for k, v := range p.preset.ReadLabels(path) {
			if _, set := p.labels[k]; !set {
				p.labels[k] = v
			}
		}
		if _, set := p.labels["preset"]; !set {
			p.labels["preset"] = p.preset.Name // restore reads its protected paths from it
		}
	}
	return path, tags, p.labels.CheckLabels()
}

// finish runs the post hook with the backup's outcome.
func (p *livePlan) finish(ctx context.Context, path string, tags manifest.Tags, id int64, err error) error {
	if p.post.Command == "" {
		return nil
	}
	status := hook.StatusOK
	switch {
	case ctx.Err() != nil:
		status = hook.StatusInterrupted
	case err != nil && !errors.Is(err, cli.ErrInconsistent):
		status = hook.StatusFailed
	}
	abs, _ := filepath.Abs(path)
	return p.post.Post(ctx, hook.Facts{Path: abs, Tags: tags, Status: status, ID: id})
}

// warnChanged lists the files stored while they kept changing, and
// returns the error that makes the command exit 3.
func warnChanged(w io.Writer, res backup.Result) error {
	if res.ChangedCount == 0 {
		return nil
	}
	fmt.Fprintf(w, "WARNING: %d file(s) kept changing while read and are stored as last read; they may be inconsistent:\n", res.ChangedCount)
	for i, p := range res.Changed {
		if i == 10 {
			fmt.Fprintf(w, "  … and %d more\n", res.ChangedCount-10)
			break
		}
		fmt.Fprintf(w, "  %s\n", p)
	}
	fmt.Fprintln(w, "A consistent backup of a running node needs a pre hook (a checkpoint, a snapshot, or a stop): see the README, \"Backing up a running node\".")
	return fmt.Errorf("backup %d: %w (%d file(s) changed while read)", res.ID, cli.ErrInconsistent, res.ChangedCount)
}

// liveDBWarner warns once, as the walk meets the first database open by a
// running process, when no pre hook makes the backup consistent.
func liveDBWarner(w io.Writer) func(backup.LiveDB) {
	warned := false
	return func(l backup.LiveDB) {
		if warned {
			return
		}
		warned = true
		fmt.Fprintf(w, "warning: the %s database in %s is open by a running process: a copy taken while it writes may not open. "+
			"Use a pre hook that takes a checkpoint or a snapshot, or stops the node (README: \"Backing up a running node\")\n", l.Kind, l.Dir)
	}
}

// secrets are the preset's secret files, when there is a preset.
func (p *livePlan) secrets() []string {
	if p.preset == nil {
		return nil
	}
	return p.preset.Secrets
}

// encryptSecrets keeps the preset's secrets in the backup (they are
// encrypted) instead of leaving them out.
func (p *livePlan) encryptSecrets() {
	if p.preset == nil {
		return
	}
	kept := slices.DeleteFunc(slices.Clone(p.preset.Exclude), func(x string) bool { return slices.Contains(p.preset.Secrets, x) })
	p.excludes = append(ignore.Excludes("preset "+p.preset.Name, kept), p.userExcludes...)
}
