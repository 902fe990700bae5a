package gitstore

import (
	"bytes"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// errNotFound is returned for an object absent from an object database.
var errNotFound = fmt.Errorf("%w: object not found", ErrCorrupt)

// objRef is where a packed object is.
type objRef struct {
	pack *pack
	off  int64
}

// odb reads the objects of one repository: its packs, through an in-memory
// map built from their idx files, and its loose objects.
type odb struct {
	objDir string

	mu     sync.RWMutex
	packs  map[string]*pack // by base name
	objs   map[Hash]objRef
	closed bool

	cache baseCache
}

// openODB loads every pack (with its idx) of the objects directory.
func openODB(objDir string) (*odb, error) {
	db := &odb{objDir: objDir, packs: map[string]*pack{}}
	if err := db.scan(); err != nil {
		db.close()
		return nil, err
	}
	return db, nil
}

// close closes the open pack files.
func (db *odb) close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	var first error
	for _, p := range db.packs {
		if err := p.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	db.packs = map[string]*pack{}
	db.objs = nil
	db.closed = true
	db.cache.reset()
	return first
}

// packDir is the objects/pack directory.
func (db *odb) packDir() string { return filepath.Join(db.objDir, "pack") }

// scan loads packs that appeared since the last scan. A pack without its idx
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
	db.mu.RLock()
	var todo []string
	for _, n := range names {
		if db.packs[n] == nil {
			todo = append(todo, n)
		}
	}
	db.mu.RUnlock()
	for _, n := range todo {
		if err := db.loadPack(n); err != nil {
			return err
		}
	}
	return nil
}

// loadPack opens pack base name and adds its objects to the map.
func (db *odb) loadPack(name string) error {
	db.mu.RLock()
	done := db.packs[name] != nil
	db.mu.RUnlock()
	if done {
		return nil
	}
	base := filepath.Join(db.packDir(), name)
	data, err := os.ReadFile(base + ".idx")
	if err != nil {
		return fmt.Errorf("gitstore: read %s.idx: %w", name, err)
	}
	ix, err := parseIdx(data)
	if err != nil {
		return fmt.Errorf("gitstore: %s.idx: %w", name, err)
	}
	f, err := os.Open(base + ".pack")
	if err != nil {
		return fmt.Errorf("gitstore: open %s.pack: %w", name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("gitstore: stat %s.pack: %w", name, err)
	}
	p := &pack{name: name, path: base + ".pack", f: f, size: st.Size(), idx: ix}
	if p.size < 32 {
		f.Close()
		return fmt.Errorf("gitstore: %s.pack: %w: too short", name, ErrCorrupt)
	}
	offs := make([]int64, ix.n)
	for i := range offs {
		if offs[i], err = ix.offset(i); err != nil {
			f.Close()
			return fmt.Errorf("gitstore: %s.idx: %w", name, err)
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		f.Close()
		return errors.New("gitstore: closed")
	}
	if db.packs[name] != nil {
		f.Close()
		return nil
	}
	if db.objs == nil {
		db.objs = make(map[Hash]objRef, ix.n)
	}
	for i := 0; i < ix.n; i++ {
		var h Hash
		copy(h[:], ix.names[20*i:])
		if _, dup := db.objs[h]; !dup {
			db.objs[h] = objRef{p, offs[i]}
		}
	}
	db.packs[name] = p
	return nil
}

// packBytes is the total size of the loaded packs.
func (db *odb) packBytes() int64 {
	db.mu.RLock()
	defer db.mu.RUnlock()
	var n int64
	for _, p := range db.packs {
		n += p.size
	}
	return n
}

// packList returns the loaded packs sorted by name.
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

// lookup finds a packed object in the map (no disk access).
func (db *odb) lookup(h Hash) (objRef, bool) {
	db.mu.RLock()
	r, ok := db.objs[h]
	db.mu.RUnlock()
	return r, ok
}

// packByName returns a loaded pack, scanning once when it is unknown.
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
		return nil, fmt.Errorf("gitstore: pack %s not found", name)
	}
	return p, nil
}

// loosePrefix marks a Loc naming a loose object: Pack is "loose/<hex>".
const loosePrefix = "loose/"

// locate returns where an object is: a pack and offset, or a loose object.
func (db *odb) locate(h Hash) (pack string, off int64, err error) {
	if r, ok := db.lookup(h); ok {
		return r.pack.name, r.off, nil
	}
	if _, err := os.Stat(db.loosePath(h)); err == nil {
		return loosePrefix + h.String(), 0, nil
	}
	if err := db.scan(); err != nil {
		return "", 0, err
	}
	if r, ok := db.lookup(h); ok {
		return r.pack.name, r.off, nil
	}
	return "", 0, fmt.Errorf("gitstore: %s: %w", h, errNotFound)
}

// read returns an object's type and contents.
func (db *odb) read(h Hash) (ObjectType, []byte, error) {
	return db.readDepth(h, 0)
}

func (db *odb) readDepth(h Hash, depth int) (ObjectType, []byte, error) {
	if r, ok := db.lookup(h); ok {
		return db.readAt(r.pack, r.off, depth)
	}
	t, data, err := db.readLoose(h)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return t, data, err
	}
	if err := db.scan(); err != nil {
		return 0, nil, err
	}
	if r, ok := db.lookup(h); ok {
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

// readAt reads the object at off in p, resolving deltas.
func (db *odb) readAt(p *pack, off int64, depth int) (ObjectType, []byte, error) {
	if depth > maxDeltaDepth {
		return 0, nil, fmt.Errorf("%w: %s: delta chain too deep at %d", ErrCorrupt, p.name, off)
	}
	h, delta, err := p.readObj(off)
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
	h, err := p.readHeader(off)
	if err != nil {
		return 0, 0, err
	}
	if h.typ <= 4 {
		return ObjectType(h.typ), h.size, nil
	}
	n := min(h.size, 20)
	d, err := p.inflate(h.dataOff, n)
	if err != nil {
		return 0, 0, err
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
	if r, ok := db.lookup(h); ok {
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
