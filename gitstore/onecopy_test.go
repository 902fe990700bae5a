package gitstore

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// packNames returns the base names of epoch 0's packs on disk.
func packNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "git", "0.git", "objects", "pack"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if b, ok := strings.CutSuffix(e.Name(), ".pack"); ok {
			out = append(out, b)
		}
	}
	sort.Strings(out)
	return out
}

// writeDayPack writes the canonical pack of (from, to] to a file in dir.
func writeDayPack(t *testing.T, s *Store, dir, name string, from, to Hash) string {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.WriteCanonicalPack(&buf, 0, from, to); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSealedOneCopy: sealed day packs linked in, the batch packs they
// cover dropped (and only those: a batch spanning an open day stays),
// reads by stale locations and by a second handle opened before the drop
// still work, and git fsck --strict is clean.
func TestSealedOneCopy(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	commits := testCommits(0, 40)
	var es []Entry
	var batches []string // the batch pack of each Append of 8
	for i := 0; i < 40; i += 8 {
		before := packNames(t, dir)
		e, err := s.Append(commits[i : i+8])
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e...)
		for _, p := range packNames(t, dir) {
			if !slices.Contains(before, p) {
				batches = append(batches, p)
			}
		}
	}
	if len(batches) != 5 {
		t.Fatalf("test setup: %d batch packs, want 5", len(batches))
	}
	other := openTest(t, dir, nil) // another reader, indexed before the drops
	walkAll(t, other, 0, ZeroHash)

	// Day A: commits 0..11 (batch 0 whole, batch 1 half); day B: 12..27
	// (batch 1's rest, batch 2, half of batch 3); 28..39 are the open day.
	packs := t.TempDir() // as swarm/packs: same file system
	dayA := writeDayPack(t, s, packs, "a.pack", ZeroHash, es[11].Commit)
	dayB := writeDayPack(t, s, packs, "b.pack", es[11].Commit, es[27].Commit)

	got, err := s.InstallSealed(0, dayA)
	if err != nil {
		t.Fatalf("InstallSealed(day A): %v", err)
	}
	if len(got) != 12 || got[11].Commit != es[11].Commit {
		t.Fatalf("InstallSealed(day A) = %d entries, want the 12 of day A", len(got))
	}
	for i, e := range got {
		if e.Blob != es[i].Blob || strings.HasPrefix(e.BlobLoc.Pack, batches[0]) {
			t.Fatalf("entry %d: %+v, want blob %s in the sealed pack", i, e.BlobLoc, es[i].Blob)
		}
		b, err := s.ReadBlob(e.BlobLoc)
		if err != nil || !bytes.Equal(b, commits[i].Blob) {
			t.Fatalf("ReadBlob(%+v) = %d bytes, %v", e.BlobLoc, len(b), err)
		}
	}
	if _, err := s.InstallSealed(0, dayA); err != nil {
		t.Fatalf("InstallSealed(day A) again: %v", err)
	}
	// A keep says no: nothing dropped.
	if d, err := s.DropCovered(0, func(string) bool { return true }); err != nil || len(d) != 0 {
		t.Fatalf("DropCovered(keep all) = %v, %v", d, err)
	}
	d, err := s.DropCovered(0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d, batches[:1]) {
		t.Fatalf("after day A: dropped %v, want %v (batch 1 spans day B)", d, batches[:1])
	}

	// Stale locations of batch 0: by name when the Loc carries it.
	stale := es[3].BlobLoc
	if _, err := s.ReadBlob(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadBlob(stale Loc without name) = %v, want ErrNotExist", err)
	}
	stale.Blob = es[3].Blob
	if b, err := s.ReadBlob(stale); err != nil || !bytes.Equal(b, commits[3].Blob) {
		t.Errorf("ReadBlob(stale Loc with name) = %d bytes, %v", len(b), err)
	}
	if b, err := other.ReadBlob(stale); err != nil || !bytes.Equal(b, commits[3].Blob) {
		t.Errorf("second handle: ReadBlob(stale Loc with name) = %d bytes, %v", len(b), err)
	}

	if _, err := s.InstallSealed(0, dayB); err != nil {
		t.Fatalf("InstallSealed(day B): %v", err)
	}
	// A drop cut short by a crash: the pack removed, its idx left.
	pd := filepath.Join(dir, "git", "0.git", "objects", "pack")
	if err := os.Remove(filepath.Join(pd, batches[1]+".pack")); err != nil {
		t.Fatal(err)
	}
	if d, err = s.DropCovered(0, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(d, batches[2:3]) {
		t.Fatalf("after day B: dropped %v, want %v", d, batches[2:3])
	}
	for _, ext := range []string{".idx", ".keep"} {
		if _, err := os.Stat(filepath.Join(pd, batches[1]+ext)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s%s left after a drop cut short: %v", batches[1], ext, err)
		}
	}
	left := packNames(t, dir)
	if !slices.Contains(left, batches[3]) || !slices.Contains(left, batches[4]) || len(left) != 4 {
		t.Fatalf("packs left %v: want the two sealed and batches 3, 4 (open day)", left)
	}

	// Everything reads, from this handle, the one opened before, and a new one.
	for name, h := range map[string]*Store{"same": s, "other": other, "new": openTest(t, dir, nil)} {
		all := walkAll(t, h, 0, ZeroHash)
		if len(all) != 40 {
			t.Fatalf("%s: walk found %d commits, want 40", name, len(all))
		}
		for i, e := range all {
			if e.Commit != es[i].Commit || e.Blob != es[i].Blob {
				t.Fatalf("%s: commit %d is %s, want %s", name, i, e.Commit, es[i].Commit)
			}
			if !slices.Contains(left, e.BlobLoc.Pack) {
				t.Fatalf("%s: walk locates blob %d in %s, a pack dropped", name, i, e.BlobLoc.Pack)
			}
			b, err := h.ReadBlob(e.BlobLoc)
			if err != nil || !bytes.Equal(b, commits[i].Blob) {
				t.Fatalf("%s: ReadBlob(%+v) = %d bytes, %v", name, e.BlobLoc, len(b), err)
			}
		}
		if err := h.Check(); err != nil {
			t.Fatalf("%s: Check: %v", name, err)
		}
	}
	if _, err := exec.LookPath("git"); err == nil {
		git(t, filepath.Join(dir, "git", "0.git"), "fsck", "--strict", "--no-dangling")
		git(t, filepath.Join(dir, "all.git"), "fsck", "--strict", "--no-dangling")
	} else if os.Getenv("CI") != "" {
		t.Fatal("git not installed")
	}
}

// TestInstallSealedRefusesOtherHistory: a day pack whose commits the epoch
// lacks is refused and changes nothing.
func TestInstallSealedRefusesOtherHistory(t *testing.T) {
	a := openTest(t, t.TempDir(), nil)
	ea, err := a.Append(testCommits(0, 5))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := openTest(t, dir, nil)
	if _, err := b.Append(testCommits(100, 5)); err != nil {
		t.Fatal(err)
	}
	before := packNames(t, dir)
	path := writeDayPack(t, a, t.TempDir(), "x.pack", ZeroHash, ea[4].Commit)
	if _, err := b.InstallSealed(0, path); !errors.Is(err, ErrNotInEpoch) {
		t.Fatalf("InstallSealed(another history) = %v, want ErrNotInEpoch", err)
	}
	if after := packNames(t, dir); !slices.Equal(before, after) {
		t.Fatalf("packs changed: %v -> %v", before, after)
	}
}

// TestSealedMarker: Sealed tells an installed sealed pack from a batch pack.
func TestSealedMarker(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	es, err := s.Append(testCommits(0, 6))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	info, err := s.WriteCanonicalPack(&buf, 0, ZeroHash, es[5].Commit)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "d.pack")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if s.Sealed(0, info.Trailer) {
		t.Fatal("Sealed before InstallSealed")
	}
	if _, err := s.InstallSealed(0, path); err != nil {
		t.Fatal(err)
	}
	if !s.Sealed(0, info.Trailer) {
		t.Fatal("not Sealed after InstallSealed")
	}
	batch, _ := ParseHash(strings.TrimPrefix(es[0].BlobLoc.Pack, "pack-"))
	if s.Sealed(0, batch) {
		t.Fatal("a batch pack reported sealed")
	}
}
