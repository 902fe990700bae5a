//go:build !unix

package durable

// SyncDir does nothing where a directory cannot be fsynced: Windows opens
// no directory for writing and its FlushFileBuffers refuses a directory
// handle; NTFS journals renames and new entries itself.
func SyncDir(dir string) error { return nil }
