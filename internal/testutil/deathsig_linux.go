package testutil

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill cmd's process if the test's process
// dies first (a panic, a timeout, a kill), which runs no cleanup: a
// server it started must not outlive it.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
