package backup

import (
	"fmt"

	"github.com/spf13/cobra"

	"ib/internal/apiclient"
	"ib/internal/cli"
	"ib/internal/progress"
	"ib/internal/verify"
)

func newVerify(o *common) *cobra.Command {
	var (
		deep   bool
		jobs   int
		asJSON bool
	)
	c := &cobra.Command{
		Use:   "verify ID|latest [--KEY=VALUE ...] [--deep]",
		Short: "Check that the server holds every block of a backup; --deep downloads and re-hashes them",
		Args:  cli.Args(1, 1),
		RunE: func(c *cobra.Command, args []string) error {
			tags, err := cli.ParseTags(o.tags)
			if err != nil {
				return err
			}
			if jobs < 1 || jobs > 64 {
				return cli.Usagef("invalid --jobs %d: want 1 to 64", jobs)
			}
			api, _, err := o.client(false, quick)
			if err != nil {
				return err
			}
			id, err := resolveID(c.Context(), api, args[0], tags, "verify")
			if err != nil {
				return err
			}
			job := startServerJob(c.Context(), o, api, "verify", nil, &progress.Counters{})
			rep, err := verify.Run(c.Context(), api, id, deep, jobs)
			jerr := err
			if err == nil && !rep.OK() {
				jerr = fmt.Errorf("%d blocks missing, %d corrupt", len(rep.Missing), len(rep.Corrupt))
			}
			job.end(c.Context(), apiclient.JobEnd{BackupID: id, Files: rep.Files}, jerr)
			if err != nil {
				return notFound(err, fmt.Sprintf("backup %d", id))
			}
			if asJSON {
				if err := printJSON(o.env.Stdout, rep); err != nil {
					return err
				}
			} else {
				for _, p := range rep.Missing {
					fmt.Fprintf(o.env.Stdout, "MISSING %s (%s)\n", p.CID, p.File)
				}
				for _, p := range rep.Corrupt {
					fmt.Fprintf(o.env.Stdout, "CORRUPT %s (%s): %s\n", p.CID, p.File, p.Err)
				}
				how := "present"
				if deep {
					how = "present and intact"
				}
				if rep.OK() {
					fmt.Fprintf(o.env.Stdout, "backup %d: %d files, %d blocks, all %s\n", id, rep.Files, rep.Blocks, how)
				}
			}
			if !rep.OK() {
				return fmt.Errorf("backup %d: %d blocks missing, %d corrupt", id, len(rep.Missing), len(rep.Corrupt))
			}
			return nil
		},
	}
	c.ValidArgsFunction = o.completeID
	o.tagFlags(c)
	f := c.Flags()
	f.BoolVar(&deep, "deep", false, "download every block and check it against its CID")
	f.IntVarP(&jobs, "jobs", "j", 4, "downloads at once with --deep")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
