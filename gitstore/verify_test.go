package gitstore

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// record returns a pack object: header with the declared type and size,
// then the zlib stream of data.
func record(t ObjectType, declared int64, data []byte) []byte {
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, 6)
	zw.Write(data)
	zw.Close()
	return append(appendObjHeader(nil, t, declared), z.Bytes()...)
}

// rawPack assembles a pack of the given records with count in the header
// and a correct trailer.
func rawPack(count uint32, recs ...[]byte) []byte {
	p := []byte("PACK\x00\x00\x00\x02\x00\x00\x00\x00")
	binary.BigEndian.PutUint32(p[8:], count)
	for _, r := range recs {
		p = append(p, r...)
	}
	sum := sha1.Sum(p)
	return append(p, sum[:]...)
}

// fixTrailer recomputes the trailer of p (which must end in one).
func fixTrailer(p []byte) []byte {
	q := append([]byte{}, p[:len(p)-20]...)
	sum := sha1.Sum(q)
	return append(q, sum[:]...)
}

var (
	blobA = []byte("hello, world\n")
	blobB = bytes.Repeat([]byte("mail body line\n"), 50)
)

func validPack() []byte {
	return rawPack(2, record(ObjBlob, int64(len(blobA)), blobA), record(ObjBlob, int64(len(blobB)), blobB))
}

func wantCorrupt(t *testing.T, what string, p []byte) {
	t.Helper()
	_, err := VerifyPack(p)
	if err == nil {
		t.Fatalf("%s: VerifyPack accepted it", what)
	}
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("%s: error %v does not wrap ErrCorrupt", what, err)
	}
}

func TestVerifyPackValid(t *testing.T) {
	objs, err := VerifyPack(validPack())
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].Hash != hashObject(ObjBlob, blobA) || objs[1].Hash != hashObject(ObjBlob, blobB) ||
		objs[0].Offset != 12 || objs[1].Size != int64(len(blobB)) || objs[1].Type != ObjBlob {
		t.Fatalf("VerifyPack = %+v", objs)
	}
	// An empty pack is valid too.
	if objs, err := VerifyPack(rawPack(0)); err != nil || len(objs) != 0 {
		t.Fatalf("empty pack: %v, %v", objs, err)
	}
	// Our own batch packs verify, and git agrees on them.
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	if _, err := s.Append(testCommits(0, 5)); err != nil {
		t.Fatal(err)
	}
	for _, f := range mustGlob(t, filepath.Join(dir, "git/0.git/objects/pack/*.pack")) {
		data, _ := os.ReadFile(f)
		if objs, err := VerifyPack(data); err != nil || len(objs) != 15 {
			t.Fatalf("batch pack: %d objects, %v", len(objs), err)
		}
	}
}

func TestVerifyPackFlippedBodyByte(t *testing.T) {
	p := validPack()
	body := 12 + len(record(ObjBlob, int64(len(blobA)), blobA)) + 10 // inside blobB's stream
	for _, fix := range []bool{false, true} {
		q := append([]byte{}, p...)
		q[body] ^= 0x40
		if fix {
			q = fixTrailer(q) // the objects themselves must be caught
		}
		wantCorrupt(t, "flipped body byte", q)
	}
}

func TestVerifyPackFlippedHeaderByte(t *testing.T) {
	for _, i := range []int{0, 3, 7, 11, 12} {
		q := append([]byte{}, validPack()...)
		q[i] ^= 0x01
		wantCorrupt(t, "flipped header byte", fixTrailer(q))
	}
}

func TestVerifyPackTruncated(t *testing.T) {
	p := validPack()
	for _, n := range []int{0, 5, 12, 20, 30, len(p) / 2, len(p) - 21, len(p) - 1} {
		wantCorrupt(t, "truncated", p[:n])
	}
}

func TestVerifyPackTrailingGarbage(t *testing.T) {
	wantCorrupt(t, "trailing garbage", append(validPack(), 0))
	wantCorrupt(t, "trailing garbage", append(validPack(), validPack()...))
}

func TestVerifyPackMissingTrailer(t *testing.T) {
	p := validPack()
	wantCorrupt(t, "missing trailer", p[:len(p)-20])
}

func TestVerifyPackWrongTrailer(t *testing.T) {
	p := validPack()
	p[len(p)-1] ^= 1
	wantCorrupt(t, "wrong trailer", p)
}

func TestVerifyPackCountTooHigh(t *testing.T) {
	r1, r2 := record(ObjBlob, int64(len(blobA)), blobA), record(ObjBlob, int64(len(blobB)), blobB)
	wantCorrupt(t, "count too high", rawPack(3, r1, r2))
}

func TestVerifyPackCountTooLow(t *testing.T) {
	r1, r2 := record(ObjBlob, int64(len(blobA)), blobA), record(ObjBlob, int64(len(blobB)), blobB)
	wantCorrupt(t, "count too low", rawPack(1, r1, r2))
}

func TestVerifyPackShortObject(t *testing.T) {
	wantCorrupt(t, "short object", rawPack(1, record(ObjBlob, int64(len(blobB))+5, blobB)))
}

func TestVerifyPackLongObject(t *testing.T) {
	wantCorrupt(t, "long object", rawPack(1, record(ObjBlob, int64(len(blobB))-1, blobB)))
}

func TestVerifyPackBadType(t *testing.T) {
	wantCorrupt(t, "type 5", rawPack(1, record(5, int64(len(blobA)), blobA)))
	wantCorrupt(t, "type 0", rawPack(1, record(0, int64(len(blobA)), blobA)))
}

func TestVerifyPackDelta(t *testing.T) {
	base := record(ObjBlob, int64(len(blobB)), blobB)
	// delta: base size, result size, copy all of the base.
	delta := append(append(deltaVarintBytes(int64(len(blobB))), deltaVarintBytes(int64(len(blobB)))...), 0xb0, byte(len(blobB)), byte(len(blobB)>>8))
	if got, err := applyDelta(blobB, delta); err != nil || !bytes.Equal(got, blobB) {
		t.Fatalf("test delta does not apply: %v", err)
	}
	ofs := record(objOfsDelta, int64(len(delta)), delta)
	// OFS_DELTA header: type/size, then the backwards offset, then zlib.
	hdr := appendObjHeader(nil, objOfsDelta, int64(len(delta)))
	rec := append(append(hdr, byte(len(base))), ofs[len(hdr):]...)
	if len(base) > 127 {
		t.Fatal("test setup: base too large for a one-byte offset")
	}
	wantCorrupt(t, "ofs delta", rawPack(2, base, rec))
	h := hashObject(ObjBlob, blobB)
	ref := append(append(appendObjHeader(nil, objRefDelta, int64(len(delta))), h[:]...), ofs[len(hdr):]...)
	wantCorrupt(t, "ref delta", rawPack(2, base, ref))
	// The delta-tolerant scanner used by Check accepts both.
	for _, p := range [][]byte{rawPack(2, base, rec), rawPack(2, base, ref)} {
		if _, err := scanPack(bytes.NewReader(p), int64(len(p)), true); err != nil {
			t.Fatalf("scanPack with deltas: %v", err)
		}
	}
}

func deltaVarintBytes(n int64) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func TestCheckFindsCorruption(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	if _, err := s.Append(testCommits(0, 5)); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	f := mustGlob(t, filepath.Join(dir, "git/0.git/objects/pack/*.pack"))[0]
	data, _ := os.ReadFile(f)
	os.Chmod(f, 0o644)
	data[len(data)/2] ^= 0x10
	if err := os.WriteFile(f, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir, nil)
	if err := s2.Check(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check on a damaged pack = %v, want ErrCorrupt", err)
	}
}

func TestCheckFindsBadIdx(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	if _, err := s.Append(testCommits(0, 5)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	f := mustGlob(t, filepath.Join(dir, "git/0.git/objects/pack/*.idx"))[0]
	data, _ := os.ReadFile(f)
	os.Chmod(f, 0o644)
	n := (len(data) - 1032 - 40) / 28 // objects
	// Damage one CRC and fix the idx checksum: only the cross-check sees it.
	data[1032+20*n] ^= 1
	sum := sha1.Sum(data[:len(data)-20])
	copy(data[len(data)-20:], sum[:])
	os.WriteFile(f, data, 0o644)
	s2 := openTest(t, dir, nil)
	if err := s2.Check(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check with a bad idx CRC = %v, want ErrCorrupt", err)
	}
}

func FuzzVerifyPack(f *testing.F) {
	f.Add(validPack())
	f.Add(rawPack(0))
	f.Add(rawPack(1, record(ObjCommit, 3, []byte("abc"))))
	f.Add(rawPack(1, record(ObjBlob, 5, []byte("abc"))))
	f.Fuzz(func(t *testing.T, p []byte) {
		objs, err := VerifyPack(p)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// Whatever is accepted has a correct trailer and objects in order.
		if sha1.Sum(p[:len(p)-20]) != Hash(p[len(p)-20:]) {
			t.Fatal("accepted a pack with a wrong trailer")
		}
		last := int64(0)
		for _, o := range objs {
			if o.Offset <= last || o.Type < 1 || o.Type > 4 {
				t.Fatalf("bad object %+v", o)
			}
			last = o.Offset
		}
		// The scanner with deltas allowed must not panic either.
		scanPack(bytes.NewReader(p), int64(len(p)), true)
	})
}
