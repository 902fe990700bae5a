package gitstore

import (
	"bytes"
	"fmt"
	"slices"
)

// midxRatio is how much bigger than the next one each midx of an object
// database is kept: a new midx (the packs that appeared since the last
// lookup) is merged with the one before it until that one is at least
// midxRatio times bigger. So there are at most log4(objects) of them to
// search, and each object is copied O(log objects) times over its life.
const midxRatio = 4

// midx is an in-memory multi-pack index: the object names of some packs
// merged into one sorted array, so a lookup is one binary search however
// many packs there are (git's multi-pack-index, kept in memory). An entry
// takes 28 bytes; a Go map of the same objects took about 110 per object
// (the idx bytes kept as well).
//
// A midx is never modified: merging builds a new one.
type midx struct {
	packs []*pack
	ents  []midxEnt // sorted by name; a name in two packs appears twice
	large []int64   // offsets of 2 GiB and beyond, as in idx v2
	shift uint      // bucket of a name: its first 16 bits >> shift
	fan   []uint32  // fan[k] is the first entry of bucket k; len buckets+1
}

// midxEnt is one object: its name, its pack (index into midx.packs) and its
// offset (MSB set: index into midx.large).
type midxEnt struct {
	name Hash
	pack uint32
	off  uint32
}

// len returns the number of entries.
func (m *midx) len() int {
	if m == nil {
		return 0
	}
	return len(m.ents)
}

// find returns where object h is.
func (m *midx) find(h Hash) (objRef, bool) {
	k := (int(h[0])<<8 | int(h[1])) >> m.shift
	lo, hi := int(m.fan[k]), int(m.fan[k+1])
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		switch c := bytes.Compare(m.ents[mid].name[:], h[:]); {
		case c == 0:
			e := &m.ents[mid]
			off := int64(e.off)
			if e.off&0x80000000 != 0 {
				off = m.large[e.off&0x7fffffff]
			}
			return objRef{m.packs[e.pack], off}, true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return objRef{}, false
}

// mergeMidx returns a midx of the entries of olds and of packs, whose idx
// is passed in idxs. It sorts by bucketing on the first bits of the name
// (names are uniformly distributed) and sorting each small bucket, so it
// runs in time linear in the number of entries.
func mergeMidx(olds []*midx, packs []*pack, idxs []*idxFile) (*midx, error) {
	var n, np uint64
	for _, o := range olds {
		n += uint64(len(o.ents))
		np += uint64(len(o.packs))
	}
	for _, ix := range idxs {
		n += uint64(ix.n)
	}
	np += uint64(len(packs))
	if n >= 1<<32 || np >= 1<<32 {
		return nil, fmt.Errorf("gitstore: too many objects to index")
	}
	m := &midx{ents: make([]midxEnt, n), packs: make([]*pack, 0, np)}
	if n < 1<<12 {
		m.shift = 8
	}
	m.fan = make([]uint32, 1<<(16-m.shift)+1)
	bucket := func(b []byte) int { return (int(b[0])<<8 | int(b[1])) >> m.shift }
	for _, o := range olds {
		for i := range o.ents {
			m.fan[bucket(o.ents[i].name[:])+1]++
		}
	}
	for _, ix := range idxs {
		for i := 0; i < ix.n; i++ {
			m.fan[bucket(ix.names[20*i:])+1]++
		}
	}
	for k := 1; k < len(m.fan); k++ {
		m.fan[k] += m.fan[k-1]
	}
	next := slices.Clone(m.fan[:len(m.fan)-1])
	put := func(name Hash, pack uint32, off int64) {
		k := bucket(name[:])
		e := &m.ents[next[k]]
		next[k]++
		e.name, e.pack = name, pack
		if off < 0x80000000 {
			e.off = uint32(off)
		} else {
			e.off = 0x80000000 | uint32(len(m.large))
			m.large = append(m.large, off)
		}
	}
	for _, o := range olds {
		base := uint32(len(m.packs))
		m.packs = append(m.packs, o.packs...)
		for i := range o.ents {
			e := &o.ents[i]
			off := int64(e.off)
			if e.off&0x80000000 != 0 {
				off = o.large[e.off&0x7fffffff]
			}
			put(e.name, base+e.pack, off)
		}
	}
	for j, ix := range idxs {
		base := uint32(len(m.packs))
		m.packs = append(m.packs, packs[j])
		for i := 0; i < ix.n; i++ {
			off, err := ix.offset(i)
			if err != nil {
				return nil, fmt.Errorf("gitstore: %s.idx: %w", packs[j].name, err)
			}
			put(ix.name(i), base, off)
		}
	}
	if uint64(len(m.large)) > 1<<31 {
		return nil, fmt.Errorf("gitstore: too many large offsets to index")
	}
	for k := 0; k+1 < len(m.fan); k++ {
		if b := m.ents[m.fan[k]:m.fan[k+1]]; len(b) > 1 {
			slices.SortFunc(b, func(x, y midxEnt) int { return bytes.Compare(x.name[:], y.name[:]) })
		}
	}
	return m, nil
}
