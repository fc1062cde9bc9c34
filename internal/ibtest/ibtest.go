// Package ibtest gives tests real parts: an ib server on a loopback port
// with its own SQLite file and block directory, trees of real files with
// real modes and mtimes, and a comparison of two trees that checks content,
// mode, mtime and link targets.
package ibtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"ib/internal/activity"
	"ib/internal/alerts"
	"ib/internal/server"
	"ib/internal/store"
)

// Server is a running ib server.
type Server struct {
	URL     string
	Token   string
	DataDir string
	Addr    string
	Store   *store.Store
	// Alerts and Activity are the running server's.
	Alerts   *alerts.Alerter
	Activity *activity.Log

	srv    *server.Server
	opts   []func(*server.Options)
	cancel context.CancelFunc
	done   chan error
}

// StartServer starts a server on 127.0.0.1 with a fresh data dir; it stops
// when the test ends. Retention is off unless opts say otherwise.
func StartServer(t testing.TB, opts ...func(*server.Options)) *Server {
	t.Helper()
	s := &Server{Token: "test-token-0123456789", DataDir: t.TempDir(), Addr: "127.0.0.1:0", opts: opts}
	s.Start(t)
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the server on its address and data dir.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the old listener's port may take a moment to free
		if ln, err = net.Listen("tcp", s.Addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s.Addr = ln.Addr().String()
	s.URL = "http://" + s.Addr
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	o := server.Options{DataDir: s.DataDir, Token: s.Token, Log: log, GCGrace: server.DefaultGCGrace}
	for _, f := range s.opts {
		f(&o)
	}
	srv, err := server.Open(context.Background(), o)
	if err != nil {
		ln.Close()
		t.Fatalf("open server: %v", err)
	}
	s.srv, s.Store, s.Alerts, s.Activity = srv, srv.Store, srv.Alerts, srv.Activity
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan error, 1)
	go func() { s.done <- srv.Serve(ctx, ln) }()
}

// Stop stops the server (idempotent).
func (s *Server) Stop() {
	if s.cancel == nil {
		return
	}
	s.srv.Close() // drop connections now, as a crash or kill would
	s.cancel()
	<-s.done
	s.cancel = nil
}

// SyncBuffer is a buffer that several goroutines may write (a server's log)
// while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// RandomBytes returns n random bytes.
func RandomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// WriteFile writes a file with a mode and an mtime.
func WriteFile(t testing.TB, path string, data []byte, mode fs.FileMode, mtime time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask-free
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// CountObjects counts the blocks in a server data dir's local block store.
func CountObjects(dataDir string) int {
	n := 0
	filepath.WalkDir(filepath.Join(dataDir, "blocks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && d.Name() == "tmp" {
			return filepath.SkipDir
		}
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}
