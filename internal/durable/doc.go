// Package durable owns the few file operations whose order makes data
// survive a crash: writing a file atomically (temporary file, fsync,
// rename, directory fsync), fsyncing a directory so that a rename or a new
// entry in it is durable, taking an advisory file lock that excludes other
// processes, and telling whether a path now names another file (its
// inode).
//
// It keeps one copy of what gitstore, archive and swarm each carried
// before, with the non-unix variants behind build tags, so that those
// packages build everywhere Go does. gitstore, archive and swarm may
// import it; it imports nothing of ours (cmd/mailswarm's
// TestImportDirection keeps it so).
//
// Every function returns the os package's errors (*os.PathError and the
// like) unwrapped: callers add what failed and map storage trouble to
// their own sentinels (archive.ErrTempFail).
//
// What it does not own: writes that stream (gitstore's packs, swarm's
// packs, archive's rebuilt index) and git's own lock-file protocol for
// refs ("ref.lock" created O_EXCL) stay with their packages; they use
// Rename and SyncDir for the durable part.
package durable
