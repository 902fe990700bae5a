package gitstore

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
)

// canonicalLevel is the fixed zlib level of canonical packs. Go's
// compress/zlib output at a given level is stable across toolchains (see
// docs/DESIGN.md, "Packs, torrents and the manifest"; TestCanonicalPackGolden
// pins it), so anyone holding the objects rebuilds the same bytes.
const canonicalLevel = 6

func (s *store) writeCanonicalPack(w io.Writer, n int, from, to Hash) (PackInfo, error) {
	db, err := s.epoch(n)
	if err != nil {
		return PackInfo{}, err
	}
	return writeCanonical(db, w, from, to, nil)
}

// writeCanonicalPackFrom is writeCanonicalPack copying the records that
// the canonical packs at srcs hold.
func (s *store) writeCanonicalPackFrom(w io.Writer, n int, from, to Hash, srcs []string) (PackInfo, error) {
	db, err := s.epoch(n)
	if err != nil {
		return PackInfo{}, err
	}
	rs, err := openRecordSource(srcs)
	if err != nil {
		return PackInfo{}, err
	}
	defer rs.close()
	return writeCanonical(db, w, from, to, rs)
}

// writeCanonical writes the canonical pack of the commits after from up to
// and including to.
//
// rs, when not nil, holds records of canonical packs: an object found
// there is copied as it is (the same bytes canonicalRecord would write,
// since they are canonical records of the same object) rather than
// inflated and deflated again.
func writeCanonical(db *odb, w io.Writer, from, to Hash, rs *recordSource) (PackInfo, error) {
	var info PackInfo
	if to.IsZero() {
		return info, fmt.Errorf("gitstore: canonical pack: no end commit")
	}
	links, err := collectChain(db, to, from)
	if err != nil {
		return info, fmt.Errorf("gitstore: canonical pack: %w", err)
	}
	// Order: commits oldest to newest, then trees, then blobs, each once.
	type item struct {
		t ObjectType
		h Hash
	}
	seen := make(map[Hash]bool, 3*len(links))
	var commits, trees, blobs []item
	for _, l := range links {
		if !seen[l.commit] {
			seen[l.commit] = true
			commits = append(commits, item{ObjCommit, l.commit})
		}
	}
	for _, l := range links {
		if !seen[l.tree] {
			seen[l.tree] = true
			trees = append(trees, item{ObjTree, l.tree})
		}
	}
	for _, l := range links {
		t, data, err := db.read(l.tree)
		if err != nil {
			return info, fmt.Errorf("gitstore: canonical pack: tree %s: %w", l.tree, err)
		}
		if t != ObjTree {
			return info, fmt.Errorf("gitstore: canonical pack: %w: %s is not a tree", ErrCorrupt, l.tree)
		}
		_, blob, err := parseTree(data)
		if err != nil {
			return info, fmt.Errorf("gitstore: canonical pack: tree %s: %w", l.tree, err)
		}
		if !seen[blob] {
			seen[blob] = true
			blobs = append(blobs, item{ObjBlob, blob})
		}
	}
	all := append(append(commits, trees...), blobs...)

	sum1, sum256 := sha1.New(), sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, sum1, sum256)}
	bw := bufio.NewWriterSize(cw, 64<<10)
	var hdr [12]byte
	copy(hdr[:], "PACK")
	binary.BigEndian.PutUint32(hdr[4:], 2)
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(all)))
	bw.Write(hdr[:])
	// Each object is read (inflated) and deflated again on every core,
	// a batch at a time; the records are written in order, so the bytes
	// are the same as one core would write.
	recs := make([][]byte, min(canonicalBatch, len(all)))
	errs := make([]error, len(recs))
	workers := min(runtime.GOMAXPROCS(0), len(recs))
	zws := make([]*zlib.Writer, workers)
	for i := range zws {
		zws[i], _ = zlib.NewWriterLevel(nil, canonicalLevel)
	}
	for start := 0; start < len(all); start += len(recs) {
		batch := all[start:min(start+len(recs), len(all))]
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= len(batch) {
						return
					}
					var ok bool
					if rs != nil {
						recs[i], ok, errs[i] = rs.record(batch[i].t, batch[i].h, recs[i][:0])
					}
					if !ok && errs[i] == nil {
						recs[i], errs[i] = canonicalRecord(db, zws[w], batch[i].t, batch[i].h, recs[i][:0])
					}
				}
			})
		}
		wg.Wait()
		for i := range batch {
			if errs[i] != nil {
				return info, errs[i]
			}
			if _, err := bw.Write(recs[i]); err != nil {
				return info, fmt.Errorf("gitstore: canonical pack: %w", err)
			}
			if cap(recs[i]) > 1<<20 {
				recs[i] = nil // keep no large buffer for the next batch
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return info, fmt.Errorf("gitstore: canonical pack: %w", err)
	}
	sum1.Sum(info.Trailer[:0])
	if _, err := cw.Write(info.Trailer[:]); err != nil {
		return info, fmt.Errorf("gitstore: canonical pack: %w", err)
	}
	sum256.Sum(info.SHA256[:0])
	info.Objects = len(all)
	info.Commits = len(commits)
	info.Size = cw.n
	return info, nil
}

// canonicalBatch is how many objects are prepared at once: enough to keep
// every core busy, few enough to bound memory (a batch of large blobs).
const canonicalBatch = 64

// canonicalRecord appends to buf the pack record of object h, which must
// be of type t: its header and its contents deflated at canonicalLevel.
func canonicalRecord(db *odb, zw *zlib.Writer, t ObjectType, h Hash, buf []byte) ([]byte, error) {
	got, data, err := db.read(h)
	if err != nil {
		return buf, fmt.Errorf("gitstore: canonical pack: %s: %w", h, err)
	}
	if got != t {
		return buf, fmt.Errorf("gitstore: canonical pack: %w: %s is a %s, want %s", ErrCorrupt, h, typeName(got), typeName(t))
	}
	w := bytes.NewBuffer(appendObjHeader(buf, t, int64(len(data))))
	zw.Reset(w)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		return buf, fmt.Errorf("gitstore: canonical pack: %w", err)
	}
	return w.Bytes(), nil
}

// countWriter counts bytes written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
