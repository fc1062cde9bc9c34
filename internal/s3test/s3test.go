// Package s3test runs a real S3-compatible server for tests: versitygw with
// its posix backend on a temporary directory, on a free loopback port. The
// binary is built from the tools module (tools/go.mod pins the version) the
// first time it is needed; IB_VERSITYGW names another one.
package s3test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Server is a running versitygw.
type Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Dir       string // the posix backend's root: buckets are folders

	addr string
	cmd  *exec.Cmd
	out  *bytes.Buffer
}

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary returns the versitygw binary, building it if needed.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv("IB_VERSITYGW"); p != "" {
			binary = p
			return
		}
		_, file, _, _ := runtime.Caller(0)
		tools := filepath.Join(filepath.Dir(file), "..", "..", "tools")
		binary = filepath.Join(tools, "bin", "versitygw")
		if _, err := os.Stat(binary); err == nil {
			return
		}
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", binary, "github.com/versity/versitygw/cmd/versitygw")
		cmd.Dir = tools
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build versitygw in %s: %v\n%s", tools, err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// Start runs a versitygw on a fresh directory; it stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &Server{Endpoint: "http://" + addr, AccessKey: "ibtestaccess", SecretKey: "ibtestsecret0123456789", Dir: t.TempDir(), addr: addr}
	s.Restart(t)
	t.Cleanup(s.Stop)
	return s
}

// Restart starts the server again on the same port and directory.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.out = &bytes.Buffer{}
	s.cmd = exec.Command(Binary(t), "--port", s.addr, "--health", "/health", "posix", s.Dir)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.Endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			s.Stop()
			t.Fatalf("versitygw did not become healthy on %s: %v\n%s", s.addr, err, s.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (idempotent).
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}
