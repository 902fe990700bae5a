package gitstore

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"mailswarm/internal/durable"
)

// defaultEpochSize is public-inbox's epoch size.
const defaultEpochSize = 1 << 30

// store is the implementation behind Store.
type store struct {
	dir  string
	opts Options
	log  *slog.Logger

	amu sync.Mutex // serialises appends within the process

	files *fileCache // open pack files of every epoch

	mu     sync.RWMutex
	eps    map[int]*odb
	closed bool
}

func open(dir string, opts *Options) (*Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.EpochSize <= 0 {
		o.EpochSize = defaultEpochSize
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
		return nil, fmt.Errorf("gitstore: open %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "inbox.lock"), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("gitstore: open %s: %w", dir, err)
	}
	f.Close()
	s := &store{dir: dir, opts: o, log: log, eps: map[int]*odb{}, files: newFileCache(maxOpenPacks)}

	// Layout changes and cleanup happen under the append lock so they never
	// race another process's append.
	lk, err := s.lockAppend()
	if err != nil {
		return nil, err
	}
	defer lk.Unlock()
	cleanTemp(filepath.Join(dir, "git"))
	cleanTemp(dir)
	eps, err := listEpochs(dir)
	if err != nil {
		return nil, err
	}
	if len(eps) == 0 {
		if err := initRepo(s.gitDir(0), o.NoSync); err != nil {
			return nil, err
		}
		eps = []int{0}
	}
	for _, n := range eps {
		cleanTemp(filepath.Join(s.gitDir(n), "objects", "pack"))
		cleanTemp(filepath.Join(s.gitDir(n), "objects", "info"))
	}
	if err := initRepo(filepath.Join(dir, "all.git"), o.NoSync); err != nil {
		return nil, err
	}
	cleanTemp(filepath.Join(dir, "all.git", "objects", "info"))
	if err := writeAlternates(dir, eps, o.NoSync); err != nil {
		return nil, err
	}
	if err := s.refresh(); err != nil {
		s.close()
		return nil, err
	}
	return &Store{dir: dir, opts: o, impl: s}, nil
}

// lockAppend takes the inter-process append lock.
func (s *store) lockAppend() (*durable.Lock, error) {
	lk, err := durable.LockFile(filepath.Join(s.dir, "git", ".append.lock"))
	if err != nil {
		return nil, fmt.Errorf("gitstore: append lock: %w", err)
	}
	return lk, nil
}

// gitDir is the bare repository of epoch n.
func (s *store) gitDir(n int) string {
	return filepath.Join(s.dir, "git", fmt.Sprintf("%d.git", n))
}

// refresh opens epochs and packs that appeared on disk (another process may
// have appended).
func (s *store) refresh() error {
	eps, err := listEpochs(s.dir)
	if err != nil {
		return err
	}
	for _, n := range eps {
		s.mu.RLock()
		db, closed := s.eps[n], s.closed
		s.mu.RUnlock()
		if closed {
			return errClosed
		}
		if db != nil {
			if err := db.scan(); err != nil {
				return fmt.Errorf("gitstore: epoch %d: %w", n, err)
			}
			continue
		}
		db, err := openODB(filepath.Join(s.gitDir(n), "objects"), s.files)
		if err != nil {
			return fmt.Errorf("gitstore: epoch %d: %w", n, err)
		}
		s.mu.Lock()
		if s.eps[n] == nil && !s.closed {
			s.eps[n] = db
			db = nil
		}
		s.mu.Unlock()
		if db != nil {
			db.close()
		}
	}
	return nil
}

func (s *store) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var first error
	for _, db := range s.eps {
		if err := db.close(); err != nil && first == nil {
			first = err
		}
	}
	s.eps = map[int]*odb{}
	s.closed = true
	if err := s.files.close(); err != nil && first == nil {
		first = err
	}
	return first
}

func (s *store) epochs() []int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]int, 0, len(s.eps))
	for n := range s.eps {
		out = append(out, n)
	}
	slices.Sort(out)
	if len(out) == 0 {
		out = []int{0}
	}
	return out
}

// epoch returns epoch n's object database, looking on disk once when it is
// not known yet.
func (s *store) epoch(n int) (*odb, error) {
	s.mu.RLock()
	db, closed := s.eps[n], s.closed
	s.mu.RUnlock()
	if closed {
		return nil, errClosed
	}
	if db != nil {
		return db, nil
	}
	if err := s.refresh(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	db = s.eps[n]
	s.mu.RUnlock()
	if db == nil {
		return nil, fmt.Errorf("gitstore: no epoch %d", n)
	}
	return db, nil
}

func (s *store) tip(n int) (Hash, error) {
	if _, err := s.epoch(n); err != nil {
		return ZeroHash, err
	}
	return readRef(s.gitDir(n), masterRef)
}

func (s *store) readBlob(loc Loc) ([]byte, error) {
	db, err := s.epoch(loc.Epoch)
	if err != nil {
		return nil, err
	}
	t, data, err := db.readLoc(loc.Pack, loc.Offset)
	if err != nil && !loc.Blob.IsZero() && errors.Is(err, os.ErrNotExist) {
		t, data, err = db.read(loc.Blob) // the pack was dropped: by name
	}
	if err != nil {
		return nil, fmt.Errorf("gitstore: read blob %s@%d: %w", loc.Pack, loc.Offset, err)
	}
	if t != ObjBlob {
		return nil, fmt.Errorf("gitstore: read blob %s@%d: %w: a %s, not a blob", loc.Pack, loc.Offset, ErrCorrupt, typeName(t))
	}
	return data, nil
}

func (s *store) readBlobHead(loc Loc, done func([]byte) bool) ([]byte, error) {
	db, err := s.epoch(loc.Epoch)
	if err != nil {
		return nil, err
	}
	t, data, err := db.readHead(loc.Pack, loc.Offset, done)
	if err != nil && !loc.Blob.IsZero() && errors.Is(err, os.ErrNotExist) {
		t, data, err = db.read(loc.Blob) // the pack was dropped: by name
	}
	if err != nil {
		return nil, fmt.Errorf("gitstore: read blob %s@%d: %w", loc.Pack, loc.Offset, err)
	}
	if t != ObjBlob {
		return nil, fmt.Errorf("gitstore: read blob %s@%d: %w: a %s, not a blob", loc.Pack, loc.Offset, ErrCorrupt, typeName(t))
	}
	return data, nil
}

func (s *store) walk(n int, from Hash, fn func(Entry) error) error {
	db, err := s.epoch(n)
	if err != nil {
		return err
	}
	tip, err := readRef(s.gitDir(n), masterRef)
	if err != nil {
		return err
	}
	// A walk locates blobs for the index: packs another process dropped
	// (DropCovered) must not be named, even while their files are open.
	if err := db.scan(); err != nil {
		return err
	}
	return walkChain(db, n, tip, from, false, func(e Entry, _ RawCommit) error { return fn(e) })
}
