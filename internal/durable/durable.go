package durable

import (
	"os"
	"path/filepath"
)

// WriteFile replaces path with data so that a reader, or the file after a
// crash, has the old content or the new, never part of either: data goes
// to a temporary file ".tmp-<base>-*" beside path, with mode perm, is
// fsynced, renamed over path, and path's directory is fsynced. With sync
// false both fsyncs are skipped (benchmarks and tests): the rename is
// still atomic, but a crash may lose it. The temporary file is removed on
// error.
func WriteFile(path string, data []byte, perm os.FileMode, sync bool) error {
	tmp, err := WriteTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*", data, perm, sync)
	if err != nil {
		return err
	}
	if err := Rename(tmp, path, sync); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// WriteTemp writes data to a new file in dir named by pattern as in
// os.CreateTemp (a "*" in it becomes a random string), with mode perm,
// and fsyncs it when sync is set. It returns the file's path, ready for
// Rename; on error it removes the file.
func WriteTemp(dir, pattern string, data []byte, perm os.FileMode, sync bool) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// Rename renames oldpath to newpath and, when sync is set, fsyncs
// newpath's directory so that the rename survives a crash. oldpath should
// already be durable (fsynced) when it is a file; Rename leaves it in
// place when the rename fails.
func Rename(oldpath, newpath string, sync bool) error {
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	if sync {
		return SyncDir(filepath.Dir(newpath))
	}
	return nil
}
