package backup

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"ib/internal/api"
	"ib/internal/cli"
	"ib/internal/progress"
	"ib/internal/units"
)

func newPrune(o *common) *cobra.Command {
	var (
		olderThan string
		keepLast  int
		dryRun    bool
		asJSON    bool
		yes, all  bool
	)
	c := &cobra.Command{
		Use:   "prune [--older-than DUR] [--keep-last N] [--KEY=VALUE ...] [--dry-run] [--json]",
		Short: "Delete backups by age and count, per tag set, then collect unused blocks",
		Long: `Among the backups whose tags include every given --KEY=VALUE, --keep-last N keeps the
newest N of each tag set and --older-than DUR deletes those older than DUR; with both, a
backup goes only if both say so. Then the server collects the blocks no backup uses any more
(sparing those uploaded or asked about within its --gc-grace). On a terminal it shows
what would go and asks first; off a terminal it needs --yes. Without a tag filter it
needs --all.`,
		Example: `  ib backup prune --keep-last 7 --node=tezos
  ib backup prune --older-than 30d --keep-last 3 --all --dry-run
  ib backup prune --keep-last 7 --node=tezos --yes     # from a script`,
		Args: cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			tags, err := cli.ParseTags(o.tags)
			if err != nil {
				return err
			}
			req := &api.PruneRequest{Tags: tags, DryRun: dryRun}
			if c.Flags().Changed("keep-last") {
				if keepLast < 0 {
					return cli.Usagef("--keep-last %d: want 0 or more", keepLast)
				}
				req.KeepLast = &keepLast
			}
			if olderThan != "" {
				if _, err := units.ParseDuration(olderThan); err != nil {
					return cli.Usagef("--older-than: %v", err)
				}
				req.OlderThan = olderThan
			}
			if req.KeepLast == nil && req.OlderThan == "" {
				return cli.Usagef("give --keep-last, --older-than or both")
			}
			if len(tags) == 0 && !all {
				return cli.Usagef("a prune without a tag filter (--KEY=VALUE) applies to every tag set: pass --all to mean it")
			}
			api, _, err := o.client(true, quick)
			if err != nil {
				return err
			}
			if !dryRun && !yes {
				// show what would go, then ask (or, off a terminal, stop)
				look := *req
				look.DryRun = true
				plan, err := api.Prune(c.Context(), &look)
				if err != nil {
					return err
				}
				if len(plan.Deleted) == 0 {
					fmt.Fprintln(o.env.Stdout, "no backup to delete")
					return nil
				}
				for _, d := range plan.Deleted {
					fmt.Fprintf(o.env.Stderr, "would delete backup %d (%s, %s): %s\n", d.ID, d.Tags, d.CreatedAt.Format(time.RFC3339), d.Reason)
				}
				if err := o.env.Confirm(false, fmt.Sprintf("Delete these %d backups", len(plan.Deleted))); err != nil {
					return err
				}
			}
			ans, err := api.Prune(c.Context(), req)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(o.env.Stdout, ans)
			}
			w := o.env.Stdout
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			for _, d := range ans.Deleted {
				fmt.Fprintf(w, "%s backup %d (%s, %s): %s\n", verb, d.ID, d.Tags, d.CreatedAt.Format(time.RFC3339), d.Reason)
			}
			for _, d := range ans.Kept {
				fmt.Fprintf(w, "kept backup %d (%s, %s): %s\n", d.ID, d.Tags, d.CreatedAt.Format(time.RFC3339), d.Reason)
			}
			if !dryRun {
				fmt.Fprintf(w, "%d backups deleted; %d blocks and %s freed\n", len(ans.Deleted), ans.GC.BlocksDeleted, progress.Size(ans.GC.BytesFreed))
			}
			return nil
		},
	}
	o.tagFlags(c)
	f := c.Flags()
	f.StringVar(&olderThan, "older-than", "", "delete backups older than this (e.g. 30d, 36h)")
	f.IntVar(&keepLast, "keep-last", 0, "keep the newest N backups of each tag set")
	f.BoolVar(&dryRun, "dry-run", false, "only say what would be deleted")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVarP(&yes, "yes", "y", false, "do not show and ask first (needed off a terminal)")
	f.BoolVar(&all, "all", false, "prune every tag set (needed when no --KEY=VALUE filter is given)")
	return c
}
