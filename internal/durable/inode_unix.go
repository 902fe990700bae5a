//go:build unix

package durable

import (
	"os"
	"syscall"
)

// Inode returns the inode number of fi (from os.Stat): a file replaced by
// WriteFile has a new one, even when its size and mtime did not change.
// ok is false where the system gives none.
func Inode(fi os.FileInfo) (ino uint64, ok bool) {
	if st, isStat := fi.Sys().(*syscall.Stat_t); isStat {
		return uint64(st.Ino), true
	}
	return 0, false
}
