//go:build !unix

package gitstore

import (
	"fmt"
	"os"
)

// fileLock is a placeholder where flock is unavailable: appends are then
// serialised only within one process.
type fileLock struct{ f *os.File }

func lockFile(path string, try bool) (*fileLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("gitstore: open lock: %w", err)
	}
	return &fileLock{f}, nil
}

func (l *fileLock) unlock() {
	if l != nil {
		l.f.Close()
	}
}
