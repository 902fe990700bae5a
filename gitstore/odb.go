package gitstore

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// errNotFound is returned for an object absent from an object database.
var errNotFound = fmt.Errorf("%w: object not found", ErrCorrupt)

// objRef is where a packed object is.
type objRef struct {
	pack *pack
	off  int64
}

// odb reads the objects of one repository: its packs and its loose objects.
//
// Opening it only lists the pack directory. A pack's file is opened through
// the shared fileCache when an object is read from it (a Loc names the pack,
// so ReadBlob needs nothing else). Idx files are read the first time an
// object is looked up by name, merged into midxes (in-memory sorted name
// arrays; see midxRatio) and dropped, so a lookup is a few binary searches
// however many packs there are.
type odb struct {
	objDir string
	files  *fileCache

	imu sync.Mutex // serialises index updates (reading idx files, merging)

	mu     sync.RWMutex
	packs  map[string]*pack // by base name
	closed bool
	// The name index: packs not indexed yet, and midxes of the others,
	// biggest (oldest) first. Replaced, never modified, under imu and mu.
	unindexed []*pack
	mis       []*midx

	cache baseCache

	idxReads atomic.Int64 // idx files read, for tests
}

// openODB lists the packs of the objects directory; it reads none of them.
// Their files are opened through files.
func openODB(objDir string, files *fileCache) (*odb, error) {
	db := &odb{objDir: objDir, files: files, packs: map[string]*pack{}}
	if err := db.scan(); err != nil {
		db.close()
		return nil, err
	}
	return db, nil
}

// close closes the idle files of its packs and forgets them; a file being
// read is closed when the cache is.
func (db *odb) close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, p := range db.packs {
		db.files.forget(p)
	}
	db.packs = map[string]*pack{}
	db.unindexed, db.mis = nil, nil
	db.closed = true
	db.cache.reset()
	return nil
}

// packDir is the objects/pack directory.
func (db *odb) packDir() string { return filepath.Join(db.objDir, "pack") }

// scan adds packs that appeared since the last scan. A pack without its idx
// (or an idx without its pack) is ignored: it is being written, or left by a
// crash.
func (db *odb) scan() error {
	ents, err := os.ReadDir(db.packDir())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("gitstore: scan packs: %w", err)
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[e.Name()] = true
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "pack-") && strings.HasSuffix(n, ".idx") {
			base := strings.TrimSuffix(n, ".idx")
			if have[base+".pack"] {
				names = append(names, base)
			}
		}
	}
	sort.Strings(names)
	db.forgetGone(have)
	for _, n := range names {
		if err := db.loadPack(n); err != nil {
			return err
		}
	}
	return nil
}

// forgetGone drops the packs whose pack or idx file is no longer in the
// directory listing have (DropCovered removed them, here or in another
// process) and rebuilds the name index from the packs left: a lookup
// must not find an object in a pack that is gone while another pack
// holds it. A file still open keeps reading (the inode lives until it is
// closed) and is closed when its last reader releases it.
func (db *odb) forgetGone(have map[string]bool) {
	db.mu.RLock()
	gone := false
	for name := range db.packs {
		if !have[name+".pack"] || !have[name+".idx"] {
			gone = true
			break
		}
	}
	db.mu.RUnlock()
	if !gone {
		return
	}
	db.imu.Lock()
	defer db.imu.Unlock()
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return
	}
	for name, p := range db.packs {
		if !have[name+".pack"] || !have[name+".idx"] {
			delete(db.packs, name)
			db.files.drop(p)
		}
	}
	left := make([]*pack, 0, len(db.packs))
	for _, p := range db.packs {
		left = append(left, p)
	}
	sort.Slice(left, func(i, j int) bool { return left[i].name < left[j].name })
	db.unindexed, db.mis = left, nil
	db.cache.reset()
}

// loadPack adds pack base name, which must be complete on disk (idx and
// pack); its idx is read when a lookup by name needs it.
func (db *odb) loadPack(name string) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return errClosed
	}
	if db.packs[name] != nil {
		return nil
	}
	p := &pack{name: name, path: filepath.Join(db.packDir(), name+".pack")}
	db.packs[name] = p
	db.unindexed = append(db.unindexed, p)
	return nil
}

// readIdx reads and parses p's idx file.
func (db *odb) readIdx(p *pack) (*idxFile, error) {
	db.idxReads.Add(1)
	data, err := os.ReadFile(filepath.Join(db.packDir(), p.name+".idx"))
	if err != nil {
		return nil, fmt.Errorf("gitstore: read %s.idx: %w", p.name, err)
	}
	ix, err := parseIdx(data)
	if err != nil {
		return nil, fmt.Errorf("gitstore: %s.idx: %w", p.name, err)
	}
	return ix, nil
}

// index reads the idx of every pack not indexed yet into a new midx and
// merges it with the ones before it as midxRatio says.
func (db *odb) index() error {
	db.imu.Lock()
	defer db.imu.Unlock()
	db.mu.RLock()
	todo := slices.Clone(db.unindexed)
	mis := slices.Clone(db.mis)
	db.mu.RUnlock()
	if len(todo) == 0 {
		return nil
	}
	idxs := make([]*idxFile, len(todo))
	for i, p := range todo {
		ix, err := db.readIdx(p)
		if err != nil {
			return err
		}
		idxs[i] = ix
	}
	m, err := mergeMidx(nil, todo, idxs)
	if err != nil {
		return err
	}
	mis = append(mis, m)
	for n := len(mis); n >= 2 && len(mis[n-2].ents) < midxRatio*len(mis[n-1].ents); n = len(mis) {
		if m, err = mergeMidx(mis[n-2:], nil, nil); err != nil {
			return err
		}
		mis = append(mis[:n-2], m)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return errClosed
	}
	db.unindexed = db.unindexed[len(todo):]
	db.mis = mis
	return nil
}

// packBytes is the total size of the packs.
func (db *odb) packBytes() (int64, error) {
	var n int64
	for _, p := range db.packList() {
		sz := p.size.Load()
		if sz == 0 {
			st, err := os.Stat(p.path)
			if err != nil {
				return 0, fmt.Errorf("gitstore: stat %s.pack: %w", p.name, err)
			}
			sz = st.Size()
			p.size.CompareAndSwap(0, sz)
		}
		n += sz
	}
	return n, nil
}

// packList returns the packs sorted by name.
func (db *odb) packList() []*pack {
	db.mu.RLock()
	defer db.mu.RUnlock()
	out := make([]*pack, 0, len(db.packs))
	for _, p := range db.packs {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// lookup finds a packed object among the packs known (no scan for new
// ones), reading the idx files it has not read yet.
func (db *odb) lookup(h Hash) (objRef, bool, error) {
	db.mu.RLock()
	pending := len(db.unindexed) > 0
	if !pending {
		r, ok := db.searchLocked(h)
		db.mu.RUnlock()
		return r, ok, nil
	}
	db.mu.RUnlock()
	if err := db.index(); err != nil {
		return objRef{}, false, err
	}
	db.mu.RLock()
	defer db.mu.RUnlock()
	r, ok := db.searchLocked(h)
	return r, ok, nil
}

// searchLocked looks h up in the midxes, biggest first. It holds mu for
// reading.
func (db *odb) searchLocked(h Hash) (objRef, bool) {
	for _, m := range db.mis {
		if r, ok := m.find(h); ok {
			return r, true
		}
	}
	return objRef{}, false
}

// packByName returns a pack, scanning once when it is unknown.
func (db *odb) packByName(name string) (*pack, error) {
	db.mu.RLock()
	p := db.packs[name]
	db.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	if err := db.scan(); err != nil {
		return nil, err
	}
	db.mu.RLock()
	p = db.packs[name]
	db.mu.RUnlock()
	if p == nil {
		return nil, fmt.Errorf("gitstore: pack %s: %w", name, os.ErrNotExist)
	}
	return p, nil
}

// loosePrefix marks a Loc naming a loose object: Pack is "loose/<hex>".
const loosePrefix = "loose/"

// locate returns where an object is: a pack and offset, or a loose object.
func (db *odb) locate(h Hash) (pack string, off int64, err error) {
	if r, ok, err := db.lookup(h); err != nil {
		return "", 0, err
	} else if ok {
		return r.pack.name, r.off, nil
	}
	if _, err := os.Stat(db.loosePath(h)); err == nil {
		return loosePrefix + h.String(), 0, nil
	}
	if err := db.scan(); err != nil {
		return "", 0, err
	}
	if r, ok, err := db.lookup(h); err != nil {
		return "", 0, err
	} else if ok {
		return r.pack.name, r.off, nil
	}
	return "", 0, fmt.Errorf("gitstore: %s: %w", h, errNotFound)
}

// read returns an object's type and contents.
func (db *odb) read(h Hash) (ObjectType, []byte, error) {
	return db.readDepth(h, 0)
}

func (db *odb) readDepth(h Hash, depth int) (ObjectType, []byte, error) {
	if r, ok, err := db.lookup(h); err != nil {
		return 0, nil, err
	} else if ok {
		t, data, err := db.readAt(r.pack, r.off, depth)
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			return t, data, err
		}
		// The pack was dropped since it was indexed (DropCovered): the
		// scan below forgets it, and the object is found where it is now.
	} else {
		t, data, err := db.readLoose(h)
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			return t, data, err
		}
	}
	if err := db.scan(); err != nil {
		return 0, nil, err
	}
	if r, ok, err := db.lookup(h); err != nil {
		return 0, nil, err
	} else if ok {
		return db.readAt(r.pack, r.off, depth)
	}
	return 0, nil, fmt.Errorf("gitstore: %s: %w", h, errNotFound)
}

// readLoc returns the object at a pack offset or a loose Loc name.
func (db *odb) readLoc(packName string, off int64) (ObjectType, []byte, error) {
	if hexName, ok := strings.CutPrefix(packName, loosePrefix); ok {
		h, err := ParseHash(hexName)
		if err != nil {
			return 0, nil, err
		}
		return db.readLoose(h)
	}
	p, err := db.packByName(packName)
	if err != nil {
		return 0, nil, err
	}
	return db.readAt(p, off, 0)
}

// readHead is readLoc for a prefix: a whole object (not a delta) is
// inflated only until done reports true; deltas and loose objects are
// read whole.
func (db *odb) readHead(packName string, off int64, done func([]byte) bool) (ObjectType, []byte, error) {
	if strings.HasPrefix(packName, loosePrefix) {
		return db.readLoc(packName, off)
	}
	p, err := db.packByName(packName)
	if err != nil {
		return 0, nil, err
	}
	pf, err := db.files.acquire(p)
	if err != nil {
		return 0, nil, err
	}
	h, data, err := pf.readObjHead(off, done)
	db.files.release(p)
	if err == nil && h.typ > 4 {
		return db.readAt(p, off, 0) // a delta: resolved whole
	}
	return ObjectType(h.typ), data, err
}

// readAt reads the object at off in p, resolving deltas. It holds p's file
// only while reading the object itself, never while reading a base.
func (db *odb) readAt(p *pack, off int64, depth int) (ObjectType, []byte, error) {
	if depth > maxDeltaDepth {
		return 0, nil, fmt.Errorf("%w: %s: delta chain too deep at %d", ErrCorrupt, p.name, off)
	}
	pf, err := db.files.acquire(p)
	if err != nil {
		return 0, nil, err
	}
	h, delta, err := pf.readObj(off)
	db.files.release(p)
	if err != nil {
		return 0, nil, err
	}
	if h.typ <= 4 {
		return ObjectType(h.typ), delta, nil
	}
	var bt ObjectType
	var base []byte
	if h.typ == objOfsDelta {
		var ok bool
		if bt, base, ok = db.cache.get(p, h.baseOff); !ok {
			if bt, base, err = db.readAt(p, h.baseOff, depth+1); err != nil {
				return 0, nil, err
			}
			db.cache.put(p, h.baseOff, bt, base)
		}
	} else if bt, base, err = db.readDepth(h.baseHash, depth+1); err != nil {
		return 0, nil, err
	}
	out, err := applyDelta(base, delta)
	if err != nil {
		return 0, nil, fmt.Errorf("gitstore: %s at %d: %w", p.name, off, err)
	}
	return bt, out, nil
}

// sizeAt returns the type and inflated size of the object at off without
// inflating all of it.
func (db *odb) sizeAt(p *pack, off int64, depth int) (ObjectType, int64, error) {
	if depth > maxDeltaDepth {
		return 0, 0, fmt.Errorf("%w: %s: delta chain too deep", ErrCorrupt, p.name)
	}
	pf, err := db.files.acquire(p)
	if err != nil {
		return 0, 0, err
	}
	h, d, err := pf.readSizes(off)
	db.files.release(p)
	if err != nil {
		return 0, 0, err
	}
	if h.typ <= 4 {
		return ObjectType(h.typ), h.size, nil
	}
	_, rsize, _, err := deltaSizes(d)
	if err != nil {
		return 0, 0, fmt.Errorf("gitstore: %s at %d: %w", p.name, off, err)
	}
	var bt ObjectType
	if h.typ == objOfsDelta {
		bt, _, err = db.sizeAt(p, h.baseOff, depth+1)
	} else {
		bt, err = db.typeOf(h.baseHash, depth+1)
	}
	return bt, rsize, err
}

// typeOf returns an object's type.
func (db *odb) typeOf(h Hash, depth int) (ObjectType, error) {
	if r, ok, err := db.lookup(h); err != nil {
		return 0, err
	} else if ok {
		t, _, err := db.sizeAt(r.pack, r.off, depth)
		return t, err
	}
	t, _, err := db.readDepth(h, depth)
	return t, err
}

// stat returns an object's location, type and size.
func (db *odb) stat(h Hash) (packName string, off int64, t ObjectType, size int64, err error) {
	packName, off, err = db.locate(h)
	if err != nil {
		return
	}
	if strings.HasPrefix(packName, loosePrefix) {
		var data []byte
		t, data, err = db.readLoose(h)
		return packName, 0, t, int64(len(data)), err
	}
	p, err := db.packByName(packName)
	if err != nil {
		return
	}
	t, size, err = db.sizeAt(p, off, 0)
	return
}

// loosePath is where a loose object would be.
func (db *odb) loosePath(h Hash) string {
	s := h.String()
	return filepath.Join(db.objDir, s[:2], s[2:])
}

// readLoose reads a loose object; the error wraps os.ErrNotExist when absent.
func (db *odb) readLoose(h Hash) (ObjectType, []byte, error) {
	raw, err := os.ReadFile(db.loosePath(h))
	if err != nil {
		return 0, nil, fmt.Errorf("gitstore: loose %s: %w", h, err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: loose %s: %v", ErrCorrupt, h, err)
	}
	data, err := io.ReadAll(io.LimitReader(zr, int64(len(raw))*1032+1024))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: loose %s: %v", ErrCorrupt, h, err)
	}
	nul := bytes.IndexByte(data, 0)
	if nul < 0 {
		return 0, nil, fmt.Errorf("%w: loose %s: no header", ErrCorrupt, h)
	}
	tn, sz, _ := strings.Cut(string(data[:nul]), " ")
	t := typeFromName(tn)
	n, err := strconv.Atoi(sz)
	if t == 0 || err != nil || n != len(data)-nul-1 {
		return 0, nil, fmt.Errorf("%w: loose %s: bad header", ErrCorrupt, h)
	}
	return t, data[nul+1:], nil
}

// baseCache keeps recently used delta bases of one object database.
type baseCache struct {
	mu    sync.Mutex
	m     map[objRef]cachedObj
	bytes int
}

type cachedObj struct {
	t    ObjectType
	data []byte
}

const baseCacheBytes = 32 << 20

func (c *baseCache) get(p *pack, off int64) (ObjectType, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.m[objRef{p, off}]
	return o.t, o.data, ok
}

func (c *baseCache) put(p *pack, off int64, t ObjectType, data []byte) {
	if len(data) > baseCacheBytes/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || c.bytes+len(data) > baseCacheBytes {
		c.m = map[objRef]cachedObj{}
		c.bytes = 0
	}
	c.m[objRef{p, off}] = cachedObj{t, data}
	c.bytes += len(data)
}

func (c *baseCache) reset() {
	c.mu.Lock()
	c.m, c.bytes = nil, 0
	c.mu.Unlock()
}
