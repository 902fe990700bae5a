package gitstore

import (
	"container/list"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
)

// maxOpenPacks is how many pack files a Store (or a Foreign) keeps open at
// most. A list written by live mail gets a pack per batch, so keeping every
// pack open would run into the file descriptor limit.
const maxOpenPacks = 64

// errClosed is returned by a closed Store or Foreign.
var errClosed = errors.New("gitstore: closed")

// fileCache bounds the open pack files of the object databases sharing it:
// at most max are open; an unused one is closed, least recently used first,
// when another must be opened, and reopened on demand. A file is in use
// between acquire and release and is never closed under its reader; when
// every slot is in use, acquire waits for a release. A reader must hold at
// most one file at a time (release before reading another pack), so waiting
// cannot deadlock.
type fileCache struct {
	mu     sync.Mutex
	cond   sync.Cond // signalled when a slot or an opening file may be free
	max    int
	open   int        // files open or being opened
	idle   *list.List // of *pack: open files nobody uses, oldest first
	closed bool

	opens atomic.Int64 // files opened so far, for tests
	peak  atomic.Int64 // most files open at once, for tests
}

// newFileCache returns a cache of at most max open files.
func newFileCache(max int) *fileCache {
	c := &fileCache{max: max, idle: list.New()}
	c.cond.L = &c.mu
	return c
}

// packFile is a pack with its file open, between acquire and release.
type packFile struct {
	*pack
	f *os.File
}

// acquire returns p's file, opening it when needed; release it with
// release(p) once done.
func (c *fileCache) acquire(p *pack) (packFile, error) {
	c.mu.Lock()
	for {
		switch {
		case c.closed:
			c.mu.Unlock()
			return packFile{}, errClosed
		case p.f != nil:
			if p.refs == 0 {
				c.idle.Remove(p.elem)
				p.elem = nil
			}
			p.refs++
			f := p.f
			c.mu.Unlock()
			return packFile{p, f}, nil
		case p.opening:
			c.cond.Wait()
			continue
		case c.open < c.max:
		case c.idle.Len() > 0:
			c.evictLocked()
			continue
		default:
			c.cond.Wait()
			continue
		}
		break
	}
	p.opening = true
	c.open++
	if n := int64(c.open); n > c.peak.Load() {
		c.peak.Store(n)
	}
	c.mu.Unlock()

	f, err := openPackFile(p)
	c.opens.Add(1)

	c.mu.Lock()
	defer c.mu.Unlock()
	p.opening = false
	c.cond.Broadcast()
	if err == nil && c.closed {
		f.Close()
		err = errClosed
	}
	if err != nil {
		c.open--
		return packFile{}, err
	}
	p.f, p.refs = f, 1
	return packFile{p, f}, nil
}

// openPackFile opens p's file and checks its size (recorded on first open;
// packs never change).
func openPackFile(p *pack) (*os.File, error) {
	f, err := os.Open(p.path)
	if err != nil {
		return nil, fmt.Errorf("gitstore: open %s.pack: %w", p.name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("gitstore: stat %s.pack: %w", p.name, err)
	}
	if st.Size() < 32 {
		f.Close()
		return nil, fmt.Errorf("gitstore: %s.pack: %w: too short", p.name, ErrCorrupt)
	}
	if old := p.size.Load(); old != 0 && old != st.Size() {
		f.Close()
		return nil, fmt.Errorf("gitstore: %s.pack: %w: size changed from %d to %d", p.name, ErrCorrupt, old, st.Size())
	}
	p.size.Store(st.Size())
	return f, nil
}

// release ends a use of p's file begun by acquire.
func (c *fileCache) release(p *pack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p.refs--
	if p.refs > 0 {
		return
	}
	if c.closed || p.gone {
		p.f.Close()
		p.f = nil
		c.open--
		c.cond.Broadcast()
		return
	}
	p.elem = c.idle.PushBack(p)
	c.cond.Broadcast()
}

// evictLocked closes the least recently used idle file.
func (c *fileCache) evictLocked() {
	p := c.idle.Remove(c.idle.Front()).(*pack)
	p.elem = nil
	p.f.Close()
	p.f = nil
	c.open--
}

// drop is forget for a pack whose file was removed: a file in use is
// closed when its last reader releases it, not kept idle.
func (c *fileCache) drop(p *pack) {
	c.mu.Lock()
	p.gone = true
	c.mu.Unlock()
	c.forget(p)
}

// forget closes p's file if it is idle, for a pack its database drops.
func (c *fileCache) forget(p *pack) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.f != nil && p.refs == 0 {
		c.idle.Remove(p.elem)
		p.elem = nil
		p.f.Close()
		p.f = nil
		c.open--
		c.cond.Broadcast()
	}
}

// close closes the idle files and makes acquire fail; files in use are
// closed when released.
func (c *fileCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for c.idle.Len() > 0 {
		p := c.idle.Remove(c.idle.Front()).(*pack)
		p.elem = nil
		if err := p.f.Close(); err != nil && first == nil {
			first = err
		}
		p.f = nil
		c.open--
	}
	c.closed = true
	c.cond.Broadcast()
	return first
}

// openFiles returns how many files are open now.
func (c *fileCache) openFiles() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}
