package gitstore

import (
	"bytes"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// appendPacks appends n single-commit batches (one pack each) and returns
// the entries and the commits.
func appendPacks(t *testing.T, s *Store, n int) ([]Entry, []Commit) {
	t.Helper()
	commits := testCommits(0, n)
	var entries []Entry
	for i := range commits {
		es, err := s.Append(commits[i : i+1])
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, es...)
	}
	return entries, commits
}

// openPackFDs counts this process's open file descriptors on .pack files
// under dir (Linux only; -1 elsewhere).
func openPackFDs(t *testing.T, dir string) int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir) && strings.HasSuffix(target, ".pack") {
			n++
		}
	}
	return n
}

func TestBoundedOpenPacks(t *testing.T) {
	for _, max := range []int{8, 1} {
		t.Run(fmt.Sprintf("max=%d", max), func(t *testing.T) {
			dir := t.TempDir()
			s := openTest(t, dir, nil)
			s.impl.files.max = max
			const nPacks = 200
			entries, commits := appendPacks(t, s, nPacks)
			if got := len(mustGlob(t, filepath.Join(dir, "git/0.git/objects/pack/*.pack"))); got != nPacks {
				t.Fatalf("%d packs on disk, want %d", got, nPacks)
			}
			s.Close()

			s = openTest(t, dir, nil)
			files := s.impl.files
			files.max = max
			const readers = 6
			var wg sync.WaitGroup
			errs := make(chan error, readers+1)
			for g := 0; g < readers; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range entries {
						i := (k*7 + g*31) % len(entries) // a permutation, each reader its own
						b, err := s.ReadBlob(entries[i].BlobLoc)
						if err != nil {
							errs <- fmt.Errorf("reader %d: ReadBlob %d: %w", g, i, err)
							return
						}
						if !bytes.Equal(b, commits[i].Blob) {
							errs <- fmt.Errorf("reader %d: ReadBlob %d: wrong bytes", g, i)
							return
						}
						if n := files.openFiles(); n > max {
							errs <- fmt.Errorf("%d pack files open, cap %d", n, max)
							return
						}
					}
				}()
			}
			wg.Add(1)
			go func() { // lookups by name and reads through them
				defer wg.Done()
				n := 0
				err := s.Walk(0, ZeroHash, func(e Entry) error {
					if e != entries[n] {
						return fmt.Errorf("Walk entry %d = %+v, want %+v", n, e, entries[n])
					}
					n++
					return nil
				})
				if err == nil && n != nPacks {
					err = fmt.Errorf("Walk gave %d entries, want %d", n, nPacks)
				}
				if err != nil {
					errs <- err
				}
			}()
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if p := files.peak.Load(); p > int64(max) {
				t.Errorf("peak %d pack files open, cap %d", p, max)
			}
			if o := files.opens.Load(); o <= nPacks {
				t.Errorf("%d opens for %d packs under a cap of %d: nothing was evicted and reopened", o, nPacks, max)
			}
			if n := openPackFDs(t, dir); n > max {
				t.Errorf("/proc/self/fd shows %d pack files open, cap %d", n, max)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if n := files.openFiles(); n != 0 {
				t.Errorf("%d pack files open after Close", n)
			}
			if n := openPackFDs(t, dir); n > 0 {
				t.Errorf("/proc/self/fd shows %d pack files open after Close", n)
			}
			if _, err := s.ReadBlob(entries[0].BlobLoc); err == nil {
				t.Error("ReadBlob after Close succeeded")
			}
		})
	}
}

// idxReads returns how many idx files s has read, over all epochs.
func idxReads(s *Store) int64 {
	s.impl.mu.RLock()
	defer s.impl.mu.RUnlock()
	var n int64
	for _, db := range s.impl.eps {
		n += db.idxReads.Load()
	}
	return n
}

func TestOpenReadsNoIdx(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	const nPacks = 50
	entries, commits := appendPacks(t, s, nPacks)
	s.Close()

	s = openTest(t, dir, nil)
	if n := idxReads(s); n != 0 {
		t.Fatalf("Open read %d idx files, want 0", n)
	}
	if n := s.impl.files.opens.Load(); n != 0 {
		t.Fatalf("Open opened %d pack files, want 0", n)
	}
	if _, err := s.Tip(0); err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		b, err := s.ReadBlob(e.BlobLoc)
		if err != nil || !bytes.Equal(b, commits[i].Blob) {
			t.Fatalf("ReadBlob %d: %v", i, err)
		}
	}
	if n := idxReads(s); n != 0 {
		t.Fatalf("ReadBlob read %d idx files, want 0", n)
	}
	if got := walkAll(t, s, 0, ZeroHash); len(got) != nPacks {
		t.Fatalf("walked %d, want %d", len(got), nPacks)
	}
	if n := idxReads(s); n != nPacks {
		t.Fatalf("Walk read %d idx files, want %d", n, nPacks)
	}
	walkAll(t, s, 0, ZeroHash)
	if n := idxReads(s); n != nPacks {
		t.Fatalf("a second Walk read idx files again: %d, want %d", n, nPacks)
	}
	// A new pack is indexed alone, on the next lookup.
	if _, err := s.Append(testCommits(nPacks, 1)); err != nil {
		t.Fatal(err)
	}
	if got := walkAll(t, s, 0, ZeroHash); len(got) != nPacks+1 {
		t.Fatalf("walked %d, want %d", len(got), nPacks+1)
	}
	if n := idxReads(s); n != nPacks+1 {
		t.Fatalf("idx files read after one more pack: %d, want %d", n, nPacks+1)
	}
}

func TestMidxLevels(t *testing.T) {
	// Packs indexed one at a time (each Append looks the previous up) end
	// in a few midxes, each at least midxRatio times the next.
	s := openTest(t, t.TempDir(), nil)
	const nPacks = 300
	entries, _ := appendPacks(t, s, nPacks)
	walkAll(t, s, 0, ZeroHash)
	db, err := s.impl.epoch(0)
	if err != nil {
		t.Fatal(err)
	}
	db.mu.RLock()
	mis := db.mis
	db.mu.RUnlock()
	total := 0
	for i, m := range mis {
		total += len(m.ents)
		if i > 0 && len(mis[i-1].ents) < midxRatio*len(m.ents) {
			t.Errorf("midx %d has %d entries, the one before only %d", i, len(m.ents), len(mis[i-1].ents))
		}
	}
	if total != 3*nPacks {
		t.Errorf("midxes hold %d entries, want %d", total, 3*nPacks)
	}
	if max := bits.Len(uint(total))/2 + 1; len(mis) > max {
		t.Errorf("%d midxes for %d objects, want at most %d", len(mis), total, max)
	}
	for i, e := range entries {
		for _, h := range []Hash{e.Commit, e.Tree, e.Blob} {
			r, ok, err := db.lookup(h)
			if err != nil || !ok {
				t.Fatalf("lookup %s of entry %d: %v, %v", h, i, ok, err)
			}
			if h == e.Blob && (r.pack.name != e.BlobLoc.Pack || r.off != e.BlobLoc.Offset) {
				t.Fatalf("lookup blob %d = %s@%d, want %s@%d", i, r.pack.name, r.off, e.BlobLoc.Pack, e.BlobLoc.Offset)
			}
		}
	}
	if _, ok, err := db.lookup(Hash{1, 2, 3}); ok || err != nil {
		t.Errorf("lookup of an absent name = %v, %v", ok, err)
	}
}

func TestMergeMidxLargeOffsets(t *testing.T) {
	// Two packs whose idx have offsets beyond 2 GiB (idx v2's 64-bit table),
	// merged with a midx holding some as well.
	mk := func(name string, seed, n int) (*pack, *idxFile, []idxEntry) {
		es := make([]idxEntry, n)
		for i := range es {
			es[i].hash = hashObject(ObjBlob, fmt.Appendf(nil, "%d/%d", seed, i))
			es[i].offset = int64(12 + i*1000)
			if i%3 == 0 {
				es[i].offset += 5 << 30
			}
		}
		ix, err := parseIdx(encodeIdx(es, Hash{}))
		if err != nil {
			t.Fatal(err)
		}
		return &pack{name: name}, ix, es
	}
	pa, ia, ea := mk("pack-a", 1, 5000)
	pb, ib, eb := mk("pack-b", 2, 100)
	pc, ic, ec := mk("pack-c", 3, 7)
	m1, err := mergeMidx(nil, []*pack{pa}, []*idxFile{ia})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := mergeMidx(nil, []*pack{pb}, []*idxFile{ib})
	if err != nil {
		t.Fatal(err)
	}
	m, err := mergeMidx([]*midx{m1, m2}, []*pack{pc}, []*idxFile{ic})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p  *pack
		es []idxEntry
	}{{pa, ea}, {pb, eb}, {pc, ec}} {
		for _, e := range c.es {
			r, ok := m.find(e.hash)
			if !ok || r.pack != c.p || r.off != e.offset {
				t.Fatalf("find(%s) = %v %p@%d, want %s (%p) @%d", e.hash, ok, r.pack, r.off, c.p.name, c.p, e.offset)
			}
		}
	}
	if _, ok := m.find(Hash{}); ok {
		t.Error("found the zero hash")
	}
}
