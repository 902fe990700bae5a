package swarm

import (
	"bytes"
	"testing"
)

// FuzzManifestPatch feeds a follower's patch path arbitrary bytes:
// DecodePatch, Apply to a held manifest, ParseManifest, Follows. It must
// not panic; what DecodePatch accepts must be the canonical encoding of
// what it returns; and a manifest that comes out verified is the signed
// next manifest itself (nothing else carries its signature).
func FuzzManifestPatch(f *testing.F) {
	// Small seeds keep the fuzzer's minimizing of new inputs (quadratic
	// in their length) short: one day pack, then a slice.
	d := manDayPack(0, "2026-01-31", 1000)
	d.File = "d"
	base := &Manifest{List: "l", Key: manTestPub(), Seq: 1, Packs: []PackEntry{d}}
	manSign(f, base)
	next := manClone(base)
	s := manSlicePack(0, "2026-02-01", 1)
	s.File = "s"
	next.Seq, next.Prev, next.Packs = 2, base.Hash(), append(next.Packs, s)
	manSign(f, next)
	p, err := DiffManifest(base, next)
	if err != nil {
		f.Fatal(err)
	}
	good := p.Encode()
	f.Add(good)
	f.Add(bytes.Replace(good, []byte("3:seqi2e"), []byte("3:seqi3e"), 1))
	f.Add(append(bytes.Clone(good), 'e'))
	f.Add(good[:len(good)/2])
	empty := &ManifestPatch{Base: base.Hash(), BaseSeq: 1, Seq: 2}
	f.Add(empty.Encode())
	f.Add([]byte("de"))
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodePatch(b)
		if err != nil {
			return
		}
		if !bytes.Equal(q.Encode(), b) {
			t.Fatalf("accepted %q but it encodes as %q", b, q.Encode())
		}
		file, err := q.Apply(base)
		if err != nil {
			return
		}
		m, err := ParseManifest(file, manTestPub())
		if err != nil {
			return
		}
		if err := m.Follows(base); err != nil {
			return
		}
		if !bytes.Equal(m.Bytes(), next.Bytes()) {
			t.Fatalf("a patch rebuilt a verified manifest other than the signed one")
		}
	})
}
