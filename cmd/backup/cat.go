package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"ib/internal/apiclient"
	"ib/internal/block"
	"ib/internal/cli"
	"ib/internal/encrypt"
	"ib/internal/manifest"
)

func newCat(o *common) *cobra.Command {
	var (
		decrypt decryptFlags
		raw     bool
	)
	c := &cobra.Command{
		Use:   "cat ID|latest [--KEY=VALUE ...] PATH",
		Short: "Write one file of a backup to stdout, each block checked before it is written",
		Example: `  ib backup cat latest --node=cosmoshub config/genesis.json | jq .chain_id
  ib backup cat 42 data/priv_validator_state.json
  ib backup cat latest --node=cosmoshub config/priv_validator_key.json --identity key.txt`,
		Args: cli.Args(2, 2),
		RunE: func(c *cobra.Command, args []string) error {
			tags, err := cli.ParseTags(o.tags)
			if err != nil {
				return err
			}
			api, settings, err := o.client(false, patient)
			if err != nil {
				return err
			}
			ids, err := decrypt.load(o.env, settings)
			if err != nil {
				return err
			}
			id, err := resolveID(c.Context(), api, args[0], tags, "cat")
			if err != nil {
				return err
			}
			e, err := findEntry(c.Context(), api, id, args[1])
			if err != nil {
				return err
			}
			if e.Encryption == "" || raw {
				return catBlocks(c.Context(), api, e, o.env.Stdout)
			}
			if len(ids) == 0 {
				return fmt.Errorf("%s is encrypted (age): pass --identity FILE (or --passphrase) to decrypt it, or --raw to write the age file as stored", e.Path)
			}
			return catSealed(c.Context(), api, e, ids, o.env.Stdout)
		},
	}
	o.tagFlags(c)
	decrypt.add(c)
	c.Flags().BoolVar(&raw, "raw", false, "write an encrypted file as stored, an age file (age -d decrypts it)")
	return c
}

// catSealed writes an encrypted file's plaintext to w: its blocks, each
// checked, are decrypted as they come (age authenticates every 64 KiB
// chunk before it is written, so nothing forged reaches w).
func catSealed(ctx context.Context, api *apiclient.Client, e *manifest.Entry, ids []age.Identity, w io.Writer) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(catBlocks(ctx, api, e, pw)) }()
	defer pr.Close()
	plain, err := encrypt.Reader(pr, ids)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	n, err := io.Copy(w, plain)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	if n != e.PlainSize {
		return fmt.Errorf("%s: decrypted to %d bytes, the manifest says %d", e.Path, n, e.PlainSize)
	}
	return nil
}

// findEntry reads a backup's manifest (checked) up to the entry of a file.
func findEntry(ctx context.Context, api *apiclient.Client, id int64, p string) (*manifest.Entry, error) {
	if err := manifest.CheckPath(p); err != nil {
		return nil, cli.UsageError{Err: fmt.Errorf("path %q: %w", p, err)}
	}
	m, err := openManifest(ctx, api, id)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	for {
		e, err := m.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("backup %d has no %s", id, p)
		}
		if err != nil {
			return nil, fmt.Errorf("backup %d: %w", id, err)
		}
		if e.Path != p {
			continue
		}
		if !e.Type.HasContent() {
			return nil, fmt.Errorf("%s in backup %d is a %s, not a file", p, id, e.Type)
		}
		return e, nil
	}
}

// catBlocks writes a file's blocks to w, each decoded aside and checked
// against its CID before a byte of it is written: a bad block stops the
// output at the end of the last good one.
func catBlocks(ctx context.Context, api *apiclient.Client, e *manifest.Entry, w io.Writer) error {
	var mem bytes.Buffer
	var tmp *os.File
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	for _, b := range e.Blocks {
		want, err := block.ParseCID(b.CID)
		if err != nil {
			return err
		}
		var aside io.Writer
		if b.Size <= 8<<20 {
			mem.Reset()
			aside = &mem
		} else {
			if tmp == nil {
				if tmp, err = os.CreateTemp("", "ib-cat-*"); err != nil {
					return err
				}
			}
			if err := tmp.Truncate(0); err != nil {
				return err
			}
			if _, err := tmp.Seek(0, io.SeekStart); err != nil {
				return err
			}
			aside = tmp
		}
		rc, err := api.GetBlock(ctx, b.CID)
		if err != nil {
			return fmt.Errorf("%s: block %s: %w", e.Path, b.CID, err)
		}
		n, err := block.Verify(rc, want, b.Size, aside)
		rc.Close()
		if err == nil && n != b.Size {
			err = fmt.Errorf("%d bytes, the manifest says %d", n, b.Size)
		}
		if err != nil {
			return fmt.Errorf("%s: block %s: %w (nothing of it was written)", e.Path, b.CID, err)
		}
		if b.Size <= 8<<20 {
			_, err = w.Write(mem.Bytes())
		} else {
			if _, err = tmp.Seek(0, io.SeekStart); err == nil {
				_, err = io.Copy(w, tmp)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
