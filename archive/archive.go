package archive

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"
)

// Errors returned by Archive.
var (
	ErrUnknownList = errors.New("archive: unknown list")
	ErrListExists  = errors.New("archive: list exists")
	ErrBadName     = errors.New("archive: bad list name")
)

// Options configures an Archive. The zero value is not usable: Dir is required.
type Options struct {
	// Dir is the data directory; lists live in Dir/lists/NAME.
	Dir string
	// EpochSize is the size of a git epoch in bytes; zero means 1 GiB.
	EpochSize int64
	// NoSync skips fsync in git and SQLite. Only for throwaway benchmarks.
	NoSync bool
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
	// MaxMessageSize is the largest message List.Accept takes, in bytes;
	// zero means 64 MiB.
	MaxMessageSize int64
	// CommitInterval is how often Run's committers look for records
	// appended by other processes (mail accepted here is committed at
	// once); zero means 1 s.
	CommitInterval time.Duration
}

// Archive is the set of lists in one data directory. It is safe for
// concurrent use.
type Archive struct {
	opts   Options
	log    *slog.Logger
	events *broadcaster

	mu    sync.Mutex
	lists map[string]*List
	run   *runState // the running Run, if any
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// ValidName reports whether name can be a list name: lower-case letters,
// digits, '.', '_' and '-', starting with a letter or digit, at most 64.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Open opens the archive in opts.Dir, creating the directory when missing.
// Lists are opened lazily.
func Open(opts *Options) (*Archive, error) {
	if opts == nil || opts.Dir == "" {
		return nil, errors.New("archive: no data directory")
	}
	a := &Archive{opts: *opts, log: opts.Logger, lists: map[string]*List{}, events: newBroadcaster()}
	if a.log == nil {
		a.log = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(opts.Dir, "lists"), 0o755); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	return a, nil
}

// Dir returns the data directory.
func (a *Archive) Dir() string { return a.opts.Dir }

// Names returns the names of the lists on disk, sorted.
func (a *Archive) Names() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(a.opts.Dir, "lists"))
	if err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && ValidName(e.Name()) {
			if _, err := os.Stat(filepath.Join(a.opts.Dir, "lists", e.Name(), metaFile)); err == nil {
				names = append(names, e.Name())
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

// List opens the existing list name.
func (a *Archive) List(name string) (*List, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.lists[name]; ok {
		return l, nil
	}
	dir := filepath.Join(a.opts.Dir, "lists", name)
	if _, err := os.Stat(filepath.Join(dir, metaFile)); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownList, name)
	}
	l, err := openList(a, name, dir)
	if err != nil {
		return nil, err
	}
	a.added(name, l)
	return l, nil
}

// Create makes a new list with its ed25519 key pair and opens it. address is
// the list's posting address (may be empty).
func (a *Archive) Create(name, address string) (*List, error) {
	if !ValidName(name) {
		return nil, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	dir := filepath.Join(a.opts.Dir, "lists", name)
	if _, err := os.Stat(filepath.Join(dir, metaFile)); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrListExists, name)
	}
	if err := createList(dir, name, address, !a.opts.NoSync); err != nil {
		return nil, err
	}
	l, err := openList(a, name, dir)
	if err != nil {
		return nil, err
	}
	a.added(name, l)
	return l, nil
}

// OpenOrCreate opens list name, creating it when it does not exist yet.
func (a *Archive) OpenOrCreate(name, address string) (*List, error) {
	l, err := a.List(name)
	if errors.Is(err, ErrUnknownList) {
		l, err = a.Create(name, address)
		if errors.Is(err, ErrListExists) { // lost a race
			return a.List(name)
		}
	}
	return l, err
}

// added registers the newly opened list l; a.mu must be held.
func (a *Archive) added(name string, l *List) {
	a.lists[name] = l
	if a.run != nil {
		a.startCommitter(a.run, l)
	}
}

// Close closes every open list.
func (a *Archive) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	for n, l := range a.lists {
		errs = append(errs, l.close())
		delete(a.lists, n)
	}
	return errors.Join(errs...)
}

// Subscribe returns a channel of events for new messages in any list, and a
// function that ends the subscription (it must be called). A subscriber that
// does not keep up loses events but is sent a final overflow event with
// Overflow set, so it can re-read the index.
func (a *Archive) Subscribe() (<-chan Event, func()) { return a.events.subscribe() }
