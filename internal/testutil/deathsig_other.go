//go:build !linux

package testutil

import "os/exec"

// dieWithParent does nothing where the kernel offers no parent-death
// signal; the tests' cleanups stop what they started.
func dieWithParent(*exec.Cmd) {}
