//go:build unix

package hook

import (
	"os/exec"
	"syscall"
)

// killGroup makes the hook the leader of its own process group, and a
// cancel kill the whole group: a shell's children (sleep, a node's stop
// command) die with it.
func killGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
