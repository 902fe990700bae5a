package gitstore

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func canonical(t *testing.T, s *Store, epoch int, from, to Hash) ([]byte, PackInfo) {
	t.Helper()
	var buf bytes.Buffer
	info, err := s.WriteCanonicalPack(&buf, epoch, from, to)
	if err != nil {
		t.Fatalf("WriteCanonicalPack(%s..%s): %v", from, to, err)
	}
	return buf.Bytes(), info
}

func TestCanonicalPackDeterminism(t *testing.T) {
	commits := testCommits(0, 30)
	commits = append(commits, commits[3]) // a repeated message: blob and tree dedup
	dirA, dirB := t.TempDir(), t.TempDir()
	a := openTest(t, dirA, nil)
	ea, err := a.Append(commits)
	if err != nil {
		t.Fatal(err)
	}
	b := openTest(t, dirB, nil)
	for _, r := range [][2]int{{0, 7}, {7, 20}, {20, 31}} {
		if _, err := b.Append(commits[r[0]:r[1]]); err != nil {
			t.Fatal(err)
		}
	}
	ranges := [][2]int{{-1, 30}, {-1, 0}, {6, 19}, {2, 10}, {19, 30}}
	want := map[[2]int]PackInfo{}
	for _, r := range ranges {
		from := ZeroHash
		if r[0] >= 0 {
			from = ea[r[0]].Commit
		}
		pa, ia := canonical(t, a, 0, from, ea[r[1]].Commit)
		pb, ib := canonical(t, b, 0, from, ea[r[1]].Commit)
		if ia != ib || !bytes.Equal(pa, pb) {
			t.Fatalf("range %v: packs differ: %+v vs %+v", r, ia, ib)
		}
		if ia.SHA256 != sha256.Sum256(pa) || ia.Size != int64(len(pa)) || Hash(pa[len(pa)-20:]) != ia.Trailer {
			t.Fatalf("range %v: PackInfo %+v does not describe the pack", r, ia)
		}
		n := r[1] - r[0]
		if ia.Commits != n {
			t.Errorf("range %v: %d commits, want %d", r, ia.Commits, n)
		}
		objs, err := VerifyPack(pa)
		if err != nil {
			t.Fatalf("range %v: VerifyPack: %v", r, err)
		}
		if len(objs) != ia.Objects {
			t.Errorf("range %v: VerifyPack found %d objects, PackInfo says %d", r, len(objs), ia.Objects)
		}
		// Order: commits, then trees, then blobs.
		for i, o := range objs {
			want := ObjCommit
			if i >= ia.Commits {
				want = ObjTree
			}
			if i >= ia.Objects-(ia.Objects-ia.Commits)/2 {
				want = ObjBlob
			}
			if o.Type != want {
				t.Errorf("range %v: object %d is type %d, want %d", r, i, o.Type, want)
				break
			}
		}
		want[r] = ia
		// git accepts it.
		f := filepath.Join(t.TempDir(), "c.pack")
		os.WriteFile(f, pa, 0o644)
		git(t, dirA, "--git-dir="+filepath.Join(dirA, "git/0.git"), "index-pack", "--strict", f)
	}
	if info := want[[2]int{-1, 30}]; info.Objects != 31*3-2 {
		t.Errorf("full range: %d objects, want %d (dedup)", info.Objects, 31*3-2)
	}

	// After a real repack (with deltas) of B, the same bytes.
	b.Close()
	gd := filepath.Join(dirB, "git/0.git")
	for _, k := range mustGlob(t, filepath.Join(gd, "objects/pack/*.keep")) {
		os.Remove(k)
	}
	git(t, dirB, "--git-dir="+gd, "repack", "-q", "-adf")
	b2 := openTest(t, dirB, nil)
	for _, r := range ranges {
		from := ZeroHash
		if r[0] >= 0 {
			from = ea[r[0]].Commit
		}
		_, ib := canonical(t, b2, 0, from, ea[r[1]].Commit)
		if ib != want[r] {
			t.Errorf("range %v after repack: %+v, want %+v", r, ib, want[r])
		}
	}
	// An end commit before the start is an error.
	var sink bytes.Buffer
	if _, err := a.WriteCanonicalPack(&sink, 0, ea[10].Commit, ea[5].Commit); err == nil {
		t.Error("WriteCanonicalPack with to before from succeeded")
	}
}

// The canonical bytes of a fixed history never change: not with a
// refactoring of the writer (it writes on every core now), not with a
// toolchain upgrade (Go's compress/zlib level 6 is stable). A mirror
// rebuilding a day pack years later must get the origin's sha256.
func TestCanonicalPackGolden(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	es, err := s.Append(testCommits(0, 200))
	if err != nil {
		t.Fatal(err)
	}
	_, info := canonical(t, s, 0, ZeroHash, es[199].Commit)
	const want = "020793323f62eee996d918d1a7efbeab12e90de48a126be075513c1d3814d79b"
	if got := fmt.Sprintf("%x", info.SHA256); got != want {
		t.Errorf("canonical pack of testCommits(0, 200): sha256 %s, want %s (%d bytes)", got, want, info.Size)
	}
}
