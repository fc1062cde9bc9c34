package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"ib/internal/apiclient"
	"ib/internal/block"
	"ib/internal/cli"
	"ib/internal/manifest"
)

func newCat(o *common) *cobra.Command {
	c := &cobra.Command{
		Use:   "cat ID|latest [--KEY=VALUE ...] PATH",
		Short: "Write one file of a backup to stdout, each block checked before it is written",
		Example: `  ib backup cat latest --node=cosmoshub config/genesis.json | jq .chain_id
  ib backup cat 42 data/priv_validator_state.json`,
		Args: cli.Args(2, 2),
		RunE: func(c *cobra.Command, args []string) error {
			tags, err := cli.ParseTags(o.tags)
			if err != nil {
				return err
			}
			api, _, err := o.client(false, patient)
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
			return catBlocks(c.Context(), api, e, o.env.Stdout)
		},
	}
	o.tagFlags(c)
	return c
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
