package gitstore

import (
	"errors"
	"testing"
)

// A canonical pack of a range of commits comes back as those commits, in
// order, continuing the commit before the range; another store adopts them
// and reaches the same tip.
func TestPackCommits(t *testing.T) {
	a := openTest(t, t.TempDir(), nil)
	ea, err := a.Append(testCommits(0, 10))
	if err != nil {
		t.Fatal(err)
	}
	b := openTest(t, t.TempDir(), nil)
	for _, r := range [][2]int{{-1, 2}, {2, 7}, {7, 9}} {
		from := ZeroHash
		if r[0] >= 0 {
			from = ea[r[0]].Commit
		}
		p, _ := canonical(t, a, 0, from, ea[r[1]].Commit)
		base, commits, err := PackCommits(p)
		if err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
		if base != from || len(commits) != r[1]-r[0] {
			t.Fatalf("range %v: base %s, %d commits", r, base, len(commits))
		}
		if _, err := b.AppendRaw(0, commits); err != nil {
			t.Fatal(err)
		}
	}
	if tip, _ := b.Tip(0); tip != ea[9].Commit {
		t.Fatalf("adopted tip %s, want %s", tip, ea[9].Commit)
	}
}

func TestPackCommitsRefuses(t *testing.T) {
	a := openTest(t, t.TempDir(), nil)
	ea, err := a.Append(testCommits(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	read := func(h Hash) []byte {
		db, err := a.impl.epoch(0)
		if err != nil {
			t.Fatal(err)
		}
		_, d, err := db.read(h)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	c0, c1, tr0, bl0 := read(ea[0].Commit), read(ea[1].Commit), read(ea[0].Tree), read(ea[0].Blob)
	rec := func(ty ObjectType, d []byte) []byte { return record(ty, int64(len(d)), d) }
	for _, tc := range []struct {
		what string
		pack []byte
	}{
		{"blobs only", validPack()},
		{"commit without its tree", rawPack(2, rec(ObjCommit, c0), rec(ObjBlob, bl0))},
		{"tree without its blob", rawPack(2, rec(ObjCommit, c0), rec(ObjTree, tr0))},
		{"an object no commit uses", rawPack(4, rec(ObjCommit, c0), rec(ObjTree, tr0), rec(ObjBlob, bl0), rec(ObjBlob, []byte("extra")))},
		{"a gap in the chain", rawPack(4, rec(ObjCommit, c0), rec(ObjTree, tr0), rec(ObjBlob, bl0), rec(ObjCommit, c1))},
		{"bad trailer", append(rawPack(3, rec(ObjCommit, c0), rec(ObjTree, tr0), rec(ObjBlob, bl0))[:40], make([]byte, 20)...)},
	} {
		_, _, err := PackCommits(tc.pack)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", tc.what, err)
		}
	}
	// The complete first commit is fine.
	if _, cs, err := PackCommits(rawPack(3, rec(ObjCommit, c0), rec(ObjTree, tr0), rec(ObjBlob, bl0))); err != nil || len(cs) != 1 {
		t.Errorf("one whole commit: %d commits, %v", len(cs), err)
	}
}

func FuzzPackCommits(f *testing.F) {
	s := openTest(f, f.TempDir(), nil)
	es, err := s.Append(testCommits(0, 3))
	if err != nil {
		f.Fatal(err)
	}
	var buf bytesBuffer
	if _, err := s.WriteCanonicalPack(&buf, 0, ZeroHash, es[2].Commit); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.b)
	f.Add(validPack())
	// Broken ones: truncated, a byte more, a flipped bit under a good
	// trailer, no trailer.
	f.Add(buf.b[:len(buf.b)-30])
	f.Add(append(append([]byte{}, buf.b...), 0))
	flip := append([]byte{}, buf.b...)
	flip[len(flip)/2] ^= 4
	f.Add(fixTrailer(flip))
	f.Add(buf.b[:len(buf.b)-20])
	f.Fuzz(func(t *testing.T, p []byte) {
		base, commits, err := PackCommits(p)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// What is accepted is a chain of whole commits starting at base.
		prev := base
		for _, c := range commits {
			ci, err := parseCommit(c.Commit)
			if err != nil || ci.Parent != prev {
				t.Fatalf("accepted commit does not continue the chain: %v", err)
			}
			prev = hashObject(ObjCommit, c.Commit)
		}
	})
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
