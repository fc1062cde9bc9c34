// Package cmd is ib's command line: cobra commands that parse flags, call
// one engine function and print. The engines live under internal/.
package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"ib/cmd/agent"
	"ib/cmd/backup"
	"ib/cmd/key"
	"ib/cmd/login"
	"ib/cmd/server"
	"ib/internal/cli"
)

// Version is stamped at build time with -ldflags "-X ib/cmd.Version=…".
var Version = "dev"

// NewRoot builds the command tree.
func NewRoot(env *cli.Env) *cobra.Command {
	root := cli.Group(&cobra.Command{
		Use:           "ib",
		Short:         "ib backs up folders to an ib server and restores them exactly",
		SilenceUsage:  true,
		SilenceErrors: true,
	})
	root.Version = Version
	root.SetVersionTemplate(fmt.Sprintf("ib %s (%s %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH))
	root.PersistentFlags().StringVar(&env.ConfigFile, "config", "", "config file (default: <config dir>/ib/config.toml or server.toml)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return cli.UsageError{Err: err} })
	root.AddCommand(
		backup.New(env),
		agent.New(env),
		server.New(env, Version),
		login.New(env),
		key.New(env),
		&cobra.Command{
			Use:   "version",
			Short: "Print ib's version",
			Args:  cli.Args(0, 0),
			Run: func(c *cobra.Command, _ []string) {
				fmt.Fprintf(env.Stdout, "ib %s (%s %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			},
		},
	)
	return root
}

// Execute runs ib with args and returns the exit status.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	env := &cli.Env{Stdin: os.Stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}
	root := NewRoot(env)
	root.SetOut(stdout)
	root.SetErr(stderr)
	args, err := cli.RewriteTags(root, args)
	if err == nil {
		root.SetArgs(args)
		err = root.ExecuteContext(ctx)
	}
	if err != nil && isCobraUsage(err) {
		err = cli.UsageError{Err: err}
	}
	var quiet cli.Exit
	if err != nil && !(errors.As(err, &quiet) && quiet.Err == nil) {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		fmt.Fprintf(stderr, "ib: %s\n", oneLine(err.Error()))
	}
	return cli.ExitCode(err)
}

// isCobraUsage recognises cobra's own command-line errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") || strings.Contains(msg, "flag needs an argument") ||
		strings.HasPrefix(msg, "invalid argument")
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}
