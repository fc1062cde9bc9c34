package lock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLockAcrossProcesses: a second process cannot take a held lock, and
// takes it once the first one lets go.
func TestLockAcrossProcesses(t *testing.T) {
	if os.Getenv("IB_LOCK_CHILD") != "" {
		_, err := Try(os.Getenv("IB_LOCK_CHILD"))
		if errors.Is(err, ErrLocked) {
			os.Stdout.WriteString("locked: " + err.Error())
			return
		}
		os.Stdout.WriteString("took it")
		return
	}
	path := filepath.Join(t.TempDir(), "locks", "set.lock")
	child := func() string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestLockAcrossProcesses$")
		cmd.Env = append(os.Environ(), "IB_LOCK_CHILD="+path)
		out, _ := cmd.Output()
		return string(out)
	}
	l, err := Try(path)
	if err != nil {
		t.Fatal(err)
	}
	if out := child(); !strings.Contains(out, "locked:") || !strings.Contains(out, "pid") {
		t.Fatalf("a second process while the lock is held: %q", out)
	}
	l.Release()
	if out := child(); !strings.Contains(out, "took it") {
		t.Fatalf("a second process after release: %q", out)
	}
}
