//go:build !unix

package peertest

import (
	"os"
	"os/exec"
	"syscall"
)

// The peers (postfix, aria2, dovecot, public-inbox) run on unix only;
// these stand-ins let the packages whose tests import peertest be built
// and vetted elsewhere.

// ownGroup does nothing here: there are no process groups to join.
func ownGroup(cmd *exec.Cmd) {}

// signalGroup kills process pid (there is no group to signal here).
func signalGroup(pid int, sig syscall.Signal) error { return signalPID(pid, sig) }

// signalPID kills process pid, whatever sig is.
func signalPID(pid int, sig syscall.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

// processAlive reports false: postfix, whose master it watches, runs on
// unix only.
func processAlive(pid int) bool { return false }
