package gitstore

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"

	"mailswarm/internal/durable"
)

// tmpPrefix starts the names of our temporary files; Open removes leftovers
// (git's own tmp_pack_* files are never touched).
const tmpPrefix = "tmp_mailswarm_"

// appendObjHeader appends a pack object header (type and size varint).
func appendObjHeader(b []byte, t ObjectType, size int64) []byte {
	c := byte(t)<<4 | byte(size&15)
	size >>= 4
	for size > 0 {
		b = append(b, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	return append(b, c)
}

var fastZPool = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.BestSpeed)
	return w
}}

// packObj is one object ready to be written into a pack.
type packObj struct {
	hash Hash
	rec  []byte // header + zlib stream
	off  int64  // assigned when written
	crc  uint32
}

// packBuilder collects the objects of one batch pack, each once.
type packBuilder struct {
	objs  []packObj
	index map[Hash]int
	size  int64 // bytes of records so far
}

func newPackBuilder() *packBuilder { return &packBuilder{index: map[Hash]int{}} }

// add compresses and adds an object unless it is already in the batch;
// it returns the object's index in the batch.
func (pb *packBuilder) add(t ObjectType, h Hash, data []byte) int {
	if i, ok := pb.index[h]; ok {
		return i
	}
	rec := packRecord(t, data)
	return pb.addRecord(h, rec, crc32.ChecksumIEEE(rec))
}

// addRecord adds an object already encoded as a pack record.
func (pb *packBuilder) addRecord(h Hash, rec []byte, crc uint32) int {
	if i, ok := pb.index[h]; ok {
		return i
	}
	pb.objs = append(pb.objs, packObj{hash: h, rec: rec, crc: crc})
	pb.index[h] = len(pb.objs) - 1
	pb.size += int64(len(rec))
	return len(pb.objs) - 1
}

// packRecord encodes an object as an undeltified pack record: its type and
// size header, then its zlib stream (fast compression: these batch packs are
// rewritten canonically for the swarm anyway).
func packRecord(t ObjectType, data []byte) []byte {
	var zbuf bytes.Buffer
	zbuf.Grow(len(data)/2 + 64)
	zw := fastZPool.Get().(*zlib.Writer)
	zw.Reset(&zbuf)
	zw.Write(data) // writes to a bytes.Buffer cannot fail
	zw.Close()
	fastZPool.Put(zw)
	rec := appendObjHeader(make([]byte, 0, 16+zbuf.Len()), t, int64(len(data)))
	return append(rec, zbuf.Bytes()...)
}

// syncDir fsyncs a directory so renames in it are durable.
func syncDir(dir string) error {
	if err := durable.SyncDir(dir); err != nil {
		return fmt.Errorf("gitstore: fsync %s: %w", dir, err)
	}
	return nil
}

// tmpName returns a fresh temporary file name in dir.
func tmpName(dir, kind string) string {
	var r [8]byte
	rand.Read(r[:])
	return filepath.Join(dir, tmpPrefix+kind+"_"+hex.EncodeToString(r[:]))
}

// writeFileSync writes data to a new temporary file in dir (mode 0444,
// named as tmpName does, so Open removes it when left) and fsyncs it
// (unless noSync); it returns the temporary path.
func writeFileSync(dir, kind string, data []byte, noSync bool) (string, error) {
	path, err := durable.WriteTemp(dir, tmpPrefix+kind+"_*", data, 0o444, !noSync)
	if err != nil {
		return "", fmt.Errorf("gitstore: write %s: %w", kind, err)
	}
	return path, nil
}

// write stores the batch as pack-<trailer>.{keep,idx,pack} in packDir:
// temporary files fsynced, .keep created, idx renamed, then pack renamed,
// then the directory fsynced. It sets each object's offset and returns the
// pack's base name.
func (pb *packBuilder) write(packDir string, noSync bool) (string, error) {
	tmpPack := tmpName(packDir, "pack")
	f, err := os.OpenFile(tmpPack, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return "", fmt.Errorf("gitstore: create pack: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmpPack)
		}
	}()
	sum := sha1.New()
	bw := bufio.NewWriterSize(f, 256<<10)
	var hdr [12]byte
	copy(hdr[:], "PACK")
	binary.BigEndian.PutUint32(hdr[4:], 2)
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(pb.objs)))
	bw.Write(hdr[:])
	sum.Write(hdr[:])
	off := int64(12)
	entries := make([]idxEntry, len(pb.objs))
	for i := range pb.objs {
		o := &pb.objs[i]
		o.off = off
		bw.Write(o.rec)
		sum.Write(o.rec)
		entries[i] = idxEntry{o.hash, off, o.crc}
		off += int64(len(o.rec))
	}
	var trailer Hash
	sum.Sum(trailer[:0])
	bw.Write(trailer[:])
	if err := bw.Flush(); err != nil {
		return "", fmt.Errorf("gitstore: write pack: %w", err)
	}
	if !noSync {
		if err := f.Sync(); err != nil {
			return "", fmt.Errorf("gitstore: fsync pack: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("gitstore: close pack: %w", err)
	}
	tmpIdx, err := writeFileSync(packDir, "idx", encodeIdx(entries, trailer), noSync)
	if err != nil {
		return "", err
	}
	name := "pack-" + trailer.String()
	base := filepath.Join(packDir, name)
	if err := os.WriteFile(base+".keep", []byte("mailswarm\n"), 0o644); err != nil {
		os.Remove(tmpIdx)
		return "", fmt.Errorf("gitstore: write keep: %w", err)
	}
	if err := os.Rename(tmpIdx, base+".idx"); err != nil {
		os.Remove(tmpIdx)
		return "", fmt.Errorf("gitstore: install idx: %w", err)
	}
	if err := os.Rename(tmpPack, base+".pack"); err != nil {
		return "", fmt.Errorf("gitstore: install pack: %w", err)
	}
	ok = true
	if !noSync {
		if err := syncDir(packDir); err != nil {
			return "", err
		}
	}
	return name, nil
}
