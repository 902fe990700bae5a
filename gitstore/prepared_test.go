package gitstore

import (
	"bytes"
	"testing"
)

// TestPreparedBlobs checks that commits carrying PrepareBlob results write
// exactly what plain commits write: same commit ids, same blob bytes, same
// canonical pack, and duplicates still stored once.
func TestPreparedBlobs(t *testing.T) {
	plain, err := Open(t.TempDir(), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	prep, err := Open(t.TempDir(), &Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer prep.Close()
	cs := testCommits(0, 40)
	cs = append(cs, cs[3]) // a repeated blob
	want, err := plain.Append(cs)
	if err != nil {
		t.Fatal(err)
	}
	pcs := append([]Commit(nil), cs...)
	for i := range pcs {
		pcs[i].Prepared = PrepareBlob(pcs[i].Blob)
		if pcs[i].Prepared.Hash() != want[i].Blob {
			t.Fatalf("PrepareBlob(%d).Hash() = %s, want %s", i, pcs[i].Prepared.Hash(), want[i].Blob)
		}
	}
	// Two batches, so the second meets blobs already packed.
	got, err := prep.Append(pcs[:25])
	if err != nil {
		t.Fatal(err)
	}
	more, err := prep.Append(append(pcs[25:], pcs[3]))
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, more...)
	for i := range want {
		if got[i].Commit != want[i].Commit {
			t.Fatalf("commit %d: %s with a prepared blob, %s without", i, got[i].Commit, want[i].Commit)
		}
		b, err := prep.ReadBlob(got[i].BlobLoc)
		if err != nil || !bytes.Equal(b, cs[i].Blob) {
			t.Fatalf("blob %d reads back wrong: %v", i, err)
		}
	}
	if got[len(got)-1].BlobLoc != got[3].BlobLoc {
		t.Fatalf("repeated blob stored twice: %+v and %+v", got[len(got)-1].BlobLoc, got[3].BlobLoc)
	}
	var a, b bytes.Buffer
	if _, err := plain.WriteCanonicalPack(&a, 0, ZeroHash, want[len(want)-1].Commit); err != nil {
		t.Fatal(err)
	}
	if _, err := prep.WriteCanonicalPack(&b, 0, ZeroHash, want[len(want)-1].Commit); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("canonical packs differ")
	}
	if err := prep.Check(); err != nil {
		t.Fatal(err)
	}
}
