//go:build unix

package gitstore

import (
	"fmt"
	"os"
	"syscall"
)

// fileLock is an exclusive advisory lock (flock) held on an open file.
type fileLock struct{ f *os.File }

// lockFile takes an exclusive flock on path (created when missing),
// blocking until it is free; with try set it returns (nil, nil) when the
// lock is held elsewhere.
func lockFile(path string, try bool) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("gitstore: open lock: %w", err)
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
		return nil, fmt.Errorf("gitstore: flock %s: %w", path, err)
	}
	return &fileLock{f}, nil
}

// unlock releases the lock.
func (l *fileLock) unlock() {
	if l != nil {
		syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
	}
}
