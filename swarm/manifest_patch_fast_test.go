package swarm

import (
	"bytes"
	"crypto/ed25519"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// patchBoth takes patch q from base both ways: the long one (Apply, then
// ParseManifest of the whole file, then Follows) and applyParsed (then
// Follows, which it shortens). They must agree.
func patchBoth(t testing.TB, base *Manifest, q *ManifestPatch) (fast *Manifest, errFast, errSlow error) {
	t.Helper()
	var slow *Manifest
	file, errSlow := q.Apply(base)
	if errSlow == nil {
		slow, errSlow = ParseManifest(file, manTestPub())
	}
	if errSlow == nil {
		errSlow = slow.Follows(base)
	}
	fast, errFast = q.applyParsed(base, manTestPub())
	if errFast == nil {
		errFast = fast.Follows(base)
	}
	if (errFast == nil) != (errSlow == nil) {
		t.Fatalf("applyParsed: %v; Apply and ParseManifest: %v", errFast, errSlow)
	}
	if errFast != nil {
		return nil, errFast, errSlow
	}
	if !bytes.Equal(fast.Bytes(), slow.Bytes()) || fast.Hash() != slow.Hash() {
		t.Fatalf("applyParsed rebuilt other bytes than Apply")
	}
	if enc, idx := encodeBodyFrom(fast, nil); !bytes.Equal(enc, fileBody(fast.Bytes())) ||
		!slices.Equal(idx.packs, fast.idx.packs) || !slices.Equal(idx.bundles, fast.idx.bundles) {
		t.Fatalf("applyParsed's body index is not where its body holds its entries")
	}
	if err := fast.check(); err != nil {
		t.Fatalf("applyParsed accepted a manifest check refuses: %v", err)
	}
	if !slices.Equal(fast.Packs, slow.Packs) || !slices.EqualFunc(fast.Bundles, slow.Bundles, func(a, b BundleEntry) bool { return a.equal(&b) }) ||
		!slices.Equal(fast.Epochs, slow.Epochs) || fast.Seq != slow.Seq || fast.Prev != slow.Prev || fast.Time != slow.Time ||
		fast.List != slow.List || !bytes.Equal(fast.Key, slow.Key) {
		t.Fatalf("applyParsed's entries differ from ParseManifest's")
	}
	return fast, nil, nil
}

// resign signs the manifest q rebuilds from base with the test key: the
// rules, not the signature, are then what refuses it.
func resign(q *ManifestPatch, base *Manifest) {
	if mg, err := q.merge(base); err == nil {
		copy(q.Sig[:], ed25519.Sign(manTestKey, encodeBody(mg.m)))
	}
}

// patchFastBase is manTestManifest signed, and patches from it, each
// re-signed: what a key holder may sign, good and bad.
func patchFastCases(t testing.TB) (base *Manifest, cases []patchFastCase) {
	base = manTestManifest()
	manSign(t, base)
	d1, d2 := base.Packs[0], base.Packs[1]
	s1, s2 := base.Packs[2], base.Packs[3]
	sealed := manDayPack(0, "2026-02-01", 700)
	sealed.From, sealed.To = s1.From, s2.To
	slice := manSlicePack(0, "2026-02-01", 3)
	changed := d2
	changed.Size++
	dup := manSlicePack(0, "2026-02-02", 1)
	dup.File = d1.File
	moved := s1
	moved.Day = "2026-02-02"
	bad := manSlicePack(0, "2026-02-02", 1)
	bad.SHA256 = [32]byte{}
	late := manSlicePack(0, "2026-01-31", 9)
	bundle := manBundle(0, "2026-02", sealed)
	ofSlice := manBundle(0, "2026-02", s1)
	namedAsSlice := bundle
	namedAsSlice.Name = s1.File
	otherBundle := base.Bundles[0]
	otherBundle.InfoHash = manH20("other")
	mk := func(f func(q *ManifestPatch)) *ManifestPatch {
		q := &ManifestPatch{Base: base.Hash(), BaseSeq: base.Seq, Seq: base.Seq + 1, Prev: base.Hash(), Time: base.Time + 60,
			Epochs: slices.Clone(base.Epochs)}
		f(q)
		resign(q, base)
		return q
	}
	cases = []patchFastCase{
		{"a slice", true, mk(func(q *ManifestPatch) { q.Packs = []PackEntry{slice} })},
		{"a day sealed", true, mk(func(q *ManifestPatch) { q.Drop, q.Packs = []string{s1.File, s2.File}, []PackEntry{sealed} })},
		{"a day sealed and bundled", true, mk(func(q *ManifestPatch) {
			q.Drop, q.Packs, q.Bundles = []string{s1.File, s2.File}, []PackEntry{sealed}, []BundleEntry{bundle}
		})},
		{"a day sealed and a bundle named as a dropped slice", true, mk(func(q *ManifestPatch) {
			q.Drop, q.Packs, q.Bundles = []string{s1.File, s2.File}, []PackEntry{sealed}, []BundleEntry{namedAsSlice}
		})},
		{"a day pack dropped and a bundle of its name added", false, mk(func(q *ManifestPatch) {
			b := bundle
			b.Name = d1.File
			q.Drop, q.Bundles = []string{d1.File}, []BundleEntry{b}
		})},
		{"a day pack dropped and added again", true, mk(func(q *ManifestPatch) { q.Drop, q.Packs = []string{d1.File}, []PackEntry{d1} })},
		{"a bundle dropped and added again", true, mk(func(q *ManifestPatch) {
			q.Drop, q.Bundles = []string{base.Bundles[0].Name}, []BundleEntry{base.Bundles[0]}
		})},
		{"no change but the sequence", true, mk(func(q *ManifestPatch) {})},
		{"a day pack dropped", false, mk(func(q *ManifestPatch) { q.Drop = []string{d1.File} })},
		{"a day pack changed", false, mk(func(q *ManifestPatch) { q.Drop, q.Packs = []string{d2.File}, []PackEntry{changed} })},
		{"a slice dropped unsealed", false, mk(func(q *ManifestPatch) { q.Drop = []string{s2.File} })},
		{"a slice moved to another day of a sealed day", false, mk(func(q *ManifestPatch) {
			q.Drop, q.Packs = []string{s1.File, s2.File}, []PackEntry{sealed, moved}
		})},
		{"a slice of a sealed day", false, mk(func(q *ManifestPatch) { q.Packs = []PackEntry{late} })},
		{"an old name again", false, mk(func(q *ManifestPatch) { q.Packs = []PackEntry{dup} })},
		{"a bad new pack", false, mk(func(q *ManifestPatch) { q.Packs = []PackEntry{bad} })},
		{"a bundle of a slice", false, mk(func(q *ManifestPatch) { q.Bundles = []BundleEntry{ofSlice} })},
		{"a bundle dropped", false, mk(func(q *ManifestPatch) { q.Drop = []string{base.Bundles[0].Name} })},
		{"a bundle changed", false, mk(func(q *ManifestPatch) {
			q.Drop, q.Bundles = []string{base.Bundles[0].Name}, []BundleEntry{otherBundle}
		})},
		{"an epoch dropped", false, mk(func(q *ManifestPatch) { q.Epochs = q.Epochs[:1] })},
		{"epochs out of order", false, mk(func(q *ManifestPatch) { q.Epochs[0], q.Epochs[1] = q.Epochs[1], q.Epochs[0] })},
		{"no prev", false, mk(func(q *ManifestPatch) { q.Prev = [32]byte{} })},
		{"a name the base does not hold dropped", false, mk(func(q *ManifestPatch) { q.Drop = []string{"nope"} })},
	}
	unsigned := mk(func(q *ManifestPatch) { q.Packs = []PackEntry{slice} })
	unsigned.Time++
	cases = append(cases, patchFastCase{"signed for another time", false, unsigned})
	other := mk(func(q *ManifestPatch) {})
	other.Base[0] ^= 1
	cases = append(cases, patchFastCase{"another base", false, other})
	return base, cases
}

type patchFastCase struct {
	name string
	ok   bool
	q    *ManifestPatch
}

// TestApplyParsed: applying a patch to the parsed manifest held accepts
// and refuses exactly what applying it to the file and parsing the whole
// result does, and rebuilds the same manifest.
func TestApplyParsed(t *testing.T) {
	base, cases := patchFastCases(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, errFast, errSlow := patchBoth(t, base, c.q)
			if ok := errFast == nil; ok != c.ok {
				t.Fatalf("accepted %v, want %v (%v)", ok, c.ok, errFast)
			}
			if !c.ok {
				t.Logf("refused: %v (long way: %v)", errFast, errSlow)
				return
			}
			if m.follows != base.Hash() {
				t.Errorf("not marked as following its base")
			}
		})
	}
}

// FuzzApplyParsed holds applyParsed to the long way on patches the
// fuzzer makes and the test key signs (so the rules, not the signature,
// decide).
func FuzzApplyParsed(f *testing.F) {
	base, cases := patchFastCases(f)
	for _, c := range cases {
		f.Add(c.q.Encode())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		q, err := DecodePatch(b)
		if err != nil {
			return
		}
		patchBoth(t, base, q) // as sent
		resign(q, base)
		patchBoth(t, base, q)
	})
}

// TestRemoveStaleSince: after the day close, the sealed day's slice files
// go and nothing m names does; a file no manifest named (a failed
// publish's) is left to the listing of the first call (prev nil).
func TestRemoveStaleSince(t *testing.T) {
	dir := t.TempDir()
	prev := manTestManifest()
	manSign(t, prev)
	next := manClone(prev)
	s1, s2 := prev.Packs[2], prev.Packs[3]
	sealed := manDayPack(0, "2026-02-01", 700)
	sealed.From, sealed.To = s1.From, s2.To
	next.Packs = slices.Insert(slices.Delete(next.Packs, 2, 4), 2, sealed)
	next.Seq, next.Prev = 2, prev.Hash()
	manSign(t, next)
	var all []string
	for _, d := range []string{packsDir, torrentsDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(names ...string) {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range append(slices.Clone(prev.Packs), sealed) {
		all = append(all, filepath.Join(packsDir, p.File), filepath.Join(torrentsDir, p.File+".torrent"))
	}
	all = append(all, filepath.Join(torrentsDir, prev.Bundles[0].Name+".torrent"))
	write(all...)
	leftover := filepath.Join(packsDir, "e0-2026-02-02.1.pack")
	write(leftover)
	exists := func(n string) bool { _, err := os.Stat(filepath.Join(dir, n)); return err == nil }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	removeStaleSince(dir, prev, prev, log)
	if !exists(leftover) {
		t.Fatal("the same manifest again listed the directory")
	}
	removeStaleSince(dir, prev, next, log)
	for _, n := range all {
		retired := strings.Contains(n, s1.File) || strings.Contains(n, s2.File)
		if exists(n) == retired {
			t.Errorf("%s: exists %v, retired %v", n, exists(n), retired)
		}
	}
	if !exists(leftover) {
		t.Fatal("a file no manifest named went without a listing")
	}
	removeStaleSince(dir, nil, next, log)
	if exists(leftover) {
		t.Error("the listing left a file no manifest names")
	}
}

// TestApplyParsedChain: a manifest applyParsed made is itself the base
// of the next patch (its body copied from again), and of the one after.
func TestApplyParsedChain(t *testing.T) {
	base, cases := patchFastCases(t)
	m, err, _ := patchBoth(t, base, cases[0].q) // a slice
	if err != nil {
		t.Fatal(err)
	}
	for k := range 3 {
		next := manClone(m)
		next.Seq, next.Prev, next.Time = m.Seq+1, m.Hash(), m.Time+60
		s := manSlicePack(0, "2026-02-01", 10+k)
		s.From = next.Packs[len(next.Packs)-2].To // epoch 0's last pack (epoch 1's is last)
		s.To = manH20("to " + s.File)
		next.Packs = slices.Insert(next.Packs, len(next.Packs)-1, s)
		if k == 2 { // the day closes, with its bundle
			var from [20]byte
			var kept []PackEntry
			for _, p := range next.Packs {
				if p.Kind == KindSlice {
					if from == ([20]byte{}) {
						from = p.From
					}
					continue
				}
				kept = append(kept, p)
			}
			d := manDayPack(0, "2026-02-01", 900)
			d.From, d.To = from, s.To
			next.Packs = slices.Insert(kept, 2, d)
			next.Bundles = append(next.Bundles, manBundle(0, "2026-02", d))
		}
		sortPacks(next.Packs) // as the origin orders them
		manSign(t, next)
		q, err := DiffManifest(m, next)
		if err != nil {
			t.Fatal(err)
		}
		got, err, _ := patchBoth(t, m, q)
		if err != nil {
			t.Fatalf("patch %d: %v", k, err)
		}
		if !bytes.Equal(got.Bytes(), next.Bytes()) {
			t.Fatalf("patch %d rebuilt other bytes than signed", k)
		}
		m = got
	}
}

// TestSignAfter: signing the next manifest after the one before gives
// the bytes Sign gives, and refuses what Sign refuses.
func TestSignAfter(t *testing.T) {
	base, cases := patchFastCases(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mg, err := c.q.merge(base)
			if err != nil {
				return
			}
			whole := manClone(mg.m)
			after, errAfter := mg.m.signAfter(base, manTestKey)
			want, err := whole.Sign(manTestKey)
			if (errAfter == nil) != (err == nil) {
				t.Fatalf("signAfter: %v; Sign: %v", errAfter, err)
			}
			if !bytes.Equal(after, want) {
				t.Fatalf("signAfter signed other bytes than Sign")
			}
			if err == nil && !slices.Equal(mg.m.idx.packs, whole.idx.packs) {
				t.Fatalf("signAfter's body index differs from Sign's")
			}
		})
	}
}

// TestSignSeedOfAnotherKey: a private key whose public half is the list's
// key but whose seed is another key's signs nothing (Sign checks the key
// from its seed, not by verifying what it signed).
func TestSignSeedOfAnotherKey(t *testing.T) {
	m := manTestManifest()
	bad := ed25519.PrivateKey(append(slices.Clone(manOtherKey.Seed()), manTestPub()...))
	if _, err := m.Sign(bad); err == nil || !strings.Contains(err.Error(), "private key is not the key") {
		t.Fatalf("Sign with another key's seed: %v", err)
	}
	if _, err := m.Sign(manTestKey); err != nil {
		t.Fatal(err)
	}
}

// TestForgetDropped: a follower's records of what it found in place lose
// the names a day's seal dropped (its slices), once they hold more than
// the manifest, and keep the rest; under that count nothing is looked at.
func TestForgetDropped(t *testing.T) {
	m := manTestManifest()
	seen := map[string]int{}
	for i, p := range m.Packs {
		seen[p.File] = i
	}
	seen["e0-2026-01-01.7.pack"] = -1 // a slice of a sealed day
	if len(seen) <= len(m.Packs)+len(m.Bundles) {
		seen["e0-2026-01-01.8.pack"] = -1
		seen["e0-2026-01-01.9.pack"] = -1
	}
	forgetDropped(seen, m)
	if len(seen) != len(m.Packs) {
		t.Fatalf("%d names kept, want the manifest's %d packs", len(seen), len(m.Packs))
	}
	for i, p := range m.Packs {
		if v, ok := seen[p.File]; !ok || v != i {
			t.Errorf("%s: %d, %v: kept wrong", p.File, v, ok)
		}
	}
	few := map[string]int{"gone.pack": 1}
	forgetDropped(few, m)
	if len(few) != 1 {
		t.Errorf("a record under the manifest's count was swept")
	}
}
