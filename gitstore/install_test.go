package gitstore

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

// writePack writes p to a file in dir and returns its path.
func writePack(t *testing.T, dir, name string, p []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, p, 0o444); err != nil {
		t.Fatal(err)
	}
	return path
}

// packDirState lists an epoch's pack directory (missing: nil) and the
// store's epochs and tips: what a refused install must leave alone.
func packDirState(t *testing.T, s *Store) []string {
	t.Helper()
	var out []string
	for _, n := range s.Epochs() {
		tip, err := s.Tip(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, itoa(int64(n))+" "+tip.String())
		ents, _ := os.ReadDir(filepath.Join(s.Dir(), "git", itoa(int64(n))+".git", "objects", "pack"))
		for _, e := range ents {
			out = append(out, e.Name())
		}
	}
	return out
}

// Canonical packs of an origin's epoch, installed into another store, give
// the same history: the same commit ids and entries, blobs readable at the
// returned locations, git fsck clean, and each pack is the very file
// installed (one copy: a hard link).
func TestInstallPack(t *testing.T) {
	a := openTest(t, t.TempDir(), nil)
	ea, err := a.Append(testCommits(0, 40))
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	dir := t.TempDir()
	b := openTest(t, dir, nil)
	var got []Entry
	for k, r := range [][2]int{{-1, 9}, {9, 25}, {25, 39}} {
		from := ZeroHash
		if r[0] >= 0 {
			from = ea[r[0]].Commit
		}
		p, info := canonical(t, a, 0, from, ea[r[1]].Commit)
		path := writePack(t, src, itoa(int64(k))+".pack", p)
		es, err := b.InstallPack(0, path)
		if err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
		if len(es) != r[1]-r[0] {
			t.Fatalf("range %v: %d entries", r, len(es))
		}
		fi1, _ := os.Stat(path)
		fi2, err := os.Stat(filepath.Join(dir, "git", "0.git", "objects", "pack", "pack-"+info.Trailer.String()+".pack"))
		if err != nil || !os.SameFile(fi1, fi2) {
			t.Fatalf("range %v: the installed pack is not the file given (%v)", r, err)
		}
		for _, e := range es {
			blob, err := b.ReadBlob(e.BlobLoc)
			if err != nil || hashObject(ObjBlob, blob) != e.Blob || int64(len(blob)) != e.BlobSize {
				t.Fatalf("blob of %s at %+v: %v", e.Commit, e.BlobLoc, err)
			}
		}
		got = append(got, es...)
	}
	if tip, _ := b.Tip(0); tip != ea[39].Commit {
		t.Fatalf("tip %s, want %s", tip, ea[39].Commit)
	}
	walked := walkAll(t, b, 0, ZeroHash)
	for i := range walked {
		w, g, o := walked[i], got[i], ea[i]
		w.BlobLoc, g.BlobLoc, o.BlobLoc = Loc{}, Loc{}, Loc{}
		if w != g || w != o {
			t.Fatalf("entry %d: walked %+v, installed %+v, origin %+v", i, w, g, o)
		}
	}
	git(t, dir, "--git-dir="+filepath.Join(dir, "git", "0.git"), "fsck", "--strict", "--no-dangling")
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	// A new epoch: the next one only, from its root.
	a2 := openTest(t, t.TempDir(), nil)
	e2, err := a2.Append(testCommits(100, 3))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := canonical(t, a2, 0, ZeroHash, e2[2].Commit)
	path := writePack(t, src, "e.pack", p)
	if _, err := b.InstallPack(2, path); err == nil {
		t.Fatal("epoch 2 after 0 installed")
	}
	if _, err := b.InstallPack(1, path); err != nil {
		t.Fatal(err)
	}
	if tip, _ := b.Tip(1); tip != e2[2].Commit || !slices.Equal(b.Epochs(), []int{0, 1}) {
		t.Fatalf("epoch 1 tip %s, epochs %v", tip, b.Epochs())
	}
	git(t, dir, "--git-dir="+filepath.Join(dir, "git", "1.git"), "fsck", "--strict", "--no-dangling")
	git(t, dir, "--git-dir="+filepath.Join(dir, "all.git"), "cat-file", "-e", e2[2].Blob.String())
}

// Bad packs are refused, wrapping ErrCorrupt where the bytes are bad, and
// leave the store as it was: tips, epochs and pack files.
func TestInstallPackRefuses(t *testing.T) {
	a := openTest(t, t.TempDir(), nil)
	ea, err := a.Append(testCommits(0, 6))
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	b := openTest(t, t.TempDir(), nil)
	first, _ := canonical(t, a, 0, ZeroHash, ea[2].Commit)
	if _, err := b.InstallPack(0, writePack(t, src, "first.pack", first)); err != nil {
		t.Fatal(err)
	}
	good, _ := canonical(t, a, 0, ea[2].Commit, ea[5].Commit)
	read := func(h Hash) []byte {
		db, _ := a.impl.epoch(0)
		_, d, err := db.read(h)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	rec := func(ty ObjectType, h Hash) []byte { d := read(h); return record(ty, int64(len(d)), d) }
	c3 := rawPack(3, rec(ObjCommit, ea[3].Commit), rec(ObjTree, ea[3].Tree), rec(ObjBlob, ea[3].Blob))
	if _, _, err := PackCommits(c3); err != nil {
		t.Fatalf("the hand-made pack of commit 3 is bad: %v", err)
	}
	flip := append([]byte{}, good...)
	flip[len(flip)/2] ^= 0x10
	garbage := append(append([]byte{}, good...), "trailing"...)
	// A merge: commit 3 with a second parent.
	merge := append([]byte{}, read(ea[3].Commit)...)
	merge = slices.Insert(merge, 46+41+7, []byte("parent "+ea[0].Commit.String()+"\n")...)
	if ci, err := parseCommit(merge); err != nil || ci.Parents != 2 {
		t.Fatalf("merge commit: %+v %v", ci, err)
	}
	for _, tc := range []struct {
		what    string
		pack    []byte
		corrupt bool
	}{
		{"a flipped bit", flip, true},
		{"truncated", good[:len(good)-100], true},
		{"trailing garbage", garbage, true},
		{"no trailer", good[:len(good)-20], true},
		{"a short object", rawPack(3, record(ObjCommit, int64(len(read(ea[3].Commit)))+5, read(ea[3].Commit)), rec(ObjTree, ea[3].Tree), rec(ObjBlob, ea[3].Blob)), true},
		{"the wrong range (the first again)", first, false},
		{"not continuing the tip (commits 4..5)", mustCanonical(t, a, ea[3].Commit, ea[5].Commit), false},
		{"an extra unused object", rawPack(4, rec(ObjCommit, ea[3].Commit), rec(ObjTree, ea[3].Tree), rec(ObjBlob, ea[3].Blob), record(ObjBlob, 5, []byte("extra"))), true},
		{"a merge commit", rawPack(3, record(ObjCommit, int64(len(merge)), merge), rec(ObjTree, ea[3].Tree), rec(ObjBlob, ea[3].Blob)), true},
		{"empty", nil, true},
	} {
		before := packDirState(t, b)
		_, err := b.InstallPack(0, writePack(t, src, "bad.pack", tc.pack))
		os.Remove(filepath.Join(src, "bad.pack"))
		if err == nil {
			t.Fatalf("%s: installed", tc.what)
		}
		if tc.corrupt && !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v does not wrap ErrCorrupt", tc.what, err)
		}
		if !tc.corrupt && (!errors.Is(err, ErrNotTip) || errors.Is(err, ErrCorrupt)) {
			t.Errorf("%s: error %v should wrap ErrNotTip only", tc.what, err)
		}
		if after := packDirState(t, b); !slices.Equal(before, after) {
			t.Fatalf("%s: store changed:\n%v\n%v", tc.what, before, after)
		}
	}
	if _, err := b.InstallPack(0, filepath.Join(src, "missing.pack")); err == nil {
		t.Fatal("a missing file installed")
	}
	if _, err := b.InstallPack(0, writePack(t, src, "good.pack", good)); err != nil {
		t.Fatalf("the good pack after the bad ones: %v", err)
	}
}

func mustCanonical(t *testing.T, s *Store, from, to Hash) []byte {
	p, _ := canonical(t, s, 0, from, to)
	return p
}

// A crash after the pack's files are in place but before the ref moved
// leaves a store that opens and checks clean, and installing the same pack
// again completes the install.
func TestInstallPackCrashBeforeRef(t *testing.T) {
	a := openTest(t, t.TempDir(), nil)
	ea, err := a.Append(testCommits(0, 5))
	if err != nil {
		t.Fatal(err)
	}
	p, info := canonical(t, a, 0, ZeroHash, ea[4].Commit)
	src, dir := t.TempDir(), t.TempDir()
	path := writePack(t, src, "day.pack", p)
	b := openTest(t, dir, nil)
	// What InstallPack writes before the ref, by hand.
	objs, err := verifyPackObjs(p)
	if err != nil {
		t.Fatal(err)
	}
	ents := make([]idxEntry, len(objs))
	for i, o := range objs {
		ents[i] = idxEntry{o.Hash, o.Offset, o.crc}
	}
	base := filepath.Join(dir, "git", "0.git", "objects", "pack", "pack-"+info.Trailer.String())
	if err := os.WriteFile(base+".keep", []byte("mailswarm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(base+".idx", encodeIdx(ents, info.Trailer), 0o444); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, base+".pack"); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = openTest(t, dir, nil)
	if err := b.Check(); err != nil {
		t.Fatalf("Check after the crash: %v", err)
	}
	if tip, _ := b.Tip(0); !tip.IsZero() {
		t.Fatalf("tip %s after the crash", tip)
	}
	es, err := b.InstallPack(0, path)
	if err != nil {
		t.Fatalf("install after the crash: %v", err)
	}
	if tip, _ := b.Tip(0); tip != ea[4].Commit || len(es) != 5 {
		t.Fatalf("tip %s, %d entries", tip, len(es))
	}
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "--git-dir="+filepath.Join(dir, "git", "0.git"), "fsck", "--strict", "--no-dangling")
}

// A pack file on another file system (here /dev/shm, when it is one) is
// copied in, not linked, and installs the same.
func TestInstallPackOtherFileSystem(t *testing.T) {
	src, err := os.MkdirTemp("/dev/shm", "mailswarm-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	defer os.RemoveAll(src)
	dir := t.TempDir()
	if s1, s2 := fsID(t, src), fsID(t, dir); s1 == s2 {
		t.Skip("/dev/shm is on the same file system as the test's directory")
	}
	a := openTest(t, t.TempDir(), nil)
	ea, err := a.Append(testCommits(0, 4))
	if err != nil {
		t.Fatal(err)
	}
	p, info := canonical(t, a, 0, ZeroHash, ea[3].Commit)
	path := writePack(t, src, "day.pack", p)
	b := openTest(t, dir, &Options{}) // fsync on: the copy is synced
	if _, err := b.InstallPack(0, path); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "git", "0.git", "objects", "pack", "pack-"+info.Trailer.String()+".pack")
	got, err := os.ReadFile(in)
	if err != nil || string(got) != string(p) {
		t.Fatalf("copied pack differs (%v)", err)
	}
	if tip, _ := b.Tip(0); tip != ea[3].Commit {
		t.Fatalf("tip %s", tip)
	}
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
}

func fsID(t *testing.T, path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return uint64(st.Dev)
}

// InstallPacks installs consecutive packs with one ref move: the same
// history as one by one; packs that do not chain (a gap, the wrong
// order) are refused before anything changes.
func TestInstallPacks(t *testing.T) {
	a := openTest(t, t.TempDir(), nil)
	ea, err := a.Append(testCommits(0, 30))
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	var paths []string
	for k, r := range [][2]int{{-1, 9}, {9, 19}, {19, 29}} {
		from := ZeroHash
		if r[0] >= 0 {
			from = ea[r[0]].Commit
		}
		p, _ := canonical(t, a, 0, from, ea[r[1]].Commit)
		paths = append(paths, writePack(t, src, itoa(int64(k))+".pack", p))
	}
	b := openTest(t, t.TempDir(), nil)
	before := packDirState(t, b)
	for _, bad := range [][]string{{paths[0], paths[2]}, {paths[1], paths[0]}, {paths[1], paths[2]}} {
		if _, err := b.InstallPacks(0, bad, nil); !errors.Is(err, ErrNotTip) {
			t.Errorf("packs that do not chain from the tip: %v, want ErrNotTip", err)
		}
		if after := packDirState(t, b); !slices.Equal(before, after) {
			t.Fatalf("a refused install changed the store: %v -> %v", before, after)
		}
	}
	// The range each pack must hold is checked before anything changes.
	wrong := []PackRange{{ZeroHash, ea[9].Commit, 10}, {ea[9].Commit, ea[19].Commit, 10}, {ea[19].Commit, ea[28].Commit, 10}}
	if _, err := b.InstallPacks(0, paths, wrong); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a pack holding another range than wanted: %v, want ErrCorrupt", err)
	}
	if after := packDirState(t, b); !slices.Equal(before, after) {
		t.Fatalf("a refused install changed the store: %v -> %v", before, after)
	}
	right := []PackRange{{ZeroHash, ea[9].Commit, 10}, {ea[9].Commit, ea[19].Commit, 10}, {ea[19].Commit, ea[29].Commit, 10}}
	es, err := b.InstallPacks(0, paths, right)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 30 || es[29].Commit != ea[29].Commit {
		t.Fatalf("%d entries", len(es))
	}
	for i, e := range es {
		if e.Commit != ea[i].Commit {
			t.Fatalf("entry %d: %s, want %s", i, e.Commit, ea[i].Commit)
		}
		if blob, err := b.ReadBlob(e.BlobLoc); err != nil || hashObject(ObjBlob, blob) != e.Blob {
			t.Fatalf("blob of %s: %v", e.Commit, err)
		}
	}
	if tip, _ := b.Tip(0); tip != ea[29].Commit {
		t.Fatalf("tip %s", tip)
	}
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
}
