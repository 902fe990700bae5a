//go:build !unix

package archive

import "os"

// spoolLock stands in for flock where there is none: it only serialises
// nothing across processes.
type spoolLock struct{ f *os.File }

func lockSpool(path string, try bool) (*spoolLock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &spoolLock{f}, nil
}

func (l *spoolLock) unlock() {
	if l != nil {
		l.f.Close()
	}
}
