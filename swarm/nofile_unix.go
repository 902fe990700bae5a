//go:build unix

package swarm

import "syscall"

// openFileLimit returns the process's descriptor limit (RLIMIT_NOFILE,
// the soft one, which Go raises to the hard one at start); 0 if unknown.
func openFileLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 0
	}
	return int(r.Cur)
}
