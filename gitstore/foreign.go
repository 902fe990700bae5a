package gitstore

import (
	"fmt"
	"os"
	"path/filepath"
)

// Foreign reads a repository this package did not write (for example an
// epoch of an existing public-inbox inbox, written by git fast-import and
// perhaps repacked by git gc) so archive can adopt it with AppendRaw.
// It never writes. Safe for concurrent use.
type Foreign struct {
	dir string
	db  *odb
}

// OpenForeign opens the bare repository gitDir (a directory holding
// objects/ and refs/) for reading: packs with or without deltas, and loose
// objects.
func OpenForeign(gitDir string) (*Foreign, error) {
	objDir := filepath.Join(gitDir, "objects")
	if st, err := os.Stat(objDir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("gitstore: %s is not a git directory", gitDir)
	}
	files := newFileCache(maxOpenPacks)
	db, err := openODB(objDir, files)
	if err != nil {
		return nil, fmt.Errorf("gitstore: open %s: %w", gitDir, err)
	}
	return &Foreign{dir: gitDir, db: db}, nil
}

// Tip returns refs/heads/master (loose or in packed-refs); zero when the
// branch does not exist.
func (f *Foreign) Tip() (Hash, error) { return readRef(f.dir, masterRef) }

// Walk calls fn for every commit after from (zero: from the root) up to the
// tip, oldest first, with the entry and the raw objects to pass to
// AppendRaw. Entry.Epoch is 0 and Entry.BlobLoc points into the foreign
// repository (useless to a Store). Merges and trees other than a single
// "m" or "d" are rejected with ErrCorrupt. A non-nil error from fn stops
// the walk and is returned.
func (f *Foreign) Walk(from Hash, fn func(Entry, RawCommit) error) error {
	tip, err := f.Tip()
	if err != nil {
		return err
	}
	if tip.IsZero() {
		if from.IsZero() {
			return nil
		}
		return fmt.Errorf("gitstore: %s has no master branch", f.dir)
	}
	return walkChain(f.db, 0, tip, from, true, fn)
}

// Close releases open pack files.
func (f *Foreign) Close() error {
	f.db.close()
	return f.db.files.close()
}
