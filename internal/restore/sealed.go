package restore

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"ib/internal/block"
	"ib/internal/encrypt"
	"ib/internal/manifest"
)

// Files whose content is an age file (manifest "encryption": "age") are
// restored by fetching their blocks into a spool, checked against their
// CIDs like any block, and decrypting the spool into the file: the
// plaintext never passes through anything but DEST.

// checkSealed fails, before anything is written, a restore that meets
// encrypted files without identities (unless it skips them), and one
// whose identities cannot open the first of them.
func checkSealed(ctx context.Context, api API, sealed []manifest.Entry, opts Options) error {
	if len(sealed) == 0 || opts.SkipEncrypted {
		return nil
	}
	if len(opts.Identities) == 0 {
		names := make([]string, len(sealed))
		for i, e := range sealed {
			names[i] = e.Path
		}
		return fmt.Errorf("%w: %s; give --identity FILE to decrypt them, or --skip-encrypted to leave them out",
			ErrEncrypted, strings.Join(names, ", "))
	}
	e := sealed[0]
	if len(e.Blocks) == 0 {
		return fmt.Errorf("%s: encrypted, and no content", e.Path)
	}
	// Only the age header is read (not the whole first block, which may be
	// 128 MiB): nothing is written from it, and the restore proper checks
	// every block against its CID.
	rc, err := api.GetBlock(ctx, e.Blocks[0].CID)
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	defer rc.Close()
	if _, err := encrypt.Reader(io.LimitReader(block.NewDecoder(rc), 1<<20), opts.Identities); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrEncrypted, e.Path, err)
	}
	return nil
}

// fetchVerified writes a block's content to w, checked against its CID.
func fetchVerified(ctx context.Context, api API, b manifest.Block, w io.Writer) error {
	want, err := block.ParseCID(b.CID)
	if err != nil {
		return err
	}
	rc, err := api.GetBlock(ctx, b.CID)
	if err != nil {
		return err
	}
	defer rc.Close()
	n, err := block.Verify(rc, want, b.Size, w)
	if err == nil && n != b.Size {
		err = fmt.Errorf("%w: %d bytes, the manifest says %d", errSize, n, b.Size)
	}
	return err
}

// skipSealed leaves one encrypted file out (SkipEncrypted).
func (r *run) skipSealed(e manifest.Entry) {
	r.res.Skipped++
	r.opts.Log.Info("encrypted: left out (--skip-encrypted)", "path", e.Path)
}

// restoreSealed restores one encrypted file.
func (r *run) restoreSealed(ctx context.Context, e manifest.Entry) error {
	spool, err := os.CreateTemp("", "ib-sealed-*.age")
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	bw := bufio.NewWriterSize(spool, 1<<20)
	for _, b := range e.Blocks {
		if err := fetchVerified(ctx, r.api, b, bw); err != nil {
			return fmt.Errorf("restore %s: block %s: %w", e.Path, b.CID, err)
		}
		r.delta.blocksFetched.Add(1)
		r.delta.bytesFetched.Add(b.Size)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	plain, err := encrypt.Reader(spool, r.opts.Identities)
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	tmp := tmpName(e.Path)
	f, err := r.create(tmp)
	if err != nil {
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	n, err := io.Copy(&progressWriter{w: f, c: r.opts.Counters}, plain)
	if err == nil && n != e.PlainSize {
		err = fmt.Errorf("decrypted %d bytes, the manifest says %d", n, e.PlainSize)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("restore %s: %w", e.Path, err)
	}
	r.res.Files++
	r.res.Bytes += n
	if err := r.place(f, tmp, e); err != nil {
		return err
	}
	r.opts.Counters.AddFile(0)
	return nil
}
