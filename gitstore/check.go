package gitstore

import (
	"crypto/sha1"
	"fmt"
	"io"
	"os"
)

func (s *store) check() error {
	if err := s.refresh(); err != nil {
		return err
	}
	for _, n := range s.epochs() {
		db, err := s.epoch(n)
		if err != nil {
			return err
		}
		for _, p := range db.packList() {
			if err := checkPack(db, p); err != nil {
				return fmt.Errorf("gitstore: epoch %d: %w", n, err)
			}
		}
		tip, err := readRef(s.gitDir(n), masterRef)
		if err != nil {
			return fmt.Errorf("gitstore: epoch %d: %w", n, err)
		}
		if tip.IsZero() {
			continue
		}
		err = walkChain(db, n, tip, ZeroHash, false, func(Entry, RawCommit) error { return nil })
		if err != nil {
			return fmt.Errorf("gitstore: epoch %d: %w", n, err)
		}
	}
	return nil
}

// checkPack verifies a pack against itself and its idx: structure, every
// zlib stream, the trailer, the idx checksum, the same objects at the same
// offsets with the same CRCs, and every object's name (deltas resolved).
// It reads the idx afresh and opens the pack file once more, outside the
// file cache, for the scan.
func checkPack(db *odb, p *pack) error {
	ix, err := db.readIdx(p)
	if err != nil {
		return err
	}
	if err := ix.verify(); err != nil {
		return fmt.Errorf("%s.idx: %w", p.name, err)
	}
	f, err := os.Open(p.path)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	objs, err := scanPack(f, st.Size(), true)
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	// The trailer: SHA-1 of everything before it, and what the idx names.
	h := sha1.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, st.Size()-20)); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	var want, got Hash
	h.Sum(want[:0])
	if _, err := f.ReadAt(got[:], st.Size()-20); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	if got != want {
		return fmt.Errorf("%s: %w: pack trailer does not match its contents", p.name, ErrCorrupt)
	}
	if ix.PackSum != got {
		return fmt.Errorf("%s: %w: idx names another pack", p.name, ErrCorrupt)
	}
	if len(objs) != ix.n {
		return fmt.Errorf("%s: %w: pack holds %d objects, idx %d", p.name, ErrCorrupt, len(objs), ix.n)
	}
	byOff := make(map[int64]int, len(objs))
	for i, o := range objs {
		byOff[o.Offset] = i
	}
	for i := 0; i < ix.n; i++ {
		name := ix.name(i)
		off, err := ix.offset(i)
		if err != nil {
			return fmt.Errorf("%s.idx: %w", p.name, err)
		}
		k, ok := byOff[off]
		if !ok {
			return fmt.Errorf("%s: %w: idx offset %d of %s is not an object", p.name, ErrCorrupt, off, name)
		}
		o := objs[k]
		delete(byOff, off)
		if o.crc != ix.crc(i) {
			return fmt.Errorf("%s: %w: CRC of %s differs from idx", p.name, ErrCorrupt, name)
		}
		if o.delta {
			t, data, err := db.readAt(p, off, 0)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", p.name, name, err)
			}
			o.Hash = hashObject(t, data)
		}
		if o.Hash != name {
			return fmt.Errorf("%s: %w: object at %d is %s, idx says %s", p.name, ErrCorrupt, off, o.Hash, name)
		}
	}
	return nil
}
