package gitstore

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// masterRef is the only branch of an epoch.
const masterRef = "refs/heads/master"

// readRef resolves a ref of gitDir (loose file, then packed-refs); zero
// when the ref does not exist.
func readRef(gitDir, ref string) (Hash, error) {
	for range 5 { // follow at most a few symbolic refs
		data, err := os.ReadFile(filepath.Join(gitDir, filepath.FromSlash(ref)))
		if err == nil {
			s := strings.TrimSpace(string(data))
			if target, ok := strings.CutPrefix(s, "ref: "); ok {
				ref = target
				continue
			}
			h, err := ParseHash(s)
			if err != nil {
				return ZeroHash, fmt.Errorf("%w: ref %s: %v", ErrCorrupt, ref, err)
			}
			return h, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return ZeroHash, fmt.Errorf("gitstore: read ref %s: %w", ref, err)
		}
		return readPackedRef(gitDir, ref)
	}
	return ZeroHash, fmt.Errorf("%w: ref %s: symbolic ref loop", ErrCorrupt, ref)
}

// readPackedRef looks ref up in gitDir/packed-refs.
func readPackedRef(gitDir, ref string) (Hash, error) {
	data, err := os.ReadFile(filepath.Join(gitDir, "packed-refs"))
	if errors.Is(err, os.ErrNotExist) {
		return ZeroHash, nil
	}
	if err != nil {
		return ZeroHash, fmt.Errorf("gitstore: read packed-refs: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '^' {
			continue
		}
		hexName, name, ok := strings.Cut(line, " ")
		if ok && name == ref {
			h, err := ParseHash(hexName)
			if err != nil {
				return ZeroHash, fmt.Errorf("%w: packed-refs %s: %v", ErrCorrupt, ref, err)
			}
			return h, nil
		}
	}
	return ZeroHash, nil
}

// writeRef moves ref to h durably: "ref.lock" created with O_EXCL, written,
// fsynced, renamed over the ref, directory fsynced. The caller holds the
// append flock, so a lock file found here was left by a killed process and
// is removed.
func writeRef(gitDir, ref string, h Hash, noSync bool, log *slog.Logger) error {
	path := filepath.Join(gitDir, filepath.FromSlash(ref))
	lock := path + ".lock"
	f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		log.Warn("gitstore: removing stale ref lock", "path", lock)
		os.Remove(lock)
		f, err = os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	}
	if err != nil {
		return fmt.Errorf("gitstore: lock %s: %w", ref, err)
	}
	_, err = f.WriteString(h.String() + "\n")
	if err == nil && !noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(lock, path)
	}
	if err != nil {
		os.Remove(lock)
		return fmt.Errorf("gitstore: update %s: %w", ref, err)
	}
	if !noSync {
		return syncDir(filepath.Dir(path))
	}
	return nil
}
