//go:build unix

package durable

import "os"

// SyncDir fsyncs directory dir, making the entries created, renamed or
// removed in it durable (POSIX leaves them in the page cache until then).
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
