package backup

import (
	"context"
	"errors"
	"ib/internal/apiclient"
	"io"
	"testing"
	"time"
)

// stalledAPI takes the commit body and reads none of it until released.
type stalledAPI struct {
	API
	release chan struct{}
}

func (s *stalledAPI) Commit(ctx context.Context, body func() (io.ReadCloser, int64, error), h apiclient.CommitHeader) (apiclient.Committed, error) {
	rc, _, err := body()
	if err != nil {
		return apiclient.Committed{}, err
	}
	<-s.release
	_, err = io.Copy(io.Discard, rc)
	return apiclient.Committed{}, err
}

// TestStreamNeverHoldsTheBackup: with a server that does not read the
// manifest, writes into the stream never block; once the queue is full the
// stream is abandoned (its body cut, so nothing can be recorded) and
// finish says to commit from the spool.
func TestStreamNeverHoldsTheBackup(t *testing.T) {
	api := &stalledAPI{release: make(chan struct{})}
	r := &run{api: api}
	s := r.startStream(context.Background(), []byte(`{"entries":[`))
	entry := make([]byte, 1000)
	done := make(chan struct{})
	go func() {
		for range (streamQueue + 4) * streamChunk / len(entry) {
			s.Write(entry)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("writes into the stream blocked on a server that does not read")
	}
	close(api.release)
	_, ok, err := s.finish([]byte("]}"))
	if ok || !errors.Is(err, errStreamBehind) {
		t.Fatalf("finish after a full queue: ok=%v err=%v; want the stream abandoned for being behind", ok, err)
	}
}
