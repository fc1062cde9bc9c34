// Package login is `ib login`: it stores the server URL (and token) in the
// client config after checking them against the server.
package login

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"ib/internal/apiclient"
	"ib/internal/cli"
	"ib/internal/config"
)

// New returns the login command.
func New(env *cli.Env) *cobra.Command {
	var token, caCert string
	c := &cobra.Command{
		Use:   "login URL",
		Short: "Store the server URL (and write token) in the client config",
		Long: `Store the server URL, and the token that allows backups, in the client config
(<config dir>/ib/config.toml, mode 0600). Without --token only reads work:
list, show and restore. The server's token is printed by "ib server token show".`,
		Args: cli.Args(1, 1),
		RunE: func(c *cobra.Command, args []string) error {
			return run(c.Context(), env, args[0], token, caCert)
		},
	}
	c.Flags().StringVar(&token, "token", "", "the server's write token")
	c.Flags().StringVar(&caCert, "ca-cert", "", "trust server certificates signed by this CA (PEM), and remember it")
	return c
}

func run(ctx context.Context, env *cli.Env, rawURL, token, caCert string) error {
	u, err := apiclient.ParseServerURL(rawURL)
	if err != nil {
		return cli.UsageError{Err: err}
	}
	api, err := apiclient.New(u.String(), token)
	if err != nil {
		return cli.UsageError{Err: err}
	}
	if caCert != "" {
		if caCert, err = filepath.Abs(caCert); err != nil {
			return err
		}
		if err := api.TrustCA(caCert); err != nil {
			return cli.UsageError{Err: err}
		}
	}
	api.Retry = apiclient.Retry{Initial: 200 * time.Millisecond, Max: time.Second, MaxElapsed: 3 * time.Second}
	if err := api.Health(ctx); err != nil {
		var answered *apiclient.Error
		if !errors.As(err, &answered) {
			return fmt.Errorf("server %s does not answer: %w", u, err)
		}
		// It answers but is not healthy (its block store is down): still
		// a server to log in to.
		fmt.Fprintf(env.Stderr, "warning: server %s is not healthy: %v\n", u, answered.Msg)
	}
	scope := "append"
	if token != "" {
		id, err := api.WhoAmI(ctx)
		s := id.Scope
		switch {
		case apiclient.IsNotFound(err): // a server of before scoped tokens
			if _, err := api.Missing(ctx, []string{}); err != nil {
				return fmt.Errorf("server %s refuses the token: %w", u, err)
			}
		case err != nil:
			return fmt.Errorf("server %s: %w", u, err)
		case s == "none":
			return fmt.Errorf("server %s refuses the token: 401 Unauthorized: missing or wrong token", u)
		default:
			scope = s
		}
	}
	path, err := config.ClientPath(env.ConfigFile)
	if err != nil {
		return err
	}
	cfg, _, err := config.LoadClient(path)
	if err != nil {
		return err
	}
	// The server becomes the default; its token and CA are kept under its
	// URL, beside those of other servers.
	cfg.Server = u.String()
	cfg.Set(u.String(), config.ClientServer{Token: token, CACert: caCert})
	if err := config.Save(path, cfg); err != nil {
		return err
	}
	if token == "" {
		fmt.Fprintf(env.Stdout, "logged in to %s for reading (no token: backups need `ib login %s --token TOKEN`)\n", u, u)
	} else {
		fmt.Fprintf(env.Stdout, "logged in to %s (token scope: %s)\n", u, scope)
	}
	return nil
}
