package server

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ib/internal/cli"
	"ib/internal/config"
	"ib/internal/metadb/postgres"
	"ib/internal/metadb/sqlite"
	"ib/internal/metadb/transfer"
)

func newMigrate(env *cli.Env) *cobra.Command {
	var dataDir, to string
	var verify bool
	c := &cobra.Command{
		Use:   "migrate --to postgres://USER@HOST/DB",
		Short: "Copy the server's metadata from its SQLite file into PostgreSQL",
		Long: `Copy the metadata of the SQLite server whose data dir is --data-dir (default:
the configured one) into an empty PostgreSQL database, ids kept, in one
transaction. Blocks stay where they are: serve afterwards with --db and the
same data dir (local blocks) or the same S3 settings. Stop the server first:
what it writes during the copy is not copied. --verify compares the row
counts of every table and every backup's manifest hash afterwards.`,
		Example: `  ib server migrate --to postgres://ib@db.example/ib --verify
  ib server serve --db postgres://ib@db.example/ib`,
		Args: cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			return runMigrate(c, env, dataDir, to, verify)
		},
	}
	f := c.Flags()
	f.StringVar(&dataDir, "data-dir", "", "the data dir of the SQLite server (default: the configured one)")
	f.StringVar(&to, "to", "", "the PostgreSQL database to copy into, postgres://… (must hold no metadata yet)")
	f.BoolVar(&verify, "verify", false, "compare row counts and every backup's manifest hash after the copy")
	return c
}

func runMigrate(c *cobra.Command, env *cli.Env, dataDir, to string, verify bool) error {
	if !strings.HasPrefix(to, "postgres://") && !strings.HasPrefix(to, "postgresql://") {
		return cli.Usagef("--to: want postgres://USER@HOST/DB")
	}
	if dataDir == "" {
		_, cfg, err := serverConfig(env)
		if err != nil {
			return err
		}
		if dataDir = cfg.DataDir; dataDir == "" {
			if dataDir, err = config.DefaultDataDir(); err != nil {
				return err
			}
		}
	}
	path := filepath.Join(dataDir, "ib.db")
	if _, err := os.Stat(path); err != nil {
		return cli.Usagef("--data-dir %s: no ib.db there (%v)", dataDir, errors.Unwrap(err))
	}
	ctx := c.Context()
	src, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, to)
	if err != nil {
		return err
	}
	defer dst.Close()
	start := time.Now()
	counts, err := transfer.Copy(ctx, src, dst)
	if errors.Is(err, postgres.ErrNotEmpty) {
		return cli.Usagef("--to %s: %v; migrate into an empty database", postgres.Redacted(to), err)
	}
	if err != nil {
		return fmt.Errorf("migrate (nothing was written): %w", err)
	}
	fmt.Fprintf(env.Stdout, "copied %d backups, %d blocks, %d entries, %d references from %s to %s in %s\n",
		counts["backups"], counts["blocks"], counts["entries"], counts["refs"], path, postgres.Redacted(to), time.Since(start).Round(time.Millisecond))
	if verify {
		rep, err := transfer.Verify(ctx, src, dst)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		fmt.Fprintf(env.Stdout, "verified: every table's row count and the manifests of %d backups match\n", rep.Backups)
	}
	fmt.Fprintf(env.Stdout, "serve it with: ib server serve --db %s --data-dir %s\n", postgres.Redacted(to), cmp.Or(dataDir, "."))
	return nil
}
