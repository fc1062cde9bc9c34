package server

import (
	"fmt"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"ib/internal/auth"
	"ib/internal/cli"
	"ib/internal/config"
	"ib/internal/manifest"
)

func newTokenCreate(env *cli.Env) *cobra.Command {
	var name, scope string
	c := &cobra.Command{
		Use:   "create --name NAME --scope read|append|admin",
		Short: "Create a named token and print it (only its hash is kept)",
		Long: `Create a named token and print it once: server.toml keeps only its SHA-256.
Scopes: read (browse and download a --private server), append (also upload and
commit backups, never delete or prune: give this one to nodes), admin
(everything). A running server accepts the token within a second.`,
		Args: cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			sc, err := auth.ParseScope(scope)
			if err != nil {
				return cli.Usagef("--scope: %v", err)
			}
			if err := manifest.CheckTag(name, "x"); err != nil || name == "admin" {
				return cli.Usagef("--name %q: want [a-z0-9][a-z0-9_.-]*, not \"admin\"", name)
			}
			return editTokens(env, func(cfg *config.Server) error {
				if slices.ContainsFunc(cfg.Tokens, func(t auth.Token) bool { return t.Name == name }) {
					return fmt.Errorf("a token named %q exists: revoke it first", name)
				}
				tok := config.NewToken()
				cfg.Tokens = append(cfg.Tokens, auth.Token{Name: name, Scope: sc.String(), SHA256: auth.Hash(tok), Created: time.Now().UTC().Truncate(time.Second)})
				fmt.Fprintln(env.Stdout, tok)
				return nil
			})
		},
	}
	c.Flags().StringVar(&name, "name", "", "the token's name (for list and revoke)")
	c.Flags().StringVar(&scope, "scope", "append", "read, append or admin")
	c.MarkFlagRequired("name")
	return c
}

func newTokenList(env *cli.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the tokens: name, scope, creation time (never the tokens)",
		Args:  cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			_, cfg, err := serverConfig(env)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSCOPE\tCREATED")
			if cfg.Token != "" {
				fmt.Fprintln(w, "admin\tadmin\t(ib server token show)")
			}
			for _, t := range cfg.Tokens {
				fmt.Fprintf(w, "%s\t%s\t%s\n", t.Name, t.Scope, t.Created.Format(time.RFC3339))
			}
			return w.Flush()
		},
	}
}

func newTokenRevoke(env *cli.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a named token (a running server refuses it within a second)",
		Args:  cli.Args(1, 1),
		RunE: func(c *cobra.Command, args []string) error {
			return editTokens(env, func(cfg *config.Server) error {
				i := slices.IndexFunc(cfg.Tokens, func(t auth.Token) bool { return t.Name == args[0] })
				if i < 0 {
					return fmt.Errorf("no token named %q (see ib server token list)", args[0])
				}
				cfg.Tokens = slices.Delete(cfg.Tokens, i, i+1)
				fmt.Fprintf(env.Stdout, "revoked %s\n", args[0])
				return nil
			})
		},
	}
}

// serverConfig reads server.toml (creating the admin token if it has none).
func serverConfig(env *cli.Env) (string, config.Server, error) {
	path, err := config.ServerPath(env.ConfigFile)
	if err != nil {
		return "", config.Server{}, err
	}
	cfg, err := config.EnsureServerToken(path)
	return path, cfg, err
}

// editTokens changes the server file's tokens and saves it (mode 0600).
func editTokens(env *cli.Env, edit func(*config.Server) error) error {
	path, cfg, err := serverConfig(env)
	if err != nil {
		return err
	}
	if err := edit(&cfg); err != nil {
		return err
	}
	return config.Save(path, cfg)
}
