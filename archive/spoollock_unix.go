//go:build unix

package archive

import (
	"os"
	"syscall"
)

// spoolLock is an exclusive advisory lock (flock) on an open file.
type spoolLock struct{ f *os.File }

// lockSpool takes an exclusive flock on path (created when missing),
// blocking until it is free; with try set it returns (nil, nil) when the
// lock is held elsewhere.
func lockSpool(path string, try bool) (*spoolLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	how := syscall.LOCK_EX
	if try {
		how |= syscall.LOCK_NB
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if try && err == syscall.EWOULDBLOCK {
			return nil, nil
		}
		return nil, err
	}
	return &spoolLock{f}, nil
}

// unlock releases the lock.
func (l *spoolLock) unlock() {
	if l != nil {
		syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
	}
}
