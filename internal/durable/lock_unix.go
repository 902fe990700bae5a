//go:build unix

package durable

import (
	"os"
	"syscall"
)

// Lock is an exclusive advisory lock (flock(2)) held on an open file. It
// excludes other processes, and other Locks on the same path in this
// process (each opens its own file description); it is released when
// Unlock is called or the process dies, so a killed holder leaves no
// stale lock behind.
type Lock struct{ f *os.File }

// LockFile takes an exclusive lock on path (created, mode 0644, when
// missing), blocking until it is free.
func LockFile(path string) (*Lock, error) { return lock(path, false) }

// TryLockFile takes an exclusive lock on path (created, mode 0644, when
// missing) when it is free; it returns (nil, nil) when the lock is held
// elsewhere.
func TryLockFile(path string) (*Lock, error) { return lock(path, true) }

func lock(path string, try bool) (*Lock, error) {
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
		return nil, &os.PathError{Op: "flock", Path: path, Err: err}
	}
	return &Lock{f}, nil
}

// Unlock releases the lock; on a nil Lock it does nothing.
func (l *Lock) Unlock() {
	if l != nil {
		syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		l.f.Close()
	}
}
