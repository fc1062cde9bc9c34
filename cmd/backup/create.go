package backup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ib/internal/apiclient"
	"ib/internal/backup"
	"ib/internal/block"
	"ib/internal/chunk"
	"ib/internal/cli"
	"ib/internal/config"
	"ib/internal/ignore"
	"ib/internal/lock"
	"ib/internal/manifest"
	"ib/internal/progress"
	"ib/internal/scan"
	"ib/internal/units"
)

func newCreate(o *common) *cobra.Command {
	var (
		jobs      int
		blockSize string
		level     string
		full      bool
		noCache   bool
		asJSON    bool
		dryRun    bool
		explain   bool
		shrink    bool
		parallel  bool
		live      liveFlags
		enc       encryptFlags
	)
	c := &cobra.Command{
		Use:   "create [--KEY=VALUE ...] PATH",
		Short: "Back up a folder; unchanged files since the last backup with the same tags are not read",
		Example: `  ib backup create --node=tezos --version=24.0 --network=mainnet ./
  ib backup create --tag server=eu-1 --node=geth /srv/geth`,
		Args: cli.Args(1, 1),
		RunE: func(c *cobra.Command, args []string) error {
			softMemoryLimit()
			tags, err := cli.ParseTags(o.tags)
			if err != nil {
				return err
			}
			var bs int64 // content-defined blocks
			if blockSize != "" {
				bs, err = units.ParseSize(blockSize)
				if err != nil || bs < 1 || bs > block.MaxSize {
					return cli.Usagef("invalid --block-size %q: want 1 byte to 128MiB", blockSize)
				}
			}
			lv, err := block.ParseLevel(level)
			if err != nil {
				return cli.UsageError{Err: fmt.Errorf("--level: %w", err)}
			}
			if jobs < 0 || jobs > 256 {
				return cli.Usagef("invalid --jobs %d: want 1 to 256", jobs)
			}
			if fi, err := os.Stat(args[0]); err != nil {
				return fmt.Errorf("backup %s: %w", args[0], err)
			} else if !fi.IsDir() {
				return fmt.Errorf("backup %s: not a directory", args[0])
			}
			if explain && !dryRun {
				return cli.Usagef("--explain goes with --dry-run")
			}
			if dryRun {
				lp, err := live.resolve(c, config.BackupSettings{}, o.env.Stderr)
				if err != nil {
					return err
				}
				return plan(c.Context(), o, args[0], backup.PlanOptions{Excludes: lp.excludes, OneFileSystem: lp.oneFS}, explain, asJSON)
			}
			api, settings, err := o.client(true, patient)
			if err != nil {
				return err
			}
			cfg, _ := settings.Backups.BackupFor(tags)
			lp, err := live.resolve(c, cfg, o.env.Stderr)
			if err != nil {
				return err
			}
			sealing, err := enc.resolve(c, cfg, o.env, lp.secrets())
			if err != nil {
				return err
			}
			if sealing != nil {
				lp.encryptSecrets()
			}
			lockPath, err := config.LockPath(api.URL(), tags.Canonical())
			if err != nil {
				return err
			}
			if !parallel {
				held, err := lock.Try(lockPath)
				if err != nil {
					return fmt.Errorf("another backup of %s to %s is running (two at once need --parallel): %w", tags, api.URL(), err)
				}
				defer held.Release()
			}
			counters := &progress.Counters{}
			op, err := open(c.Context(), o, api, tags, counters, lp.pre.Command == "")
			if err != nil {
				return err
			}
			if jobs == 0 {
				jobs = settings.Jobs
			}
			var cache *backup.ManifestCache
			if !noCache {
				dir, err := config.CacheDir(api.URL())
				if err != nil {
					return err
				}
				cache = &backup.ManifestCache{Dir: dir}
			}
			opts := backup.Options{
				BlockSize: bs, Level: lv, Jobs: jobs, Full: full,
				Prescan: !o.quiet, Log: o.log(), IsNotFound: apiclient.IsNotFound,
				Cache: cache, AllowShrink: shrink, Parallel: parallel, Encrypt: sealing,
				NoInline: !op.inline,
			}
			lp.options(&opts)
			if lp.pre.Command == "" {
				opts.OnLiveDB = liveDBWarner(o.env.Stderr)
			}
			res, err := runHooked(c.Context(), o, api, lp, op, counters, args[0], tags, opts)
			if res.ID == 0 {
				return err
			}
			warnSecrets(o.env.Stderr, res)
			warnClearLinks(o.env.Stderr, res)
			printCaveats(o.env.Stderr, res)
			if asJSON {
				if perr := printJSON(o.env.Stdout, res); perr != nil {
					return perr
				}
				return err
			}
			fmt.Fprintf(o.env.Stdout, "backup %d created: %s, %s, %s, %s; %d of %s new, %s uploaded; %s unchanged; %s\n",
				res.ID, plural(res.Files, "file"), plural(res.Dirs, "dir"), plural(res.Symlinks, "symlink"), progress.Size(res.Bytes),
				res.NewBlocks, plural(res.Blocks, "block"), progress.Size(res.UploadedBytes), plural(res.ReusedFiles, "file"),
				(time.Duration(res.DurationMS) * time.Millisecond).String())
			return err
		},
	}
	o.tagFlags(c)
	f := c.Flags()
	f.IntVarP(&jobs, "jobs", "j", 0, "upload workers (default 16)")
	f.StringVar(&blockSize, "block-size", "", fmt.Sprintf("cut files into fixed-size blocks of this size, at most 128MiB (default: content-defined blocks of %dMiB to %dMiB)", chunk.Min>>20, chunk.Max>>20))
	f.StringVar(&level, "level", "max", "LZ4 level: fast, 1-9 or max")
	f.BoolVar(&full, "full", false, "read every file, ignoring the previous backup")
	f.BoolVar(&parallel, "parallel", false, "run beside another backup of the same tags (refused otherwise, here and by the server)")
	f.BoolVar(&shrink, "allow-shrink", false, "commit a backup that is empty or has under half the files or bytes of the previous one with the same tags")
	f.BoolVar(&noCache, "no-cache", false, "download the previous backup's manifest instead of reading it from the cache ($IB_CACHE_DIR)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress output")
	f.BoolVar(&dryRun, "dry-run", false, "list what would be backed up (+) and what is ignored (-); contact no server")
	f.BoolVar(&explain, "explain", false, "with --dry-run: name the ignore file, line and pattern of each ignored path")
	live.add(c)
	enc.add(c)
	return c
}

// printCaveats says what the backup left out or met on the way.
func printCaveats(w io.Writer, res backup.Result) {
	if n := res.Skipped.Special; n > 0 {
		fmt.Fprintf(w, "skipped %d sockets, devices or named pipes\n", n)
	}
	if n := res.Renamed; n > 0 {
		fmt.Fprintf(w, "%s moved or renamed since the last backup: taken unread\n", plural(n, "file"))
	}
	if n := res.Vanished; n > 0 {
		fmt.Fprintf(w, "%s removed while the backup ran: left out\n", plural(n, "file"))
	}
	if n := len(res.Skipped.OtherFS); n > 0 {
		fmt.Fprintf(w, "--one-file-system: %d mount point(s) kept empty, first %s\n", n, res.Skipped.OtherFS[0])
	}
	if len(res.Labels) > 0 {
		fmt.Fprintf(w, "labels: %s\n", res.Labels)
	}
}

// plan prints what a backup of root would store and leave out.
func plan(ctx context.Context, o *common, root string, po backup.PlanOptions, explain, asJSON bool) error {
	var sum struct {
		Files    int64 `json:"files"`
		Dirs     int64 `json:"dirs"`
		Symlinks int64 `json:"symlinks"`
		Bytes    int64 `json:"bytes"`
		Ignored  int64 `json:"ignored"`
	}
	w := bufio.NewWriter(o.env.Stdout)
	st, err := backup.Plan(ctx, root, po, func(it backup.PlanItem) error {
		switch {
		case it.Ignored:
			sum.Ignored++
		case it.Type == manifest.TypeDir:
			sum.Dirs++
		case it.Type == manifest.TypeSymlink:
			sum.Symlinks++
		default:
			sum.Files++
			sum.Bytes += it.Size
		}
		if asJSON {
			return nil
		}
		p := it.Path
		if it.Type == manifest.TypeDir || it.IsDir {
			p += "/"
		}
		switch {
		case !it.Ignored:
			fmt.Fprintf(w, "+ %s\n", p)
		case explain:
			fmt.Fprintf(w, "- %s\t%s\n", p, it.By)
		default:
			fmt.Fprintf(w, "- %s\n", p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("backup %s: %w", root, err)
	}
	if asJSON {
		w.Flush()
		return printJSON(o.env.Stdout, sum)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(o.env.Stderr, "would back up %d files, %d dirs, %d symlinks, %s; %d paths ignored, %d special files skipped\n",
		sum.Files, sum.Dirs, sum.Symlinks, progress.Size(sum.Bytes), sum.Ignored, st.Special)
	return nil
}

// warnSecrets says loudly which stored files look like private keys: in the
// clear on the server, anyone who may read it can download them.
func warnSecrets(w io.Writer, res backup.Result) {
	if res.SecretCount == 0 {
		return
	}
	fmt.Fprintf(w, "WARNING: %d file(s) that look like private keys are stored in the clear in backup %d:\n", res.SecretCount, res.ID)
	for i, p := range res.Secrets {
		if i == 10 {
			fmt.Fprintf(w, "  … and %d more\n", res.SecretCount-10)
			break
		}
		fmt.Fprintf(w, "  %s\n", p)
	}
	fmt.Fprintf(w, "Anyone who can read this server can download them. Leave them out with a line each in the\n"+
		"folder's .ibignore (e.g. %s), and delete this backup (ib backup delete %d); or run the server\n"+
		"with --private and give read tokens only to those who may see them.\n", res.Secrets[0], res.ID)
}

// warnClearLinks names the hard links --encrypt chose whose first name it
// did not: a file's content is stored once, under its first name.
func warnClearLinks(w io.Writer, res backup.Result) {
	if len(res.ClearLinks) == 0 {
		return
	}
	fmt.Fprintf(w, "WARNING: %d file(s) chosen by --encrypt are hard links to a name it does not choose, and are stored in the clear under that name:\n", len(res.ClearLinks))
	for _, l := range res.ClearLinks[:min(10, len(res.ClearLinks))] {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintln(w, "Add the other name to --encrypt (a hard link's content is stored once, under the name met first).")
}

// checkToken asks the server what the token may do before anything is
// read: a wrong token fails in a second, not after the walk. It returns
// whether the server takes inline CIDs.
func checkToken(ctx context.Context, api *apiclient.Client) (inline bool, err error) {
	id, err := api.WhoAmI(ctx)
	switch {
	case apiclient.IsNotFound(err):
		return false, nil // a server of before scoped tokens: the first write tells
	case err != nil:
		return false, fmt.Errorf("server %s: %w", api.URL(), err)
	case id.Scope == "none":
		return false, fmt.Errorf("server %s refuses the token (401): check it with `ib login %s --token TOKEN`", api.URL(), api.URL())
	case id.Scope == "read":
		return false, fmt.Errorf("server %s: the token has scope read; backups need a token of scope append or admin (ib server token create)", api.URL())
	}
	return id.InlineCIDs, nil
}

// warnNewTagSet says when no backup has these tags yet (latestErr, the
// answer to the question for the newest, is not found): every file will be
// read and the backup starts a new set. A mistyped tag (--nod=…) looks just
// like this, so the sets that differ from it in one tag are named.
func warnNewTagSet(ctx context.Context, w io.Writer, api *apiclient.Client, tags manifest.Tags, latestErr error) {
	if !apiclient.IsNotFound(latestErr) {
		return
	}
	near := map[string]manifest.Tags{}
	for k := range tags {
		others := maps.Clone(tags)
		delete(others, k)
		list, err := api.List(ctx, others)
		if err != nil {
			return
		}
		for _, b := range list {
			if len(b.Tags) == len(tags) && b.Tags.Canonical() != tags.Canonical() {
				near[b.Tags.Canonical()] = b.Tags
			}
		}
	}
	fmt.Fprintf(w, "warning: no backup has the tags %s yet: this starts a new tag set, and every file is read", tags)
	if len(near) == 0 {
		fmt.Fprintln(w)
		return
	}
	var names []string
	for _, t := range near {
		names = append(names, t.String())
	}
	slices.Sort(names)
	if len(names) > 5 {
		names = append(names[:5], "…")
	}
	fmt.Fprintf(w, ". Tag sets that differ in one tag: %s\n", strings.Join(names, "; "))
}

// runHooked runs the pre hook, the backup it prepared and the post hook,
// which runs whenever the pre hook ran (or none is set): after success,
// failure or an interrupt.
func runHooked(ctx context.Context, o *common, api *apiclient.Client, lp *livePlan, op opening, counters *progress.Counters,
	path string, tags manifest.Tags, opts backup.Options) (res backup.Result, err error) {
	job := op.job
	defer func() {
		if herr := lp.finish(ctx, path, tags, res.ID, err); herr != nil {
			err = errors.Join(err, herr)
		}
		job.end(ctx, apiclient.JobEnd{BackupID: res.ID, Bytes: res.Bytes, Files: res.Files}, err)
	}()
	counters.SetPhase("pre hook")
	if path, tags, err = lp.prepare(ctx, path, tags); err != nil {
		return backup.Result{}, err
	}
	latest, latestErr := op.latestFor(ctx, api, tags)
	warnNewTagSet(ctx, o.env.Stderr, api, tags, latestErr)
	opts.Latest = func(context.Context) (manifest.Summary, error) { return latest, latestErr }
	opts.Tags, opts.Labels = tags, lp.labels
	opts.NewIgnorer = func() scan.Ignorer { return ignore.New(lp.excludes...) }
	opts.Counters, opts.Job = counters, job.ID()
	stop := o.progress(ctx, counters, "backed up")
	res, err = backup.Run(ctx, api, path, opts)
	stop(err == nil)
	if err != nil {
		return res, fmt.Errorf("backup %s to %s: %w", path, api.URL(), err)
	}
	return res, warnChanged(o.env.Stderr, res)
}

// clientMemoryLimit is the Go heap a backup aims to stay under (unless
// GOMEMLIMIT says otherwise): with the default GC pacing a backup of a
// million tiny files, whose live heap peaks near 100 MiB, let its heap grow
// to twice that and its RSS to 268 MiB; the limit makes the collector run
// sooner instead (it then costs a few percent of one core).
const clientMemoryLimit = 160 << 20

func softMemoryLimit() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(clientMemoryLimit)
	}
}
