package backup

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"ib/internal/cli"
	"ib/internal/progress"
	"ib/internal/restore"
)

func newRestore(o *common) *cobra.Command {
	var (
		jobs  int
		sub   string
		force bool
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
			api, settings, err := o.client(false)
			if err != nil {
				return err
			}
			var id int64
			if args[0] == "latest" {
				if len(tags) == 0 {
					return cli.Usagef("restore latest needs the backup's tags, e.g. --node=tezos")
				}
				b, err := api.Latest(c.Context(), tags)
				if err != nil {
					return notFound(err, "latest backup with tags "+tags.String())
				}
				id = b.ID
			} else {
				if len(tags) > 0 {
					return cli.Usagef("tags choose the latest backup: give either an ID or latest with tags")
				}
				if id, err = parseID(args[0]); err != nil {
					return err
				}
			}
			if jobs == 0 {
				jobs = settings.RJobs
			}
			counters := &progress.Counters{}
			if b, err := api.Backup(c.Context(), id); err == nil {
				counters.TotalFiles.Store(b.Files)
				counters.TotalBytes.Store(b.Bytes)
				counters.TotalsDone.Store(strings.TrimSpace(sub) == "")
			}
			stop := o.progress(c.Context(), counters, "restored")
			res, err := restore.Run(c.Context(), api, id, args[1], restore.Options{
				Sub: sub, Jobs: jobs, Force: force, Counters: counters, Log: o.log(),
			})
			stop()
			if err != nil {
				return notFound(err, fmt.Sprintf("backup %d", id))
			}
			fmt.Fprintf(o.env.Stdout, "restored backup %d to %s: %d files, %d dirs, %d symlinks, %s\n",
				id, args[1], res.Files, res.Dirs, res.Symlinks, progress.Size(res.Bytes))
			return nil
		},
	}
	o.tagFlags(c)
	f := c.Flags()
	f.IntVarP(&jobs, "jobs", "j", 0, "download workers (default 4)")
	f.StringVar(&sub, "path", "", "restore only this file or folder of the backup")
	f.BoolVar(&force, "force", false, "restore into a non-empty DEST, replacing what is there")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress output")
	return c
}
