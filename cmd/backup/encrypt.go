package backup

import (
	"filippo.io/age"
	"github.com/spf13/cobra"

	"ib/internal/backup"
	"ib/internal/cli"
	"ib/internal/encrypt"
	"ib/internal/ignore"
)

// encryptFlags are the flags that seal chosen files as age files.
type encryptFlags struct {
	to       []string
	patterns []string
	all      bool
}

func (e *encryptFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.StringArrayVar(&e.to, "encrypt-to", nil, "encrypt chosen files to this age recipient (age1…) or recipients file (repeatable); the server and this host can then not read them")
	f.StringArrayVar(&e.patterns, "encrypt", nil, "encrypt the files this pattern matches, gitignore syntax (repeatable), e.g. priv_validator_key.json or keystore/")
	f.BoolVar(&e.all, "encrypt-all", false, "encrypt every file's content")
}

// resolve checks the flags (before any server is contacted) and returns
// what to seal, or nil.
func (e *encryptFlags) resolve() (*backup.Encrypt, error) {
	chosen := e.all || len(e.patterns) > 0
	switch {
	case !chosen && len(e.to) == 0:
		return nil, nil
	case !chosen:
		return nil, cli.Usagef("--encrypt-to: say which files with --encrypt PATTERN or --encrypt-all")
	case len(e.to) == 0:
		return nil, cli.Usagef("--encrypt/--encrypt-all need --encrypt-to RECIPIENT (ib key generate makes one)")
	}
	rs, err := encrypt.Recipients(e.to)
	if err != nil {
		return nil, cli.Usagef("--encrypt-to: %v", err)
	}
	return &backup.Encrypt{Recipients: rs, Patterns: ignore.Excludes("--encrypt", e.patterns), All: e.all}, nil
}

// loadIdentities reads --identity files.
func loadIdentities(env *cli.Env, paths []string) ([]age.Identity, error) {
	var out []age.Identity
	for _, p := range paths {
		ids, err := encrypt.Identities(p, cli.Passphrase(env, "IB_IDENTITY_PASSPHRASE", "passphrase of "+p))
		if err != nil {
			return nil, cli.Usagef("--identity: %v", err)
		}
		out = append(out, ids...)
	}
	return out, nil
}
