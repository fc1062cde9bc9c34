//go:build linux

package cmd_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue 18: started as root with PUID/PGID (a container's entrypoint), the
// server gives its data and config dirs to that user and group and runs as
// them.
func TestServeAsPUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: only root can switch users (.ci/run and scripts/test run as root)")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // the test's own temp folder: the user must get through
	data, conf := filepath.Join(dir, "data"), filepath.Join(dir, "config")
	os.MkdirAll(filepath.Join(data, "old"), 0o700) // a volume of another owner
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c := exec.Command(ibBinary, "server", "serve", "--listen", addr, "--data-dir", data)
	c.Env = append(os.Environ(), "IB_CONFIG_DIR="+conf, "PUID=4242", "PGID=4243")
	var logs strings.Builder
	c.Stderr = &logs
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { c.Process.Signal(syscall.SIGTERM); c.Wait() }()
	waitFor(t, 10*time.Second, "the server (log: see below)", func() bool {
		if c.ProcessState != nil {
			t.Fatalf("the server exited: %s", logs.String())
		}
		conn, err := net.Dial("tcp", addr)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.Process.Pid))
	for _, want := range []string{"Uid:\t4242\t4242\t4242\t4242", "Gid:\t4243\t4243\t4243\t4243", "Groups:\t \n"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("process status lacks %q:\n%s", want, status)
		}
	}
	for _, p := range []string{data, filepath.Join(data, "ib.db"), filepath.Join(data, "old"), conf, filepath.Join(conf, "server.toml")} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 4242 || st.Gid != 4243 {
			t.Errorf("%s is owned by %d:%d, want 4242:4243", p, st.Uid, st.Gid)
		}
	}
	bad := exec.Command(ibBinary, "server", "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	bad.Env = append(os.Environ(), "IB_CONFIG_DIR="+t.TempDir(), "PGID=5")
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "PGID=5 without PUID") {
		t.Errorf("PGID without PUID: %v %s", err, out)
	}
}
