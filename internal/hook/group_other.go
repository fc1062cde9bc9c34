//go:build !unix

package hook

import "os/exec"

// killGroup: elsewhere the cancel kills the shell alone.
func killGroup(*exec.Cmd) {}
