package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"ib/internal/manifest"
	"ib/internal/metadb"
)

// publishEvery is how many entries the request spools between telling the
// stage how far the file holds whole ones.
const publishEvery = 256

// commitIn is a commit request's body as it is read: the head's fields,
// the spool and the stage reading it.
type commitIn struct {
	feed   *feed
	tags   manifest.Tags
	labels manifest.Tags
	key    string
	staged chan stageOutcome // nil until the stage starts
	ended  time.Time         // when the body had been read
	now    func() time.Time
}

type stageOutcome struct {
	res commitResult
	err error
}

// header decodes one field of the head. Tags given twice are refused: the
// stage may have begun with the first.
func (in *commitIn) header(k string, dec *json.Decoder) error {
	switch k {
	case "tags":
		if in.tags != nil {
			return errors.New("tags given twice")
		}
		return dec.Decode(&in.tags)
	case "labels":
		return dec.Decode(&in.labels)
	case "idempotency_key":
		return dec.Decode(&in.key)
	default:
		return fmt.Errorf("unknown field")
	}
}

// checkHead validates the head's fields known so far.
func (in *commitIn) checkHead() error {
	if err := in.tags.Check(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(in.key) > 128 {
		return fmt.Errorf("%w: idempotency_key longer than 128 bytes", ErrInvalid)
	}
	return nil
}

// startStage starts recording as soon as the tags are known (with the
// first entry, as clients send them; at the end if they come after the
// entries).
func (in *commitIn) startStage(ctx context.Context, meta Committer) {
	in.staged = make(chan stageOutcome, 1)
	tags, key := in.tags, in.key
	go func() {
		res, err := stage(ctx, meta, in.feed, tags, key)
		in.staged <- stageOutcome{res, err}
	}()
}

// read reads, validates and spools the body while the stage records it,
// and returns the stage's outcome and the number of entries. A body that
// fails ends the feed with its error, and read waits for the stage to be
// dropped.
func (in *commitIn) read(ctx context.Context, meta Committer, body io.Reader) (commitResult, int, error) {
	count, err := in.spool(ctx, meta, body)
	if err != nil {
		in.feed.end(metadb.Head{}, err)
		if in.staged != nil {
			<-in.staged
		}
		return commitResult{}, 0, err
	}
	in.ended = in.now()
	if in.staged == nil {
		in.startStage(ctx, meta)
	}
	in.feed.end(metadb.Head{Tags: in.tags, Labels: in.labels, Key: in.key}, nil)
	out := <-in.staged
	return out.res, count, out.err
}

// spool validates and spools the body's entries, publishing them to the
// feed, and starts the stage once the tags are known.
func (in *commitIn) spool(ctx context.Context, meta Committer, body io.Reader) (int, error) {
	r := manifest.NewReader(body, in.header)
	var v manifest.Validator
	sw := bufio.NewWriterSize(in.feed.file, 256<<10)
	var buf []byte
	var written int64
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		if err := v.Add(e); err != nil {
			return 0, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		buf = appendEntry(buf[:0], e)
		if _, err := sw.Write(buf); err != nil {
			return 0, fmt.Errorf("commit: temp file: %w", err)
		}
		written += int64(len(buf))
		if in.staged == nil && in.tags != nil {
			if err := in.checkHead(); err != nil {
				return 0, err
			}
			in.startStage(ctx, meta)
		}
		if v.Count()%publishEvery == 0 {
			if err := sw.Flush(); err != nil {
				return 0, fmt.Errorf("commit: temp file: %w", err)
			}
			in.feed.publish(written)
		}
	}
	if err := in.finishBody(body, sw, v.Count()); err != nil {
		return 0, err
	}
	in.feed.publish(written)
	return v.Count(), nil
}

// finishBody checks the whole manifest once its entries are read, reads
// the body to its end and flushes the spool.
func (in *commitIn) finishBody(body io.Reader, sw *bufio.Writer, count int) error {
	if count == 0 {
		return fmt.Errorf("%w: manifest has no entries", ErrInvalid)
	}
	if err := in.checkHead(); err != nil {
		return err
	}
	if err := in.labels.CheckLabels(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := sw.Flush(); err != nil {
		return fmt.Errorf("commit: temp file: %w", err)
	}
	return nil
}
