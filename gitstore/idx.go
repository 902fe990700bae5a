package gitstore

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"sort"
)

// idxFile is a parsed pack index, version 2:
//
//	"\377tOc" 0x00000002, fanout[256] (uint32), names[n][20], crc32[n],
//	offset32[n] (MSB set: index into offset64), offset64[k], pack SHA-1,
//	idx SHA-1.
type idxFile struct {
	n       int
	names   []byte
	crcs    []byte
	offs    []byte
	large   []byte
	PackSum Hash
	IdxSum  Hash
	body    []byte // everything the idx SHA-1 covers
}

var idxMagic = []byte{0xff, 't', 'O', 'c', 0, 0, 0, 2}

// parseIdx checks the structure of an idx v2 file (not its checksum; see
// verify) and returns it. It never reads out of bounds on bad input.
func parseIdx(data []byte) (*idxFile, error) {
	const head = 8 + 256*4
	if len(data) < head+40 || !bytes.Equal(data[:8], idxMagic) {
		return nil, fmt.Errorf("%w: not an idx v2 file", ErrCorrupt)
	}
	prev := uint32(0)
	for i := 0; i < 256; i++ {
		v := binary.BigEndian.Uint32(data[8+4*i:])
		if v < prev {
			return nil, fmt.Errorf("%w: idx fanout not monotonic", ErrCorrupt)
		}
		prev = v
	}
	n := int(prev)
	rest := len(data) - head - 40
	if n < 0 || int64(n)*28 > int64(rest) || (rest-n*28)%8 != 0 {
		return nil, fmt.Errorf("%w: idx size does not match %d objects", ErrCorrupt, n)
	}
	ix := &idxFile{n: n}
	p := head
	ix.names = data[p : p+20*n]
	p += 20 * n
	ix.crcs = data[p : p+4*n]
	p += 4 * n
	ix.offs = data[p : p+4*n]
	p += 4 * n
	ix.large = data[p : len(data)-40]
	copy(ix.PackSum[:], data[len(data)-40:])
	copy(ix.IdxSum[:], data[len(data)-20:])
	ix.body = data[:len(data)-20]
	return ix, nil
}

// name returns the i'th object name (sorted order).
func (ix *idxFile) name(i int) (h Hash) {
	copy(h[:], ix.names[20*i:])
	return h
}

// crc returns the i'th object's CRC-32.
func (ix *idxFile) crc(i int) uint32 { return binary.BigEndian.Uint32(ix.crcs[4*i:]) }

// offset returns the i'th object's offset in the pack.
func (ix *idxFile) offset(i int) (int64, error) {
	o := binary.BigEndian.Uint32(ix.offs[4*i:])
	if o&0x80000000 == 0 {
		return int64(o), nil
	}
	k := int(o & 0x7fffffff)
	if 8*k+8 > len(ix.large) {
		return 0, fmt.Errorf("%w: idx 64-bit offset %d out of range", ErrCorrupt, k)
	}
	v := binary.BigEndian.Uint64(ix.large[8*k:])
	if v > 1<<62 {
		return 0, fmt.Errorf("%w: idx offset too large", ErrCorrupt)
	}
	return int64(v), nil
}

// verify checks the idx checksum and that names are sorted and unique.
func (ix *idxFile) verify() error {
	if sha1.Sum(ix.body) != ix.IdxSum {
		return fmt.Errorf("%w: idx checksum mismatch", ErrCorrupt)
	}
	for i := 1; i < ix.n; i++ {
		if bytes.Compare(ix.names[20*(i-1):20*i], ix.names[20*i:20*i+20]) >= 0 {
			return fmt.Errorf("%w: idx names not sorted", ErrCorrupt)
		}
	}
	var fan [256]int
	for i := 0; i < ix.n; i++ {
		fan[ix.names[20*i]]++
	}
	sum := 0
	data := ix.body
	for b := 0; b < 256; b++ {
		sum += fan[b]
		if int(binary.BigEndian.Uint32(data[8+4*b:])) != sum {
			return fmt.Errorf("%w: idx fanout does not match names", ErrCorrupt)
		}
	}
	return nil
}

// idxEntry is one object to write into an idx.
type idxEntry struct {
	hash   Hash
	offset int64
	crc    uint32
}

// encodeIdx returns an idx v2 file for entries (any order) of a pack whose
// trailer is packSum.
func encodeIdx(entries []idxEntry, packSum Hash) []byte {
	sorted := make([]idxEntry, len(entries))
	copy(sorted, entries)
	sort.Slice(sorted, func(i, j int) bool { return bytes.Compare(sorted[i].hash[:], sorted[j].hash[:]) < 0 })
	n := len(sorted)
	b := make([]byte, 0, 8+1024+n*28+40)
	b = append(b, idxMagic...)
	var fan [256]uint32
	for _, e := range sorted {
		fan[e.hash[0]]++
	}
	var sum uint32
	for i := 0; i < 256; i++ {
		sum += fan[i]
		b = binary.BigEndian.AppendUint32(b, sum)
	}
	for _, e := range sorted {
		b = append(b, e.hash[:]...)
	}
	for _, e := range sorted {
		b = binary.BigEndian.AppendUint32(b, e.crc)
	}
	var large []uint64
	for _, e := range sorted {
		if e.offset < 0x80000000 {
			b = binary.BigEndian.AppendUint32(b, uint32(e.offset))
		} else {
			b = binary.BigEndian.AppendUint32(b, 0x80000000|uint32(len(large)))
			large = append(large, uint64(e.offset))
		}
	}
	for _, o := range large {
		b = binary.BigEndian.AppendUint64(b, o)
	}
	b = append(b, packSum[:]...)
	sum1 := sha1.Sum(b)
	return append(b, sum1[:]...)
}
