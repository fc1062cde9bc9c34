// Package key is `ib key`: age identities for encrypted backups.
package key

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"ib/internal/cli"
	"ib/internal/encrypt"
)

// New returns the key command group.
func New(env *cli.Env) *cobra.Command {
	k := cli.Group(&cobra.Command{Use: "key", Short: "Make and read the age identities that encrypted files are restored with"})
	k.AddCommand(newGenerate(env), newRecipient(env))
	return k
}

func newGenerate(env *cli.Env) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "generate [--out FILE]",
		Short: "Make a new age identity and print its recipient (public key)",
		Long: `Make a new age identity (X25519), the same as age-keygen. With --out it is
written to FILE (mode 0600, never over an existing file) and the recipient is
printed; without, the identity goes to standard output and the recipient to
standard error. Keep the identity away from the hosts you back up: they need
only the recipient (--encrypt-to).`,
		Args: cli.Args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error {
			file, recipient, err := encrypt.Generate(time.Now().UTC())
			if err != nil {
				return err
			}
			if out == "" {
				fmt.Fprint(env.Stdout, file)
				fmt.Fprintf(env.Stderr, "public key: %s\n", recipient)
				return nil
			}
			if err := encrypt.WriteNew(out, file); err != nil {
				if errors.Is(err, os.ErrExist) {
					return cli.Usagef("--out %s: the file exists; ib never replaces an identity", out)
				}
				return err
			}
			fmt.Fprintln(env.Stdout, recipient)
			return nil
		},
	}
	c.Flags().StringVarP(&out, "out", "o", "", "write the identity to this new file (mode 0600)")
	return c
}

func newRecipient(env *cli.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "recipient FILE",
		Short: "Print the recipients (public keys) of the identities in FILE",
		Long: `Print the recipient of each identity in an age identity file, one per line.
A file protected with a passphrase (age -p) asks for it on a terminal, or reads
IB_IDENTITY_PASSPHRASE.`,
		Args: cli.Args(1, 1),
		RunE: func(c *cobra.Command, args []string) error {
			ids, err := encrypt.Identities(args[0], cli.Passphrase(env, "IB_IDENTITY_PASSPHRASE", "passphrase of "+args[0]))
			if err != nil {
				return cli.UsageError{Err: err}
			}
			rs := encrypt.RecipientsOf(ids)
			if len(rs) == 0 {
				return cli.Usagef("%s holds no X25519 identity", args[0])
			}
			fmt.Fprintln(env.Stdout, strings.Join(rs, "\n"))
			return nil
		},
	}
}
