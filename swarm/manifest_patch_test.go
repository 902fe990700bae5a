package swarm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// patchRoundTrip checks that the patch from base to next encodes, decodes
// to the same patch, and rebuilds next's file byte for byte, which then
// parses and follows base. It returns the encoded patch.
func patchRoundTrip(t *testing.T, base, next *Manifest) []byte {
	t.Helper()
	p, err := DiffManifest(base, next)
	if err != nil {
		t.Fatal(err)
	}
	b := p.Encode()
	q, err := DecodePatch(b)
	if err != nil {
		t.Fatalf("seq %d -> %d: DecodePatch: %v", base.Seq, next.Seq, err)
	}
	file, err := q.Apply(base)
	if err != nil {
		t.Fatalf("seq %d -> %d: Apply: %v", base.Seq, next.Seq, err)
	}
	if !bytes.Equal(file, next.Bytes()) {
		t.Fatalf("seq %d -> %d: the patch rebuilds another file (%d bytes, want %d)", base.Seq, next.Seq, len(file), len(next.Bytes()))
	}
	m, err := ParseManifest(file, base.Key)
	if err != nil {
		t.Fatalf("seq %d -> %d: %v", base.Seq, next.Seq, err)
	}
	if err := m.Follows(base); err != nil {
		t.Fatalf("seq %d -> %d: %v", base.Seq, next.Seq, err)
	}
	return b
}

// TestPatchPublished: patches between the manifests an origin publishes
// (history, slices, a day sealed, a month bundled) rebuild each manifest
// exactly, from the one before and from the first.
func TestPatchPublished(t *testing.T) {
	_, l := testList(t)
	o, err := NewOrigin(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	var chain []*Manifest
	publish := func(now time.Time) {
		t.Helper()
		res, err := o.Publish(now)
		if err != nil {
			t.Fatal(err)
		}
		if len(chain) == 0 || res.Manifest != chain[len(chain)-1] {
			chain = append(chain, res.Manifest)
		}
	}
	n := 1
	for _, d := range []string{"2026-10-30", "2026-10-31", "2026-11-02"} {
		addAt(t, l, n, day(d, 1), day(d, 2))
		n += 2
	}
	publish(day("2026-11-23", 0))
	for hour := range 3 {
		addAt(t, l, n, day("2026-11-23", hour+1))
		n++
		publish(day("2026-11-23", hour+1).Add(time.Minute))
	}
	publish(day("2026-11-24", 0).Add(time.Second)) // seals the 23rd
	addAt(t, l, n, day("2026-11-30", 5))
	n++
	publish(day("2026-11-30", 6))
	publish(day("2026-12-01", 1)) // seals the 30th, bundles November
	if len(chain) < 6 || len(chain[len(chain)-1].Bundles) != 2 {
		t.Fatalf("%d manifests, the last with %d bundles; want 6+ and 2", len(chain), len(chain[len(chain)-1].Bundles))
	}
	for i := 1; i < len(chain); i++ {
		b := patchRoundTrip(t, chain[i-1], chain[i])
		t.Logf("seq %d -> %d: patch %d bytes, manifest %d", chain[i-1].Seq, chain[i].Seq, len(b), len(chain[i].Bytes()))
		patchRoundTrip(t, chain[0], chain[i])
	}
}

// patchPair is a base manifest and the next one: a slice added, a sealed
// day's slices replaced by its day pack, a bundle added.
func patchPair(t testing.TB) (base, next *Manifest) {
	base = manTestManifest()
	manSign(t, base)
	next = manClone(base)
	next.Seq, next.Prev, next.Time = 2, base.Hash(), base.Time+60
	d := manDayPack(0, "2026-02-01", 3000)
	next.Packs = slices.DeleteFunc(next.Packs, func(p PackEntry) bool { return p.Day == "2026-02-01" })
	next.Packs = append(next.Packs, d, manSlicePack(0, "2026-02-02", 1))
	sortPacks(next.Packs)
	next.Bundles = append(next.Bundles, manBundle(0, "2026-02", d))
	next.Epochs[0].Tip = manH20("tip 0 next")
	manSign(t, next)
	return base, next
}

// TestPatchRefused: a patch of another base, dropping what the base does
// not hold, with a wrong signature, dropping a sealed day, oversized or
// not canonical is refused, by DecodePatch, Apply, ParseManifest or
// Follows; none rebuilds a manifest the follower takes.
func TestPatchRefused(t *testing.T) {
	base, next := patchPair(t)
	good := patchRoundTrip(t, base, next)
	edit := func(f func(p *ManifestPatch)) *ManifestPatch {
		q, err := DecodePatch(good)
		if err != nil {
			t.Fatal(err)
		}
		f(q)
		return q
	}
	// take is what a follower does with a patch: decode, apply, parse,
	// follow.
	take := func(b []byte, base *Manifest) error {
		q, err := DecodePatch(b)
		if err != nil {
			return err
		}
		file, err := q.Apply(base)
		if err != nil {
			return err
		}
		m, err := ParseManifest(file, manTestPub())
		if err != nil {
			return err
		}
		return m.Follows(base)
	}
	other := manClone(base)
	other.Time++
	manSign(t, other)
	dayFile := base.Packs[0].File
	for _, tc := range []struct {
		name  string
		patch []byte
		base  *Manifest
		want  string
	}{
		{"another base", good, other, "the manifest held is seq 1"},
		{"base seq", edit(func(p *ManifestPatch) { p.BaseSeq = 0 }).Encode(), base, "but the manifest held is seq 1"},
		{"drop unknown", edit(func(p *ManifestPatch) { p.Drop = append(p.Drop, "zz.pack") }).Encode(), base, "does not hold"},
		{"wrong sig", edit(func(p *ManifestPatch) { p.Sig[5] ^= 1 }).Encode(), base, "bad signature"},
		{"time", edit(func(p *ManifestPatch) { p.Time++ }).Encode(), base, "bad signature"},
		{"drop a sealed day", edit(func(p *ManifestPatch) {
			p.Drop = append(p.Drop, dayFile)
			slices.Sort(p.Drop)
			p.Bundles = nil // the bundle over it would be refused first
		}).Encode(), base, "bad signature"},
		{"add a pack", edit(func(p *ManifestPatch) {
			p.Packs = append(p.Packs, manSlicePack(0, "2026-02-03", 1))
		}).Encode(), base, "bad signature"},
		{"unsorted drop", edit(func(p *ManifestPatch) { p.Drop = []string{"b", "a"} }).Encode(), base, "drop not sorted"},
		{"duplicate drop", edit(func(p *ManifestPatch) { p.Drop = []string{"a", "a"} }).Encode(), base, "drop not sorted"},
		{"packs out of order", edit(func(p *ManifestPatch) { slices.Reverse(p.Packs) }).Encode(), base, "packs not in manifest order"},
		{"not newer", edit(func(p *ManifestPatch) { p.Seq = 1 }).Encode(), base, "does not follow base seq"},
		{"trailing", append(bytes.Clone(good), 'e'), base, "trailing bytes"},
		{"unknown key", bytes.Replace(good, []byte("1:vi1e"), []byte("1:vi1e1:wi0e"), 1), base, "unknown key"},
		{"version", bytes.Replace(good, []byte("1:vi1e"), []byte("1:vi2e"), 1), base, "patch version 2"},
		{"leading zero", bytes.Replace(good, []byte("3:seqi2e"), []byte("3:seqi02e"), 1), base, "leading zero"},
		{"oversized", append(bytes.Clone(good), make([]byte, maxPatchSize)...), base, "more than the"},
		{"truncated", good[:len(good)-10], base, "unexpected end"},
	} {
		err := take(tc.patch, tc.base)
		if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an ErrManifest with %q", tc.name, err, tc.want)
		}
	}
	// A manifest the key signed that drops a sealed day (an origin gone
	// wrong) rebuilds from its patch, and Follows refuses it as it
	// refuses the whole file.
	bad := manClone(next)
	bad.Seq, bad.Prev = 3, next.Hash()
	bad.Packs = slices.DeleteFunc(bad.Packs, func(p PackEntry) bool { return p.Epoch == 1 })
	manSign(t, bad)
	q, err := DiffManifest(next, bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := take(q.Encode(), next); !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), "dropped") {
		t.Errorf("signed patch dropping a sealed day: %v; want refused by Follows", err)
	}
}

// TestMakePatch: a node sends a patch only when it rebuilds the manifest
// and is at most half of it.
func TestMakePatch(t *testing.T) {
	base, _ := patchPair(t)
	big := manClone(base)
	for i := range 60 {
		big.Packs = append(big.Packs, manDayPack(0, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i).Format(dayLayout), 100))
	}
	sortPacks(big.Packs)
	manSign(t, big)
	bigNext := manClone(big)
	bigNext.Seq, bigNext.Prev = 2, big.Hash()
	bigNext.Packs = append(bigNext.Packs, manSlicePack(0, "2026-02-01", 3))
	sortPacks(bigNext.Packs)
	manSign(t, bigNext)
	b := makePatch(big, bigNext)
	if b == nil || len(b) > len(bigNext.Bytes())/4 {
		t.Fatalf("patch %d bytes for a manifest of %d", len(b), len(bigNext.Bytes()))
	}
	// From the small first manifest, most of the new one is new: the
	// whole file is sent.
	if b := makePatch(base, bigNext); b != nil {
		t.Errorf("patch of %d bytes for a manifest of %d: want none (more than half)", len(b), len(bigNext.Bytes()))
	}
	// A manifest whose slices are listed out of sortPacks' order (check
	// allows any order of a day's slices) cannot be rebuilt: no patch.
	odd := manClone(bigNext)
	odd.Seq = 3
	odd.Prev = bigNext.Hash()
	var idx []int
	for i, p := range odd.Packs {
		if p.Day == "2026-02-01" {
			idx = append(idx, i)
		}
	}
	odd.Packs[idx[0]], odd.Packs[idx[1]] = odd.Packs[idx[1]], odd.Packs[idx[0]]
	manSign(t, odd)
	if b := makePatch(bigNext, odd); b != nil {
		t.Errorf("a patch that rebuilds another order was offered (%d bytes)", len(b))
	}
}

// benchManifest is a signed manifest of one epoch with a day pack for
// each of days days (named as the origin names them), chained, with a
// bundle for each closed month and year, and the next manifest: one slice of the
// open day added.
func benchManifest(tb testing.TB, days int) (base, next *Manifest) {
	start := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	m := &Manifest{List: "alsa-devel", Key: manTestPub(), Seq: 5000, Prev: manH32("prev"), Time: 1_790_000_000}
	var from [20]byte
	for i := range days {
		d := start.AddDate(0, 0, i).Format(dayLayout)
		p := PackEntry{Kind: KindDay, File: fmt.Sprintf("alsa-devel-e0-%s.pack", d), Epoch: 0, Day: d,
			Size: int64(150_000 + i), From: from, To: manH20(d), FirstArticle: int64(40*i + 1), LastArticle: int64(40*i + 40),
			Commits: 40, Objects: 120}
		p.SHA256, p.Trailer, p.InfoHash = manH32(p.File), manH20("trailer "+d), manH20("ih "+d)
		from = p.To
		m.Packs = append(m.Packs, p)
	}
	open := start.AddDate(0, 0, days).Format(dayLayout)
	byMonth := map[string][]PackEntry{}
	var months []string
	for _, p := range m.Packs {
		if mo := p.Day[:7]; mo < open[:7] {
			if byMonth[mo] == nil {
				months = append(months, mo)
			}
			byMonth[mo] = append(byMonth[mo], p)
		}
	}
	byYear := map[string][]PackEntry{}
	for _, mo := range months {
		b := manBundle(0, mo, byMonth[mo]...)
		b.Name = "alsa-devel-e0-" + mo
		m.Bundles = append(m.Bundles, b)
		if y := mo[:4]; y < open[:4] {
			byYear[y] = append(byYear[y], byMonth[mo]...)
		}
	}
	for y, ps := range byYear {
		b := manBundle(0, y, ps...)
		b.Name = "alsa-devel-e0-" + y
		m.Bundles = append(m.Bundles, b)
	}
	sortBundles(m.Bundles)
	m.Epochs = []EpochTip{{0, from}}
	manSign(tb, m)
	next = manClone(m)
	next.Seq, next.Prev, next.Time = m.Seq+1, m.Hash(), m.Time+60
	s := PackEntry{Kind: KindSlice, File: "alsa-devel-e0-" + open + "-s00001.pack", Day: open, Size: 9000,
		From: from, To: manH20("slice"), FirstArticle: int64(40*days + 1), LastArticle: int64(40*days + 3), Commits: 3, Objects: 9}
	s.SHA256, s.Trailer, s.InfoHash = manH32(s.File), manH20("trailer slice"), manH20("ih slice")
	next.Packs = append(next.Packs, s)
	next.Epochs = []EpochTip{{0, s.To}}
	manSign(tb, next)
	return m, next
}

// BenchmarkManifestSlice is a follower's cost of one new slice of a list
// with a long history: the bytes fetched (a patch against the whole
// manifest) and the CPU to take it (decode, apply, re-encode, verify the
// signature and the rules, follow, chain).
//
//	go test -run '^$' -bench ManifestSlice ./swarm
func BenchmarkManifestSlice(b *testing.B) {
	for _, days := range []int{2000, 7300} {
		base, next := benchManifest(b, days)
		patch := makePatch(base, next)
		if patch == nil {
			b.Fatal("no patch")
		}
		b.Run(fmt.Sprintf("days=%d/patch", days), func(b *testing.B) {
			for b.Loop() {
				if err := takePatch(patch, base, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(patch)), "fetched-B")
		})
		b.Run(fmt.Sprintf("days=%d/whole", days), func(b *testing.B) {
			for b.Loop() {
				m, err := ParseManifest(next.Bytes(), manTestPub())
				if err != nil {
					b.Fatal(err)
				}
				if err := m.Follows(base); err != nil {
					b.Fatal(err)
				}
				if err := checkChain(m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(next.Bytes())), "fetched-B")
		})
		b.Run(fmt.Sprintf("days=%d/serve", days), func(b *testing.B) {
			for b.Loop() {
				if makePatch(base, next) == nil {
					b.Fatal("no patch")
				}
			}
		})
	}
}
