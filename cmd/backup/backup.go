// Package backup is `ib backup`: create, list, show, restore, delete.
package backup

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ib/internal/apiclient"
	"ib/internal/cli"
	"ib/internal/manifest"
	"ib/internal/progress"
)

// common are the flags every backup command has.
type common struct {
	env    *cli.Env
	server string
	token  string
	caCert string
	tags   []string
	quiet  bool
	debug  bool
	// limitUp and limitDown are --limit-upload and --limit-download.
	limitUp, limitDown string
}

// New returns the backup command group.
func New(env *cli.Env) *cobra.Command {
	o := &common{env: env}
	c := cli.Group(&cobra.Command{
		Use:   "backup",
		Short: "Create, list, show, restore and delete backups",
	})
	c.PersistentFlags().StringVar(&o.server, "server", "", "server URL (default: IB_SERVER, then the client config)")
	c.PersistentFlags().StringVar(&o.token, "token", "", "write token (default: IB_TOKEN, then the client config)")
	c.PersistentFlags().BoolVar(&o.debug, "debug", false, "log at debug level (retries of failed requests among them)")
	c.PersistentFlags().StringVar(&o.caCert, "ca-cert", "", "trust server certificates signed by this CA (PEM; default: IB_CA_CERT, then the client config)")
	c.PersistentFlags().StringVar(&o.limitUp, "limit-upload", "", "at most RATE bytes per second sent, over all workers (e.g. 50MiB; default: limit_upload in the client config, else none)")
	c.PersistentFlags().StringVar(&o.limitDown, "limit-download", "", "at most RATE bytes per second received, over all workers (e.g. 50MiB; default: limit_download in the client config, else none)")
	c.AddCommand(newCreate(o), newList(o), newShow(o), newRestore(o), newDelete(o), newPrune(o), newVerify(o), newPresets(o), newDiff(o), newCat(o))
	return c
}

// tagFlags adds --tag to a command that takes --KEY=VALUE tags.
func (o *common) tagFlags(c *cobra.Command) {
	c.Annotations = map[string]string{cli.TagsAnnotation: "true"}
	c.Flags().StringArrayVar(&o.tags, "tag", nil, "a KEY=VALUE tag (for keys that collide with a flag); any other --KEY=VALUE is a tag too")
	c.RegisterFlagCompletionFunc("tag", o.completeTag)
}

// completionList is the server's backups for a completion, which waits
// two seconds at most: a shell must not hang on a dead server.
func (o *common) completionList(ctx context.Context) ([]manifest.Summary, error) {
	api, _, err := o.client(false, quick)
	if err != nil {
		return nil, err
	}
	api.Retry = apiclient.Retry{Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond, MaxElapsed: 2 * time.Second}
	return api.List(ctx, nil)
}

// completeTag offers the KEY=VALUE pairs of the server's backups.
func (o *common) completeTag(c *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	list, err := o.completionList(c.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	seen := map[string]bool{}
	var out []cobra.Completion
	for _, b := range list {
		for k, v := range b.Tags {
			if kv := k + "=" + v; !seen[kv] {
				seen[kv] = true
				out = append(out, kv)
			}
		}
	}
	slices.Sort(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

func (o *common) log() *slog.Logger {
	if o.debug {
		return cli.Logger(o.env.Stderr, slog.LevelDebug)
	}
	return cli.Logger(o.env.Stderr, slog.LevelWarn)
}

// How long a command waits for a server that does not answer: a backup
// or a restore rides out a server restart; a question gives up soon.
const (
	patient = true
	quick   = false
)

// client resolves the server settings; write=true demands a token.
func (o *common) client(write, wait bool) (*apiclient.Client, cli.Client, error) {
	s, err := o.env.ResolveClient(o.server, o.token, o.caCert)
	if err != nil {
		return nil, s, err
	}
	if err := s.SetLimits(o.limitUp, o.limitDown); err != nil {
		return nil, s, err
	}
	if write && s.Token == "" {
		return nil, s, cli.Usagef("no write token for %s: run `ib login %s --token TOKEN` (the server prints it with `ib server token show`)", s.Server, s.Server)
	}
	api, err := s.APIClient(o.log())
	if err == nil && !wait {
		api.Retry = apiclient.QuickRetry
	}
	return api, s, err
}

// progress renders counters on stderr until the returned stop is called;
// stop(false) (a failure) draws no last line: the error says what happened.
func (o *common) progress(ctx context.Context, c *progress.Counters, verb string) (stop func(ok bool)) {
	if o.quiet {
		return func(bool) {}
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		progress.Render(pctx, o.env.Stderr, c, verb, cli.IsTerminal(o.env.Stderr), 5*time.Second)
		close(done)
	}()
	return func(ok bool) {
		if !ok {
			c.Failed.Store(true)
		}
		cancel()
		<-done
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, cli.Usagef("invalid backup ID %q: want a number as `ib backup list` shows", s)
	}
	return id, nil
}

// resolveID reads a backup's ID, or "latest" with the backup's tags. When no
// backup has exactly those tags, the error names the tag sets that include
// them and the command that would work.
func resolveID(ctx context.Context, api *apiclient.Client, arg string, tags manifest.Tags, verb string) (int64, error) {
	if arg != "latest" {
		if len(tags) > 0 {
			return 0, cli.Usagef("tags choose the latest backup: give either an ID or latest with tags")
		}
		return parseID(arg)
	}
	if len(tags) == 0 {
		return 0, cli.Usagef("latest needs the backup's tags, e.g. --node=tezos")
	}
	b, err := api.Latest(ctx, tags)
	if err == nil {
		return b.ID, nil
	}
	if !apiclient.IsNotFound(err) {
		return 0, err
	}
	list, lerr := api.List(ctx, tags)
	if lerr != nil || len(list) == 0 {
		return 0, fmt.Errorf("no backup has the tags %s on %s (`ib backup list` shows what it has)", tags, api.URL())
	}
	type set struct {
		tags   manifest.Tags
		n      int
		newest int64
	}
	var sets []*set
	seen := map[string]*set{}
	for _, b := range list { // newest first
		k := b.Tags.Canonical()
		if seen[k] == nil {
			seen[k] = &set{tags: b.Tags, newest: b.ID}
			sets = append(sets, seen[k])
		}
		seen[k].n++
	}
	var names []string
	for _, st := range sets {
		names = append(names, fmt.Sprintf("%s (%d backups, newest #%d)", st.tags, st.n, st.newest))
	}
	dest := ""
	if verb == "restore" {
		dest = " DEST"
	}
	return 0, fmt.Errorf("no backup has exactly the tags %s: latest takes a backup's whole tag set, and %d tag set(s) include these: %s; e.g. `ib backup %s latest %s%s`",
		tags, len(sets), strings.Join(names, "; "), verb, tagFlagsOf(sets[0].tags), dest)
}

// tagFlagsOf renders tags as the --KEY=VALUE flags that select them, quoted
// for a shell where needed.
func tagFlagsOf(t manifest.Tags) string {
	keys := slices.Sorted(maps.Keys(t))
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := t[k]
		if strings.ContainsAny(v, " \t'\"$`\\!*?[]{}()<>|&;#~") {
			v = "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
		}
		parts[i] = "--" + k + "=" + v
	}
	return strings.Join(parts, " ")
}

// completeID offers "latest" and the server's backup IDs (newest first,
// with their tags) for shell completion of a command's first argument.
func (o *common) completeID(c *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveDefault // DEST: files
	}
	out := []cobra.Completion{cobra.CompletionWithDesc("latest", "the newest backup of the tags given")}
	list, err := o.completionList(c.Context())
	if err != nil {
		return out, cobra.ShellCompDirectiveNoFileComp
	}
	for i, b := range list {
		if i == 200 {
			break
		}
		out = append(out, cobra.CompletionWithDesc(strconv.FormatInt(b.ID, 10), b.Tags.String()+" "+b.CreatedAt.UTC().Format("2006-01-02 15:04")))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// notFound turns a 404 into a clear message.
func notFound(err error, what string) error {
	if apiclient.IsNotFound(err) {
		return fmt.Errorf("%s: no such backup on the server", what)
	}
	return err
}

func newList(o *common) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--KEY=VALUE ...]",
		Short: "List backups, newest first; all given tags must match",
		Args:  cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			filter, err := cli.ParseTags(o.tags)
			if err != nil {
				return err
			}
			api, _, err := o.client(false, quick)
			if err != nil {
				return err
			}
			list, err := api.List(c.Context(), filter)
			if err != nil {
				return err
			}
			if asJSON {
				type item struct {
					ID        int64         `json:"id"`
					Tags      manifest.Tags `json:"tags"`
					CreatedAt time.Time     `json:"created_at"`
					Files     int64         `json:"files"`
					Bytes     int64         `json:"bytes"`
					Labels    manifest.Tags `json:"labels,omitempty"`
				}
				out := make([]item, len(list))
				for i, b := range list {
					out[i] = item{b.ID, b.Tags, b.CreatedAt, b.Files, b.Bytes, b.Labels}
				}
				return printJSON(o.env.Stdout, out)
			}
			w := o.env.Stdout
			fmt.Fprintf(w, "%-6s  %-20s  %9s  %10s  %s\n", "ID", "CREATED (UTC)", "FILES", "SIZE", "TAGS")
			for _, b := range list {
				fmt.Fprintf(w, "%-6d  %-20s  %9d  %10s  %s", b.ID, b.CreatedAt.UTC().Format("2006-01-02 15:04:05"), b.Files, progress.Size(b.Bytes), b.Tags)
				if len(b.Labels) > 0 {
					fmt.Fprintf(w, "  [%s]", b.Labels)
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
	o.tagFlags(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newShow(o *common) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "show ID|latest [--KEY=VALUE ...]",
		Short: "Show one backup",
		Args:  cli.Args(1, 1),
		RunE: func(c *cobra.Command, args []string) error {
			tags, err := cli.ParseTags(o.tags)
			if err != nil {
				return err
			}
			api, _, err := o.client(false, quick)
			if err != nil {
				return err
			}
			id, err := resolveID(c.Context(), api, args[0], tags, "show")
			if err != nil {
				return err
			}
			b, err := api.Backup(c.Context(), id)
			if err != nil {
				return notFound(err, fmt.Sprintf("backup %d", id))
			}
			if asJSON {
				return printJSON(o.env.Stdout, b)
			}
			w := o.env.Stdout
			fmt.Fprintf(w, "backup    %d\ncreated   %s\ntags      %s\nfiles     %d\ndirs      %d\nsymlinks  %d\nsize      %s (%d bytes)\nblocks    %d\n",
				b.ID, b.CreatedAt.Format(time.RFC3339), b.Tags, b.Files, b.Dirs, b.Symlinks, progress.Size(b.Bytes), b.Bytes, b.Blocks)
			if len(b.Labels) > 0 {
				fmt.Fprintf(w, "labels    %s\n", b.Labels)
			}
			return nil
		},
	}
	c.ValidArgsFunction = o.completeID
	o.tagFlags(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newDelete(o *common) *cobra.Command {
	var yes bool
	c := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a backup (its blocks go when no other backup uses them)",
		Long: `Delete a backup. On a terminal it shows the backup and asks first; off a
terminal (a script, cron) it needs --yes.`,
		Args: cli.Args(1, 1),
		RunE: func(c *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			api, _, err := o.client(true, quick)
			if err != nil {
				return err
			}
			b, err := api.Backup(c.Context(), id)
			if err != nil {
				return notFound(err, "backup "+args[0])
			}
			what := fmt.Sprintf("Delete backup %d (%s; %s; %s, created %s)", b.ID, b.Tags, plural(b.Files, "file"),
				progress.Size(b.Bytes), b.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"))
			if err := o.env.Confirm(yes, what); err != nil {
				return err
			}
			if err := api.Delete(c.Context(), id); err != nil {
				return notFound(err, "backup "+args[0])
			}
			fmt.Fprintf(o.env.Stdout, "deleted backup %d\n", id)
			return nil
		},
	}
	c.ValidArgsFunction = o.completeID
	c.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask (needed off a terminal)")
	return c
}

// plural says "1 file", "2 files".
func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
