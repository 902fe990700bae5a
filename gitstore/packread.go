package gitstore

import (
	"bufio"
	"bytes"

	"container/list"
	"errors"
	"fmt"
	"github.com/klauspost/compress/zlib"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// maxDeltaDepth bounds delta chains (git's default is 50; gc --aggressive
// uses 250).
const maxDeltaDepth = 10000

// Pack object type codes for deltas.
const (
	objOfsDelta = 6
	objRefDelta = 7
)

// pack is one pack of an object database. Its file is opened through the
// database's fileCache (see packFile); its idx is read only to index its
// names (see odb.index) and by Check.
type pack struct {
	name string // "pack-<sha1>"
	path string
	size atomic.Int64 // bytes; 0 until the file is first opened or stated

	// Guarded by fileCache.mu.
	f       *os.File      // nil when closed
	refs    int           // acquires not released
	opening bool          // being opened by an acquire
	elem    *list.Element // in fileCache.idle while open and unused
	gone    bool          // removed from disk: closed at its last release
}

// packHeader is the parsed header of the object at some offset.
type packHeader struct {
	typ      int   // 1-4, 6 or 7
	size     int64 // inflated size (for deltas: of the delta data)
	dataOff  int64 // where the zlib stream starts
	baseOff  int64 // OFS_DELTA base
	baseHash Hash  // REF_DELTA base
}

// readHeader parses the object header at off.
func (p packFile) readHeader(off int64) (packHeader, error) {
	var buf [64]byte
	b, err := p.readPrefix(off, buf[:])
	if err != nil {
		return packHeader{}, err
	}
	return p.parseHeader(b, off)
}

// readPrefix reads up to len(buf) bytes at off, stopping at the trailer.
func (p packFile) readPrefix(off int64, buf []byte) ([]byte, error) {
	end := p.size.Load() - 20
	if off < 12 || off >= end {
		return nil, fmt.Errorf("%w: %s: offset %d out of range", ErrCorrupt, p.name, off)
	}
	n := int64(len(buf))
	if end-off < n {
		n = end - off
	}
	if _, err := p.f.ReadAt(buf[:n], off); err != nil {
		return nil, fmt.Errorf("gitstore: read %s: %w", p.name, err)
	}
	return buf[:n], nil
}

// readObj reads the object header at off and inflates its data (for a
// delta, the delta data). Small objects take a single read.
func (p packFile) readObj(off int64) (packHeader, []byte, error) {
	return p.readObjPrefix(off, nil, true)
}

// readSizes reads the object header at off and, for a delta, the start of
// its data (enough for deltaSizes).
func (p packFile) readSizes(off int64) (packHeader, []byte, error) {
	h, err := p.readHeader(off)
	if err != nil || h.typ <= 4 {
		return h, nil, err
	}
	d, err := p.inflate(h.dataOff, min(h.size, 20))
	return h, d, err
}

var smallBufPool = sync.Pool{New: func() any { b := make([]byte, 2048); return &b }}

// parseHeader parses an object header at the start of b (read at off).
func (p *pack) parseHeader(b []byte, off int64) (packHeader, error) {
	var h packHeader
	i := 0
	c := b[i]
	i++
	h.typ = int(c>>4) & 7
	h.size = int64(c & 15)
	shift := uint(4)
	for c&0x80 != 0 {
		if i >= len(b) || shift > 56 {
			return h, fmt.Errorf("%w: %s: bad object header at %d", ErrCorrupt, p.name, off)
		}
		c = b[i]
		i++
		h.size |= int64(c&0x7f) << shift
		shift += 7
	}
	switch h.typ {
	case 1, 2, 3, 4:
	case objOfsDelta:
		if i >= len(b) {
			return h, fmt.Errorf("%w: %s: bad delta header at %d", ErrCorrupt, p.name, off)
		}
		c = b[i]
		i++
		rel := int64(c & 0x7f)
		for c&0x80 != 0 {
			if i >= len(b) || rel > 1<<55 {
				return h, fmt.Errorf("%w: %s: bad delta offset at %d", ErrCorrupt, p.name, off)
			}
			c = b[i]
			i++
			rel = ((rel + 1) << 7) | int64(c&0x7f)
		}
		h.baseOff = off - rel
		if rel <= 0 || h.baseOff < 12 {
			return h, fmt.Errorf("%w: %s: delta base out of range at %d", ErrCorrupt, p.name, off)
		}
	case objRefDelta:
		if i+20 > len(b) {
			return h, fmt.Errorf("%w: %s: bad delta header at %d", ErrCorrupt, p.name, off)
		}
		copy(h.baseHash[:], b[i:i+20])
		i += 20
	default:
		return h, fmt.Errorf("%w: %s: bad object type %d at %d", ErrCorrupt, p.name, h.typ, off)
	}
	h.dataOff = off + int64(i)
	return h, nil
}

var (
	bufioPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 16<<10) }}
	// zrPool holds zlib readers for object reads: klauspost/compress's
	// inflates mail about 1.4 times as fast as the standard library's
	// (6 KiB messages: 44 against 60 µs). Writing and VerifyPack keep the
	// standard library (canonical bytes; exact stream ends).
	zrPool sync.Pool // of io.ReadCloser implementing zlib.Resetter
)

// inflate returns the first want bytes of the zlib stream at off (want is
// normally the full declared size; for delta headers a prefix).
func (p packFile) inflate(off, want int64) ([]byte, error) {
	avail := p.size.Load() - 20 - off
	if avail <= 0 || want < 0 || want > avail*1032+1024 {
		return nil, fmt.Errorf("%w: %s: object size %d impossible at %d", ErrCorrupt, p.name, want, off)
	}
	br := bufioPool.Get().(*bufio.Reader)
	defer bufioPool.Put(br)
	br.Reset(io.NewSectionReader(p.f, off, avail))
	out, err := inflateFrom(br, want)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: object at %d: %v", ErrCorrupt, p.name, off, err)
	}
	return out, nil
}

// inflateFrom reads want bytes of the zlib stream in r.
func inflateFrom(r io.Reader, want int64) ([]byte, error) {
	var zr io.ReadCloser
	if v := zrPool.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(r, nil); err != nil {
			return nil, err
		}
	} else {
		var err error
		if zr, err = zlib.NewReader(r); err != nil {
			return nil, err
		}
	}
	defer zrPool.Put(zr)
	out := make([]byte, want)
	if _, err := io.ReadFull(zr, out); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return out, nil
}

// deltaSizes reads the base and result sizes at the start of delta data.
func deltaSizes(d []byte) (base, result int64, rest []byte, err error) {
	base, d, err = deltaVarint(d)
	if err != nil {
		return
	}
	result, d, err = deltaVarint(d)
	return base, result, d, err
}

func deltaVarint(d []byte) (int64, []byte, error) {
	var v int64
	shift := uint(0)
	for i := 0; i < len(d); i++ {
		c := d[i]
		if shift > 56 {
			break
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			return v, d[i+1:], nil
		}
	}
	return 0, nil, fmt.Errorf("%w: bad delta size", ErrCorrupt)
}

// applyDelta applies a git delta to base.
func applyDelta(base, delta []byte) ([]byte, error) {
	bsize, rsize, d, err := deltaSizes(delta)
	if err != nil {
		return nil, err
	}
	if bsize != int64(len(base)) {
		return nil, fmt.Errorf("%w: delta base size %d, have %d", ErrCorrupt, bsize, len(base))
	}
	if rsize > int64(len(d))*(1<<16)+1 {
		return nil, fmt.Errorf("%w: delta result size %d impossible", ErrCorrupt, rsize)
	}
	out := make([]byte, 0, rsize)
	for len(d) > 0 {
		op := d[0]
		d = d[1:]
		switch {
		case op&0x80 != 0:
			var off, size uint64
			for i := 0; i < 4; i++ {
				if op&(1<<i) != 0 {
					if len(d) == 0 {
						return nil, fmt.Errorf("%w: truncated delta", ErrCorrupt)
					}
					off |= uint64(d[0]) << (8 * i)
					d = d[1:]
				}
			}
			for i := 0; i < 3; i++ {
				if op&(0x10<<i) != 0 {
					if len(d) == 0 {
						return nil, fmt.Errorf("%w: truncated delta", ErrCorrupt)
					}
					size |= uint64(d[0]) << (8 * i)
					d = d[1:]
				}
			}
			if size == 0 {
				size = 0x10000
			}
			if off+size > uint64(len(base)) || int64(len(out))+int64(size) > rsize {
				return nil, fmt.Errorf("%w: delta copy out of range", ErrCorrupt)
			}
			out = append(out, base[off:off+size]...)
		case op != 0:
			n := int(op)
			if n > len(d) || int64(len(out)+n) > rsize {
				return nil, fmt.Errorf("%w: delta insert out of range", ErrCorrupt)
			}
			out = append(out, d[:n]...)
			d = d[n:]
		default:
			return nil, fmt.Errorf("%w: delta opcode 0", ErrCorrupt)
		}
	}
	if int64(len(out)) != rsize {
		return nil, fmt.Errorf("%w: delta result %d bytes, want %d", ErrCorrupt, len(out), rsize)
	}
	return out, nil
}

// readObjHead is readObj for a prefix: a small object comes whole from
// one read, a larger one is inflated only until done reports true. For a
// delta it returns the header only.
func (p packFile) readObjHead(off int64, done func([]byte) bool) (packHeader, []byte, error) {
	return p.readObjPrefix(off, done, false)
}

// readObjPrefix reads the object header at off and inflates its data:
// whole when done is nil, else until done reports true (see inflateHead).
// A delta's data is read only when deltas is set.
func (p packFile) readObjPrefix(off int64, done func([]byte) bool, deltas bool) (packHeader, []byte, error) {
	bp := smallBufPool.Get().(*[]byte)
	defer smallBufPool.Put(bp)
	b, err := p.readPrefix(off, *bp)
	if err != nil {
		return packHeader{}, nil, err
	}
	h, err := p.parseHeader(b, off)
	if err != nil || (h.typ > 4 && !deltas) {
		return h, nil, err
	}
	hl := h.dataOff - off
	// zlib's worst case: 5 bytes per stored block of at least 16 KiB, plus
	// header and checksum.
	bound := h.size + 5*(h.size/16383+1) + 16
	if hl+bound <= int64(len(b)) || off+int64(len(b)) == p.size.Load()-20 {
		if h.size > int64(len(b))*1032+1024 {
			return h, nil, fmt.Errorf("%w: %s: object size %d impossible at %d", ErrCorrupt, p.name, h.size, off)
		}
		data, err := inflateFrom(bytes.NewReader(b[hl:]), h.size)
		if err != nil {
			return h, nil, fmt.Errorf("%w: %s: object at %d: %v", ErrCorrupt, p.name, off, err)
		}
		return h, data, nil
	}
	if done == nil {
		data, err := p.inflate(h.dataOff, h.size)
		return h, data, err
	}
	data, err := p.inflateHead(h.dataOff, h.size, done)
	return h, data, err
}

// inflateHead inflates the zlib stream at off (of declared size size) a
// chunk at a time until done reports true for what it has, or the data
// ends: a prefix of the object without inflating all of it.
func (p packFile) inflateHead(off, size int64, done func([]byte) bool) ([]byte, error) {
	avail := p.size.Load() - 20 - off
	if avail <= 0 || size < 0 || size > avail*1032+1024 {
		return nil, fmt.Errorf("%w: %s: object size %d impossible at %d", ErrCorrupt, p.name, size, off)
	}
	br := bufioPool.Get().(*bufio.Reader)
	defer bufioPool.Put(br)
	br.Reset(io.NewSectionReader(p.f, off, avail))
	var zr io.ReadCloser
	if v := zrPool.Get(); v != nil {
		zr = v.(io.ReadCloser)
		if err := zr.(zlib.Resetter).Reset(br, nil); err != nil {
			return nil, fmt.Errorf("%w: %s: object at %d: %v", ErrCorrupt, p.name, off, err)
		}
	} else {
		var err error
		if zr, err = zlib.NewReader(br); err != nil {
			return nil, fmt.Errorf("%w: %s: object at %d: %v", ErrCorrupt, p.name, off, err)
		}
	}
	defer zrPool.Put(zr)
	out := make([]byte, 0, min(size, 4096))
	for int64(len(out)) < size {
		n := min(size-int64(len(out)), max(4096, int64(len(out))))
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(zr, out[start:]); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("%w: %s: object at %d: %v", ErrCorrupt, p.name, off, err)
		}
		if done(out) {
			break
		}
	}
	return out, nil
}
