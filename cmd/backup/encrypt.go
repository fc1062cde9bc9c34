package backup

import (
	"fmt"
	"slices"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"ib/internal/backup"
	"ib/internal/cli"
	"ib/internal/config"
	"ib/internal/encrypt"
	"ib/internal/ignore"
)

// passphraseEnv holds the passphrase of --encrypt-passphrase and
// --passphrase when set (else they ask on the terminal).
const passphraseEnv = "IB_ENCRYPT_PASSPHRASE"

// encryptFlags are the flags that seal chosen files as age files.
type encryptFlags struct {
	to         []string
	patterns   []string
	all        bool
	passphrase bool
}

func (e *encryptFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.StringArrayVar(&e.to, "encrypt-to", nil, "encrypt chosen files to this age recipient (age1…) or recipients file (repeatable); the server and this host can then not read them")
	f.StringArrayVar(&e.patterns, "encrypt", nil, "encrypt the files this pattern matches, gitignore syntax (repeatable), e.g. priv_validator_key.json or keystore/")
	f.BoolVar(&e.all, "encrypt-all", false, "encrypt every file's content")
	f.BoolVar(&e.passphrase, "encrypt-passphrase", false, "encrypt chosen files to a passphrase instead of recipients (asked twice, or read from "+passphraseEnv+"); costs about a second per file each way")
}

// resolve merges the flags over the config table, checks them (before any
// server is contacted) and returns what to seal, or nil. Patterns add up;
// --encrypt-to replaces the table's encrypt_to. With a key, the preset's
// secrets are encrypted too (the caller keeps them in the backup).
func (e *encryptFlags) resolve(c *cobra.Command, cfg config.BackupSettings, env *cli.Env, secrets []string) (*backup.Encrypt, error) {
	to := cfg.EncryptTo
	if c.Flags().Changed("encrypt-to") {
		to = e.to
	}
	keyed := len(to) > 0 || e.passphrase
	patterns := slices.Concat(cfg.Encrypt, e.patterns)
	if keyed {
		patterns = append(patterns, secrets...)
	}
	all := e.all || cfg.EncryptAll
	chosen := all || len(patterns) > 0
	switch {
	case !chosen && !keyed:
		return nil, nil
	case !chosen:
		return nil, cli.Usagef("--encrypt-to/--encrypt-passphrase: say which files with --encrypt PATTERN, --encrypt-all or a --preset (its secrets)")
	case !keyed:
		return nil, cli.Usagef("--encrypt/--encrypt-all need --encrypt-to RECIPIENT (ib key generate makes one) or --encrypt-passphrase")
	case len(to) > 0 && e.passphrase:
		return nil, cli.Usagef("--encrypt-passphrase goes alone: an age file encrypted to a passphrase has no other recipient")
	}
	var rs []age.Recipient
	if e.passphrase {
		p, err := cli.NewPassphrase(env, passphraseEnv, "passphrase to encrypt with")()
		if err != nil {
			return nil, cli.Usagef("--encrypt-passphrase: %v", err)
		}
		r, err := encrypt.PassphraseRecipient(p)
		if err != nil {
			return nil, cli.Usagef("--encrypt-passphrase: %v", err)
		}
		rs = []age.Recipient{r}
	} else {
		var err error
		if rs, err = encrypt.Recipients(to); err != nil {
			return nil, cli.Usagef("--encrypt-to: %v", err)
		}
	}
	return &backup.Encrypt{Recipients: rs, Patterns: ignore.Excludes("--encrypt", patterns), All: all}, nil
}

// decryptFlags are the flags of the commands that read encrypted files.
type decryptFlags struct {
	identities []string
	passphrase bool
}

func (d *decryptFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.StringArrayVar(&d.identities, "identity", nil, "decrypt encrypted files with this age identity file (repeatable; one protected with a passphrase asks for it, or reads IB_IDENTITY_PASSPHRASE); default: identity in the client config")
	f.BoolVar(&d.passphrase, "passphrase", false, "decrypt files encrypted with --encrypt-passphrase (asked, or read from "+passphraseEnv+")")
}

// load reads the identities: the flags' (now), else the client config's
// (when an encrypted file needs it, so that a restore of plain files never
// asks for its passphrase).
func (d *decryptFlags) load(env *cli.Env, s cli.Client) ([]age.Identity, error) {
	read := func(p string) ([]age.Identity, error) {
		return encrypt.Identities(p, cli.Passphrase(env, "IB_IDENTITY_PASSPHRASE", "passphrase of "+p))
	}
	var out []age.Identity
	for _, p := range d.identities {
		ids, err := read(p)
		if err != nil {
			return nil, cli.Usagef("--identity: %v", err)
		}
		out = append(out, ids...)
	}
	if len(d.identities) == 0 && s.Identity != "" {
		out = append(out, encrypt.Lazy(func() ([]age.Identity, error) {
			ids, err := read(s.Identity)
			if err != nil {
				return nil, fmt.Errorf("identity %s (client config): %w", s.Identity, err)
			}
			return ids, nil
		}))
	}
	if d.passphrase {
		p, err := cli.Passphrase(env, passphraseEnv, "passphrase the files were encrypted with")()
		if err != nil {
			return nil, cli.Usagef("--passphrase: %v", err)
		}
		id, err := encrypt.PassphraseIdentity(p)
		if err != nil {
			return nil, cli.Usagef("--passphrase: %v", err)
		}
		out = append(out, id)
	}
	return out, nil
}
