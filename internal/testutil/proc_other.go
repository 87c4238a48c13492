//go:build !unix

package testutil

import (
	"os"
	"os/exec"
)

// ownProcessGroup does nothing where there are no Unix process groups;
// the sshd tests skip there anyway.
func ownProcessGroup(cmd *exec.Cmd) {}

// kill ends pid.
func kill(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}
