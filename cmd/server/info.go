package server

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"ib/internal/apiclient"
	"ib/internal/cli"
	"ib/internal/progress"
)

func newInfo(env *cli.Env) *cobra.Command {
	var serverURL, caCert string
	var asJSON bool
	c := &cobra.Command{
		Use:   "info",
		Short: "Show a running server's counts and sizes (GET /api/v1/stats)",
		Args:  cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			s, err := env.ResolveClient(serverURL, "", caCert)
			if err != nil {
				return err
			}
			api, err := s.APIClient(cli.Logger(env.Stderr, slog.LevelWarn))
			if err != nil {
				return err
			}
			api.Retry = apiclient.QuickRetry
			st, err := api.Stats(c.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			fmt.Fprintf(env.Stdout, "server        %s\nblock store   %s\nbackups       %d in %d tag sets\nblocks        %d (%d inline)\nstored        %s (%s inline, %s offloaded)\nunique        %s\nlogical       %s\ndedup         %.2fx\ncompression   %.2fx\n",
				api.URL(), st.BlockStore, st.Backups, st.TagSets, st.Blocks, st.InlineBlocks,
				progress.Size(st.StoredBytes), progress.Size(st.InlineBytes), progress.Size(st.OffloadedBytes),
				progress.Size(st.UniqueBytes), progress.Size(st.LogicalBytes), st.DedupRatio, st.CompressionRatio)
			return nil
		},
	}
	c.Flags().StringVar(&serverURL, "server", "", "server URL (default: IB_SERVER, then the client config)")
	c.Flags().StringVar(&caCert, "ca-cert", "", "trust server certificates signed by this CA (PEM)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
