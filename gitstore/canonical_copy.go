package gitstore

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
)

// WriteCanonicalPackFrom is WriteCanonicalPack for a range whose objects
// canonical packs already hold, the day's slices when a day is sealed:
// each object found in one of the pack files at srcs is copied as its
// compressed record, the others are inflated and deflated as
// WriteCanonicalPack does. The bytes written are the same (a canonical
// record is a function of the object alone; TestCanonicalPackFromSlices),
// and the deflate, most of a seal's time, is gone for the copied objects
// (BenchmarkSealDay, docs/BENCHMARKS.md). The files at srcs must be
// canonical packs (WriteCanonicalPack's output): each is verified
// strictly (every object re-hashed) before any record of it is used, but
// whether its records are deflated at the canonical level is trusted.
func (s *Store) WriteCanonicalPackFrom(w io.Writer, epoch int, from, to Hash, srcs []string) (PackInfo, error) {
	return s.impl.writeCanonicalPackFrom(w, epoch, from, to, srcs)
}

// recordSource is the records of some canonical pack files, by object.
type recordSource struct {
	files []*os.File
	recs  map[Hash]srcRecord
}

// srcRecord is where an object's record is in one of the files.
type srcRecord struct {
	file     int
	t        ObjectType
	off, end int64
}

// openRecordSource opens and verifies the packs at paths (on every core)
// and maps their objects to their records.
func openRecordSource(paths []string) (*recordSource, error) {
	rs := &recordSource{files: make([]*os.File, len(paths)), recs: map[Hash]srcRecord{}}
	objs := make([][]scannedObj, len(paths))
	errs := make([]error, len(paths))
	next := make(chan int, len(paths))
	for i := range paths {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(len(paths), runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range next {
				f, err := os.Open(paths[i])
				if err != nil {
					errs[i] = err
					continue
				}
				rs.files[i] = f
				fi, err := f.Stat()
				if err != nil {
					errs[i] = err
					continue
				}
				if objs[i], err = verifyPackReader(f, fi.Size()); err != nil {
					errs[i] = fmt.Errorf("%s: %w", paths[i], err)
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			rs.close()
			return nil, fmt.Errorf("gitstore: canonical pack: source %w", err)
		}
		for _, o := range objs[i] {
			if !o.delta {
				rs.recs[o.Hash] = srcRecord{file: i, t: o.Type, off: o.Offset, end: o.end}
			}
		}
	}
	return rs, nil
}

// record appends to buf the record of h when a source holds it.
func (rs *recordSource) record(t ObjectType, h Hash, buf []byte) ([]byte, bool, error) {
	r, ok := rs.recs[h]
	if !ok || r.t != t {
		return buf, false, nil
	}
	n := int(r.end - r.off)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := rs.files[r.file].ReadAt(buf, r.off); err != nil {
		return buf[:0], false, fmt.Errorf("gitstore: canonical pack: copy %s: %w", h, err)
	}
	return buf, true, nil
}

func (rs *recordSource) close() {
	for _, f := range rs.files {
		if f != nil {
			f.Close()
		}
	}
}
