package backup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"ib/internal/apiclient"
	"ib/internal/cli"
	"ib/internal/diff"
	"ib/internal/ignore"
	"ib/internal/manifest"
	"ib/internal/scan"
)

func newDiff(o *common) *cobra.Command {
	var asJSON, content bool
	var decrypt decryptFlags
	c := &cobra.Command{
		Use:   "diff ID|latest [--KEY=VALUE ...] PATH | diff ID1 ID2",
		Short: "Compare a folder with a backup, or two backups (exit 0 same, 1 different, 2 error)",
		Long: `Compare a live folder with a backup (walked as a backup would, honouring its ignore files), or
two backups from their manifests alone. Lines: "+ path" added, "- path" removed, "M path"
content changed, "m path" mode, mtime or owner only, "T path" type changed, "R old -> new"
renamed or moved (the same blocks at another path). A second argument that is a number and not
a folder here is a backup ID. Exit status 0 identical, 1 differences, 2 error, as diff(1).`,
		Example: `  ib backup diff latest --node=tezos /var/lib/tezos
  ib backup diff 41 42 --json`,
		Args: cli.Args(2, 2),
		RunE: func(c *cobra.Command, args []string) error {
			err := runDiff(c.Context(), o, args, asJSON, content, &decrypt)
			if _, ok := err.(cli.Exit); ok || err == nil {
				return err
			}
			return cli.Exit{Code: 2, Err: err}
		},
	}
	o.tagFlags(c)
	c.Flags().BoolVar(&asJSON, "json", false, "one JSON object per change")
	c.Flags().BoolVar(&content, "content", false, "with a folder: hash files whose size and mtime match, to find changed content (encrypted files: decrypted with --identity, else compared by size and mtime alone)")
	decrypt.add(c)
	return c
}

func runDiff(ctx context.Context, o *common, args []string, asJSON, content bool, decrypt *decryptFlags) error {
	tags, err := cli.ParseTags(o.tags)
	if err != nil {
		return err
	}
	api, settings, err := o.client(false, quick)
	if err != nil {
		return err
	}
	ids, err := decrypt.load(o.env, settings)
	if err != nil {
		return err
	}
	id, err := resolveID(ctx, api, args[0], tags, "diff")
	if err != nil {
		return err
	}
	old, err := openManifest(ctx, api, id)
	if err != nil {
		return err
	}
	defer old.Close()
	var cur diff.Source
	var opts diff.Options
	var unread int // encrypted files --content could not decrypt
	live := true
	if n, perr := strconv.ParseInt(args[1], 10, 64); perr == nil && n > 0 {
		if fi, serr := os.Stat(args[1]); serr != nil || !fi.IsDir() {
			live = false
			m, err := openManifest(ctx, api, n)
			if err != nil {
				return err
			}
			defer m.Close()
			cur = m
		}
	}
	if live {
		if fi, err := os.Stat(args[1]); err != nil || !fi.IsDir() {
			return fmt.Errorf("diff: %s is not a folder here (nor a backup ID)", args[1])
		}
		l := diff.Live(ctx, args[1], scan.Options{Ignore: ignore.New()})
		defer l.Close()
		cur = l
		if content {
			opts.Content = sealedContent(ctx, api, ids, args[1], diff.HashLive(args[1]), &unread)
		}
	}
	w := bufio.NewWriter(o.env.Stdout)
	n := 0
	err = diff.Compare(old, cur, opts, func(ch diff.Change) error {
		n++
		if asJSON {
			b, _ := json.Marshal(ch)
			w.Write(b)
			return w.WriteByte('\n')
		}
		_, err := fmt.Fprintln(w, ch)
		return err
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("diff: %w", err)
	}
	if unread > 0 {
		fmt.Fprintf(o.env.Stderr, "%s compared by size and mtime alone: pass --identity to compare their content\n", plural(int64(unread), "encrypted file"))
	}
	if n == 0 {
		return nil
	}
	if live && !asJSON {
		fmt.Fprintf(o.env.Stderr, "%d difference(s) between backup %d and %s; `ib backup restore %d %s --force --delete` brings it back to the backup\n",
			n, id, args[1], id, shellQuote(args[1]))
	}
	return cli.Exit{Code: 1}
}

// checkedManifest is a backup's manifest as a diff source, each entry
// checked (the client trusts no server).
type checkedManifest struct {
	rc   io.ReadCloser
	next func() (*manifest.Entry, error)
}

func openManifest(ctx context.Context, api *apiclient.Client, id int64) (*checkedManifest, error) {
	rc, err := api.Manifest(ctx, id)
	if err != nil {
		return nil, notFound(err, fmt.Sprintf("backup %d", id))
	}
	return &checkedManifest{rc: rc, next: manifest.Checked(manifest.NewReader(bufio.NewReaderSize(rc, 256<<10), nil))}, nil
}

func (m *checkedManifest) Next() (*manifest.Entry, error) { return m.next() }

func (m *checkedManifest) Close() error { return m.rc.Close() }

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@%+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sealedContent is diff --content for backups with encrypted files: an
// encrypted file is fetched, decrypted with ids and compared with the live
// file byte by byte; without ids it counts as the same (its size and
// mtime matched) and is counted in unread. Plain files go to plain.
func sealedContent(ctx context.Context, api *apiclient.Client, ids []age.Identity, root string, plain func(old, cur *manifest.Entry) (bool, error), unread *int) func(old, cur *manifest.Entry) (bool, error) {
	return func(old, cur *manifest.Entry) (bool, error) {
		if old.Encryption == "" {
			return plain(old, cur)
		}
		if len(ids) == 0 {
			*unread++
			return true, nil
		}
		f, err := os.Open(filepath.Join(root, filepath.FromSlash(cur.Path)))
		if err != nil {
			return false, fmt.Errorf("diff: %w", err)
		}
		defer f.Close()
		cw := &compareWriter{r: bufio.NewReader(f)}
		err = catSealed(ctx, api, old, ids, cw)
		if errors.Is(err, errDiffers) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		_, err = cw.r.ReadByte()
		return err == io.EOF, nil // anything after: the live file is longer
	}
}

var errDiffers = errors.New("content differs")

// compareWriter compares what is written to it with what r reads.
type compareWriter struct {
	r   *bufio.Reader
	buf []byte
}

func (c *compareWriter) Write(p []byte) (int, error) {
	if cap(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	b := c.buf[:len(p)]
	if _, err := io.ReadFull(c.r, b); err != nil || !bytes.Equal(b, p) {
		return 0, errDiffers
	}
	return len(p), nil
}
