//go:build !unix

package durable

import "os"

// Inode returns false here: os.Stat gives no inode off unix; callers
// compare size and mtime only.
func Inode(fi os.FileInfo) (ino uint64, ok bool) { return 0, false }
