package backup

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"ib/internal/apiclient"
	"ib/internal/cli"
	"ib/internal/config"
	"ib/internal/ignore"
	"ib/internal/preset"
	"ib/internal/progress"
	"ib/internal/restore"
)

func newRestore(o *common) *cobra.Command {
	var (
		jobs                 int
		subs                 []string
		force                bool
		noSameOwner, noPerms bool
		chown                string
		overwriteProtected   bool
		presetName           string
		del, asJSON          bool
		inPlace, verifyAll   bool
		dryRun               bool
		keep                 []string
		decrypt              decryptFlags
		skipEncrypted        bool
	)
	c := &cobra.Command{
		Use:     "restore ID|latest [--KEY=VALUE ...] DEST",
		Aliases: []string{"download"},
		Short:   "Restore a backup into DEST exactly: content, modes, mtimes, symlinks",
		Example: `  ib backup restore 42 /srv/tezos
  ib backup restore latest --node=tezos --network=mainnet /srv/tezos
  ib backup restore 42 --path config/node.json ./restored`,
		Args: cli.Args(2, 2),
		RunE: func(c *cobra.Command, args []string) error {
			tags, err := cli.ParseTags(o.tags)
			if err != nil {
				return err
			}
			if jobs < 0 || jobs > 64 {
				return cli.Usagef("invalid --jobs %d: want 1 to 64", jobs)
			}
			api, settings, err := o.client(false, patient)
			if err != nil {
				return err
			}
			id, err := resolveID(c.Context(), api, args[0], tags, "restore")
			if err != nil {
				return err
			}
			if jobs == 0 {
				jobs = settings.RJobs
			}
			owner, err := parseOwner(chown)
			if err != nil {
				return err
			}
			protect, err := protectedPaths(c, api, id, presetName, overwriteProtected)
			if err != nil {
				return err
			}
			state, err := config.CacheDir(api.URL())
			if err != nil {
				return err
			}
			ids, err := decrypt.load(o.env, settings)
			if err != nil {
				return err
			}
			opts := restore.Options{
				Identities: ids, SkipEncrypted: skipEncrypted,
				Jobs: jobs, Force: force, Log: o.log(), StateDir: filepath.Join(state, "restored"),
				NoSameOwner: noSameOwner, Chown: owner, NoSamePermissions: noPerms, Protected: protect,
				Delete: del, Keep: ignore.Excludes("--keep", keep), InPlace: inPlace, VerifyExisting: verifyAll,
			}
			if len(subs) == 0 {
				subs = []string{""}
			}
			if dryRun {
				return planRestore(c.Context(), o, api, id, args[1], subs, opts, asJSON)
			}
			// Several --path: one restore each into the same DEST, the
			// later ones into what the first made.
			var res restore.Result
			for i, sub := range subs {
				opts.Sub, opts.Force = sub, force || i > 0
				counters := &progress.Counters{} // totals: the restore's own, from the manifest
				opts.Counters = counters
				stop := o.progress(c.Context(), counters, "restored")
				job := startServerJob(c.Context(), o, api, "restore", nil, counters)
				one, err := restore.Run(c.Context(), api, id, args[1], opts)
				job.end(c.Context(), apiclient.JobEnd{BackupID: id, Bytes: one.Bytes, Files: one.Files}, err)
				stop(err == nil)
				if err != nil {
					return notFound(err, fmt.Sprintf("backup %d", id))
				}
				res = addResults(res, one)
			}
			if asJSON {
				if err := printJSON(o.env.Stdout, res); err != nil {
					return err
				}
			} else {
				printRestored(o.env.Stdout, id, args[1], res)
			}
			if res.ProtectedCount > 0 {
				fmt.Fprintf(o.env.Stderr, "kept %s of DEST as it was (protected; --overwrite-protected replaces them): %s\n",
					plural(int64(res.ProtectedCount), "file"), strings.Join(res.Protected[:min(5, len(res.Protected))], ", "))
			}
			return nil
		},
	}
	c.ValidArgsFunction = o.completeID
	o.tagFlags(c)
	f := c.Flags()
	f.IntVarP(&jobs, "jobs", "j", 0, "download workers (default 4)")
	f.StringArrayVar(&subs, "path", nil, "restore only this file or folder of the backup (repeatable)")
	f.BoolVar(&force, "force", false, "restore into a non-empty DEST, replacing what is there")
	decrypt.add(c)
	f.BoolVar(&skipEncrypted, "skip-encrypted", false, "leave encrypted files out instead of failing without an identity")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress output")
	f.BoolVar(&noSameOwner, "no-same-owner", false, "as root, do not give files the backup's owners (they belong to the restoring user)")
	f.StringVar(&chown, "chown", "", "give every file this owner, USER:GROUP (names or numbers; needs root)")
	f.BoolVar(&noPerms, "no-same-permissions", false, "apply the umask to every mode")
	f.BoolVar(&overwriteProtected, "overwrite-protected", false, "replace the preset's protected files in DEST too (e.g. a validator's signing state)")
	f.BoolVar(&del, "delete", false, "remove what DEST has and the backup does not (never what DEST's ignore files leave out, protected paths or --keep)")
	f.StringArrayVar(&keep, "keep", nil, "with --delete: never remove paths matching PATTERN (gitignore syntax; repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON (with --dry-run: {\"plan\": [...], \"totals\": {...}})")
	f.BoolVar(&dryRun, "dry-run", false, "write nothing: list what would be fetched, taken from DEST, replaced and deleted, with bytes")
	f.BoolVar(&inPlace, "in-place", false, "patch existing files where they are, block by block, instead of writing a copy beside them")
	f.BoolVar(&verifyAll, "verify-existing", false, "hash files that look complete too, and repair in place any block that differs")
	f.StringVar(&presetName, "preset", "", "protect this preset's files in DEST (default: the preset the backup was made with)")
	return c
}

// parseOwner reads USER:GROUP, each a name or a number; "" is none.
func parseOwner(s string) (*restore.Owner, error) {
	if s == "" {
		return nil, nil
	}
	u, g, ok := strings.Cut(s, ":")
	if !ok || u == "" || g == "" {
		return nil, cli.Usagef("--chown %q: want USER:GROUP", s)
	}
	uid, err := strconv.Atoi(u)
	if err != nil {
		usr, lerr := user.Lookup(u)
		if lerr != nil {
			return nil, cli.Usagef("--chown: no user %q", u)
		}
		uid, _ = strconv.Atoi(usr.Uid)
	}
	gid, err := strconv.Atoi(g)
	if err != nil {
		grp, lerr := user.LookupGroup(g)
		if lerr != nil {
			return nil, cli.Usagef("--chown: no group %q", g)
		}
		gid, _ = strconv.Atoi(grp.Gid)
	}
	if uid < 0 || gid < 0 {
		return nil, cli.Usagef("--chown %q: negative ids", s)
	}
	return &restore.Owner{UID: uid, GID: gid}, nil
}

// protectedPaths are the patterns a restore keeps in DEST: those of the
// preset named, else of the preset the backup was made with (its label).
func protectedPaths(c *cobra.Command, api *apiclient.Client, id int64, name string, overwrite bool) ([]*ignore.Pattern, error) {
	if overwrite {
		return nil, nil
	}
	if name == "" {
		b, err := api.Backup(c.Context(), id)
		if err != nil {
			return nil, notFound(err, fmt.Sprintf("backup %d", id))
		}
		name = b.Labels["preset"]
		if name == "" {
			return nil, nil
		}
		if _, err := preset.Get(name); err != nil {
			return nil, nil // a preset of a newer ib: nothing known to protect
		}
	}
	p, err := preset.Get(name)
	if err != nil {
		return nil, cli.UsageError{Err: fmt.Errorf("--preset: %w", err)}
	}
	return ignore.Excludes("preset "+p.Name, p.Protected), nil
}

// printRestored is restore's summary; a refresh says what it took from
// DEST and what it fetched.
func printRestored(w io.Writer, id int64, dest string, res restore.Result) {
	fmt.Fprintf(w, "restored backup %d to %s: %s, %s, %s, %s", id, dest, plural(res.Files, "file"),
		plural(res.Dirs, "dir"), plural(res.Symlinks, "symlink"), progress.Size(res.Bytes))
	if res.Kept+res.BlocksReused+res.Deleted > 0 {
		fmt.Fprintf(w, "; %s kept, %s patched, %s reused from DEST (%s), %s fetched (%s), %s deleted",
			plural(res.Kept, "file"), plural(res.Patched, "file"), plural(res.BlocksReused, "block"), progress.Size(res.BytesReused),
			plural(res.BlocksFetched, "block"), progress.Size(res.BytesFetched), plural(res.Deleted, "path"))
	}
	fmt.Fprintln(w)
}

// planRestore prints what a restore of each path would do: lines and a
// summary, or with asJSON one document {"plan": [...], "totals": {...}}.
func planRestore(ctx context.Context, o *common, api *apiclient.Client, id int64, dest string, subs []string, opts restore.Options, asJSON bool) error {
	w := bufio.NewWriter(o.env.Stdout)
	defer w.Flush()
	plan := []restore.Planned{}
	var totals restore.Result
	opts.DryRun = true
	opts.Plan = func(p restore.Planned) error {
		if asJSON {
			plan = append(plan, p)
			return nil
		}
		_, err := fmt.Fprintln(w, p)
		return err
	}
	for _, sub := range subs {
		opts.Sub = sub
		res, err := restore.Run(ctx, api, id, dest, opts)
		if err != nil {
			return notFound(err, fmt.Sprintf("backup %d", id))
		}
		totals = addResults(totals, res)
	}
	if asJSON {
		return printJSON(w, struct {
			Plan   []restore.Planned `json:"plan"`
			Totals restore.Result    `json:"totals"`
		}{plan, totals})
	}
	res := totals
	fmt.Fprintf(w, "would restore backup %d to %s: %s kept, %s patched, %s new or replaced; %s from DEST (%s), %s fetched (%s); %s deleted\n",
		id, dest, plural(res.Kept, "file"), plural(res.Patched, "file"), plural(res.Files-res.Kept-res.Patched, "file"),
		plural(res.BlocksReused, "block"), progress.Size(res.BytesReused), plural(res.BlocksFetched, "block"),
		progress.Size(res.BytesFetched), plural(res.Deleted, "path"))
	return nil
}

// addResults sums the results of restores into one DEST.
func addResults(a, b restore.Result) restore.Result {
	a.Files += b.Files
	a.Dirs += b.Dirs
	a.Symlinks += b.Symlinks
	a.Bytes += b.Bytes
	a.Kept += b.Kept
	a.Skipped += b.Skipped
	a.Patched += b.Patched
	a.BlocksReused += b.BlocksReused
	a.BytesReused += b.BytesReused
	a.BlocksFetched += b.BlocksFetched
	a.BytesFetched += b.BytesFetched
	a.Deleted += b.Deleted
	a.ProtectedCount += b.ProtectedCount
	a.Protected = append(a.Protected, b.Protected...)
	return a
}
