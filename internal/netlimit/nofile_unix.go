//go:build unix

package netlimit

import "syscall"

// OpenFileLimit returns the process's descriptor limit (RLIMIT_NOFILE,
// the soft one, which Go raises to the hard one at start); 0 if unknown.
func OpenFileLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 0
	}
	return int(r.Cur)
}
