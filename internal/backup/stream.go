package backup

import (
	"context"
	"errors"
	"ib/internal/apiclient"
	"io"
	"sync"
	"time"
)

// A commitStream sends the manifest to the server while the backup is
// still walking, so that the server reads and checks it as it is written
// and only records it once the body ends, which the client does after its
// last upload. A no-change backup then waits for the database alone, not
// for the server to read the whole manifest too.
//
// The stream never holds the backup back: entries go through a bounded
// queue, and when the queue is full or the request fails the stream is
// abandoned (its request cut, so the server records nothing) and the
// manifest is committed from the spool as before. Both attempts carry the
// same idempotency key.
type commitStream struct {
	pw     *io.PipeWriter
	queue  chan []byte
	mu     sync.Mutex
	cur    []byte
	broken bool
	closed bool

	done chan struct{} // closed when the request has returned
	ans  apiclient.Committed
	err  error
}

const (
	streamChunk = 64 << 10
	streamQueue = 64 // chunks: at most 4 MiB held
)

// streamKeepAlive is how often the stream sends a space when it has had
// nothing to send (the server cuts bodies silent for 60 s).
var streamKeepAlive = 20 * time.Second

var errStreamBehind = errors.New("the server reads the manifest more slowly than the backup writes it")

// startStream starts the commit request; head is the body up to the
// entries array's first entry.
func (r *run) startStream(ctx context.Context, head []byte) *commitStream {
	pr, pw := io.Pipe()
	s := &commitStream{pw: pw, queue: make(chan []byte, streamQueue), done: make(chan struct{})}
	s.queue <- head
	first := true
	body := func() (io.ReadCloser, int64, error) {
		if !first {
			return nil, 0, errors.New("a streamed manifest cannot be sent again")
		}
		first = false
		return pr, -1, nil
	}
	go func() {
		defer close(s.done)
		s.ans, s.err = r.api.Commit(ctx, body, r.header)
		pr.CloseWithError(errors.New("commit request ended"))
		if apiclient.IsLocked(s.err) && r.onLocked != nil {
			r.onLocked(s.err)
		}
	}()
	go s.pump()
	return s
}

// pump writes the queued chunks into the request body, and a space when
// nothing came for a while.
func (s *commitStream) pump() {
	tick := time.NewTicker(streamKeepAlive)
	defer tick.Stop()
	var failed error
	for {
		select {
		case chunk, ok := <-s.queue:
			if !ok {
				if failed == nil {
					s.pw.Close()
				}
				return
			}
			if failed == nil {
				if _, err := s.pw.Write(chunk); err != nil {
					failed = err
					s.breakOff(err)
				}
			}
		case <-tick.C:
			if failed == nil && len(s.queue) == 0 {
				if _, err := s.pw.Write([]byte{' '}); err != nil {
					failed = err
					s.breakOff(err)
				}
			}
		}
	}
}

// Write queues manifest bytes; it never blocks and never fails.
func (s *commitStream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken || s.closed {
		return len(p), nil
	}
	s.cur = append(s.cur, p...)
	if len(s.cur) >= streamChunk {
		s.sendLocked()
	}
	return len(p), nil
}

func (s *commitStream) sendLocked() {
	if len(s.cur) == 0 {
		return
	}
	select {
	case s.queue <- s.cur:
		s.cur = make([]byte, 0, streamChunk+4<<10)
	default:
		s.breakLocked(errStreamBehind)
	}
}

func (s *commitStream) breakOff(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.breakLocked(err)
}

// breakLocked abandons the stream: the body is cut, so the server sees an
// incomplete manifest and records nothing.
func (s *commitStream) breakLocked(err error) {
	if s.broken {
		return
	}
	s.broken = true
	s.cur = nil
	s.pw.CloseWithError(err)
}

// finish ends the body with tail and waits for the server's answer. ok is
// false if the stream was abandoned; the caller commits from the spool.
func (s *commitStream) finish(tail []byte) (ans apiclient.Committed, ok bool, err error) {
	s.mu.Lock()
	if !s.broken {
		s.cur = append(s.cur, tail...)
		s.sendLocked()
	}
	s.closed = true
	close(s.queue)
	broken := s.broken
	s.mu.Unlock()
	<-s.done
	if broken {
		return apiclient.Committed{}, false, s.err
	}
	return s.ans, s.err == nil, s.err
}

// abort cuts the body (the backup failed) and waits for the request.
func (s *commitStream) abort(err error) {
	s.mu.Lock()
	s.breakLocked(err)
	if !s.closed {
		s.closed = true
		close(s.queue)
	}
	s.mu.Unlock()
	<-s.done
}
