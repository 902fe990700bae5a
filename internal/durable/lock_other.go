//go:build !unix

package durable

import "os"

// Lock stands in for flock(2) where there is none: it opens (creates) the
// lock file but excludes no other process, so writers are serialised only
// by their package's in-process mutexes there.
type Lock struct{ f *os.File }

// LockFile opens (creates, mode 0644) path; it excludes nothing here.
func LockFile(path string) (*Lock, error) { return lock(path) }

// TryLockFile opens (creates, mode 0644) path; it excludes nothing here
// and never reports the lock as held.
func TryLockFile(path string) (*Lock, error) { return lock(path) }

func lock(path string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &Lock{f}, nil
}

// Unlock closes the lock file; on a nil Lock it does nothing.
func (l *Lock) Unlock() {
	if l != nil {
		l.f.Close()
	}
}
