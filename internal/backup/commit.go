package backup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"ib/internal/apiclient"
	"ib/internal/block"
	"ib/internal/manifest"
)

func bufReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 256<<10) }

// spoolEntries reads the entries of the manifest spool (its first size
// bytes: entries separated by commas).
func spoolEntries(spool *os.File, size int64) *manifest.Reader {
	rd := io.MultiReader(bytes.NewReader([]byte(`{"entries":[`)), io.NewSectionReader(spool, 0, size), bytes.NewReader([]byte("]}")))
	return manifest.NewReader(bufReader(rd), nil)
}

// commitFrame is what comes before and after the entries in a commit body.
func commitFrame(tags, labels manifest.Tags, key string) (head, tail []byte, err error) {
	head, err = json.Marshal(struct {
		Tags   manifest.Tags `json:"tags"`
		Labels manifest.Tags `json:"labels,omitempty"`
		Key    string        `json:"idempotency_key"`
	}{tags, labels, key})
	if err != nil {
		return nil, nil, err
	}
	head = append(head[:len(head)-1], []byte(`,"entries":[`)...)
	return head, []byte("]}"), nil
}

// commit ends the streamed manifest and, if the stream was abandoned,
// sends the spooled one. When the server lacks blocks (for example
// garbage-collected since the previous backup it reuses), it uploads them
// from the files and commits again.
func (r *run) commit(ctx context.Context, spool *os.File, head, tail []byte, stream *commitStream) (apiclient.Committed, error) {
	ans, ok, err := stream.finish(tail)
	if ok && len(ans.Missing) == 0 {
		return ans, nil
	}
	if apiclient.IsLocked(err) {
		return apiclient.Committed{}, fmt.Errorf("commit: %w", err)
	}
	if !ok {
		r.opts.Log.Debug("streamed commit abandoned; committing the spooled manifest", "err", err)
	}
	return r.commitSpool(ctx, spool, head, tail, ans, ok)
}

// commitSpool commits the spooled manifest, uploading what the server
// lacks between rounds; answered is the first round's answer when the
// streamed commit gave one. An encrypted file reused from the previous
// backup whose blocks the server lacks cannot be uploaded from the file
// (its age file was made once): it is a *resealError.
func (r *run) commitSpool(ctx context.Context, spool *os.File, head, tail []byte, ans apiclient.Committed, answered bool) (apiclient.Committed, error) {
	fi, err := spool.Stat()
	if err != nil {
		return apiclient.Committed{}, fmt.Errorf("manifest spool: %w", err)
	}
	length := int64(len(head)) + fi.Size() + int64(len(tail))
	body := func() (io.ReadCloser, int64, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(head),
			io.NewSectionReader(spool, 0, fi.Size()), bytes.NewReader(tail))), length, nil
	}
	for round := 1; ; round++ {
		if !answered {
			if ans, err = r.api.Commit(ctx, body, r.header); err != nil {
				return apiclient.Committed{}, fmt.Errorf("commit: %w", err)
			}
		}
		answered = false
		if len(ans.Missing) == 0 {
			return ans, nil
		}
		if round == 5 { // garbage collection may race a few times with a grace of 0
			return apiclient.Committed{}, fmt.Errorf("commit: the server still lacks %d blocks after %d uploads (first: %s)", len(ans.Missing), round-1, ans.Missing[0])
		}
		r.opts.Log.Info("server lacks blocks; uploading them", "count", len(ans.Missing))
		if err := r.uploadFromSpool(ctx, spool, fi.Size(), ans.Missing); err != nil {
			return apiclient.Committed{}, err
		}
	}
}

// resealError names the reused encrypted files whose blocks the server
// lacks: they are encrypted again, the manifest rewritten, and the backup
// commits that.
type resealError struct{ paths map[string]bool }

func (e *resealError) Error() string {
	return fmt.Sprintf("the server lacks blocks of %d encrypted files reused from the previous backup", len(e.paths))
}

// uploadFromSpool finds the missing CIDs' files in the spooled manifest and
// uploads those blocks.
func (r *run) uploadFromSpool(ctx context.Context, spool *os.File, size int64, missing []string) error {
	reseal := map[string]bool{}
	want := make(map[string]bool, len(missing))
	for _, c := range missing {
		if block.IsInline(c) {
			return fmt.Errorf("commit: the server says it lacks block %.80s, whose bytes are in its CID: a server that does not take inline CIDs", c)
		}
		want[c] = true
	}
	mr := spoolEntries(spool, size)
	for {
		e, err := mr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("manifest spool: %w", err)
		}
		var off int64
		for _, b := range e.Blocks {
			if want[b.CID] && e.Encryption != "" && !r.sealed.has(e.Path) {
				delete(want, b.CID)
				reseal[e.Path] = true
			} else if want[b.CID] {
				delete(want, b.CID)
				s := source{cid: b.CID, path: e.Path, abs: r.sealed.source(e.Path, filepath.Join(r.root, filepath.FromSlash(e.Path))), off: off, size: b.Size}
				var err error
				if s.size < packLimit {
					err = r.uploadPack(ctx, []source{s})
				} else {
					err = r.upload(ctx, s)
				}
				if err != nil {
					return err
				}
			}
			off += b.Size
		}
	}
	if len(want) > 0 {
		for c := range want {
			return fmt.Errorf("commit: the server lacks block %s, which this backup does not hold", c)
		}
	}
	if len(reseal) > 0 {
		return &resealError{paths: reseal}
	}
	return nil
}
