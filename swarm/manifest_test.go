package swarm

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var (
	manTestKey  = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	manOtherKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
)

func manTestPub() ed25519.PublicKey  { return manTestKey.Public().(ed25519.PublicKey) }
func manOtherPub() ed25519.PublicKey { return manOtherKey.Public().(ed25519.PublicKey) }

func manH20(s string) [20]byte { return sha1.Sum([]byte(s)) }
func manH32(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// dayPack and slicePack make entries whose hashes follow from their names.
func manDayPack(epoch int, day string, size int64) PackEntry {
	file := fmt.Sprintf("e%d-%s.pack", epoch, day)
	return PackEntry{
		Kind: KindDay, File: file, Epoch: epoch, Day: day, Size: size,
		SHA256: manH32(file), Trailer: manH20("trailer " + file),
		From: manH20("from " + file), To: manH20("to " + file),
		FirstArticle: 10, LastArticle: 19, Commits: 10, Objects: 30,
		InfoHash: manH20("infohash " + file),
	}
}

func manSlicePack(epoch int, day string, n int) PackEntry {
	p := manDayPack(epoch, day, int64(100+n))
	p.Kind = KindSlice
	p.File = fmt.Sprintf("e%d-%s.%d.pack", epoch, day, n)
	p.SHA256, p.InfoHash = manH32(p.File), manH20("infohash "+p.File)
	p.FirstArticle, p.LastArticle, p.Commits, p.Objects = 0, 0, 1, 3
	return p
}

func manBundle(epoch int, month string, packs ...PackEntry) BundleEntry {
	b := BundleEntry{Name: fmt.Sprintf("e%d-%s", epoch, month), Epoch: epoch, Month: month, InfoHash: manH20("bundle " + month)}
	for _, p := range packs {
		b.Files = append(b.Files, p.File)
		b.Size += p.Size
	}
	return b
}

// testManifest is a first manifest: two sealed days of January, a bundle
// over them, an open day in February with two slices and a second epoch.
func manTestManifest() *Manifest {
	d1, d2 := manDayPack(0, "2026-01-30", 1000), manDayPack(0, "2026-01-31", 2000)
	return &Manifest{
		List: "demo-list", Key: manTestPub(), Seq: 1, Time: 1_790_000_000,
		Epochs: []EpochTip{{0, manH20("tip 0")}, {1, manH20("tip 1")}},
		Packs: []PackEntry{
			d1, d2, manSlicePack(0, "2026-02-01", 1), manSlicePack(0, "2026-02-01", 2),
			manDayPack(1, "2026-01-01", 500),
		},
		Bundles: []BundleEntry{manBundle(0, "2026-01", d1, d2)},
	}
}

func manSign(t testing.TB, m *Manifest) []byte {
	t.Helper()
	b, err := m.Sign(manTestKey)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return b
}

// signRaw signs body bytes as they are, skipping Sign's checks.
func manSignRaw(body []byte, priv ed25519.PrivateKey) []byte {
	return encodeFile(body, ed25519.Sign(priv, body))
}

func TestManifestKeysSorted(t *testing.T) {
	for _, keys := range [][]string{fileKeys, bodyKeys, epochKeys, packKeys, bundleKeys} {
		if !slices.IsSorted(keys) || len(slices.Compact(slices.Clone(keys))) != len(keys) || len(keys) > 64 {
			t.Errorf("keys %q not sorted and unique", keys)
		}
	}
}

func TestManifestRoundTrip(t *testing.T) {
	m := manTestManifest()
	if h := m.Hash(); h != [32]byte{} {
		t.Errorf("Hash of an unsigned manifest = %x, want zero", h)
	}
	b := manSign(t, m)
	if !bytes.Equal(m.Bytes(), b) {
		t.Errorf("Bytes() after Sign differs from what Sign returned")
	}
	if m.Hash() != sha256.Sum256(b) {
		t.Errorf("Hash() is not the sha256 of the file")
	}
	for _, key := range []ed25519.PublicKey{manTestPub(), nil} {
		got, err := ParseManifest(b, key)
		if err != nil {
			t.Fatalf("ParseManifest(key %x): %v", []byte(key), err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("ParseManifest(Sign(m)) = %+v\nwant %+v", got, m)
		}
		again, err := got.Sign(manTestKey)
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("re-signing the parsed manifest = %q, %v; want the same bytes", again, err)
		}
	}
	if !bytes.HasPrefix(b, []byte("d4:body")) || !bytes.Contains(b, []byte("3:sig64:")) {
		t.Errorf("file %q is not d 4:body ... 3:sig 64:... e", b)
	}

	// The empty lists and a zero From have their one encoding too.
	e := &Manifest{List: "x", Key: manTestPub(), Seq: 7, Prev: manH32("6")}
	p := manSlicePack(3, "2000-02-29", 1)
	p.From = [20]byte{}
	e.Packs = []PackEntry{p}
	got, err := ParseManifest(manSign(t, e), manTestPub())
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Errorf("ParseManifest(Sign(%+v)) = %+v, %v", e, got, err)
	}
}

func TestSignRefuses(t *testing.T) {
	m := manTestManifest()
	if _, err := m.Sign(manOtherKey); err == nil || !strings.Contains(err.Error(), "private key is not the key") {
		t.Errorf("Sign with another key: %v, want a key error", err)
	}
	m.Packs[0].Size = 0
	if _, err := m.Sign(manTestKey); !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), "size 0") {
		t.Errorf("Sign of a pack of size 0: %v, want ErrManifest naming the size", err)
	}
	if m.Bytes() != nil {
		t.Errorf("a refused Sign set Bytes()")
	}
}

func wantManRefused(t *testing.T, what string, err error, want string) {
	t.Helper()
	t.Logf("%s: %v", what, err)
	if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %v, want ErrManifest mentioning %q", what, err, want)
	}
}

func TestParseManifestRefuses(t *testing.T) {
	good := manSign(t, manTestManifest())
	body, _, err := decodeFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// edit returns a good file with old replaced by new in the body,
	// signed again: only the encoding is wrong.
	edit := func(old, new string) []byte {
		if !bytes.Contains(body, []byte(old)) {
			t.Fatalf("body has no %q", old)
		}
		return manSignRaw(bytes.Replace(body, []byte(old), []byte(new), 1), manTestKey)
	}
	// change returns m's body, unchecked, signed.
	change := func(f func(m *Manifest)) []byte {
		m := manTestManifest()
		f(m)
		return manSignRaw(encodeBody(m), manTestKey)
	}
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 1
		return b
	}
	sizeAt := bytes.Index(good, []byte("4:sizei1000e")) + len("4:sizei100")

	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"tampered size", bytes.Replace(good, []byte("4:sizei1000e"), []byte("4:sizei1001e"), 1), "bad signature"},
		{"tampered size by a bit", flip(good, sizeAt), "bad signature"},
		{"flipped signature", flip(good, len(good)-2), "bad signature"},
		{"signed by another key", manSignRaw(body, manOtherKey), "bad signature"},
		{"empty", nil, "unexpected end"},
		{"truncated", good[:len(good)-1], "unexpected end"},
		{"trailing garbage", append(bytes.Clone(good), 'x'), "trailing bytes"},
		{"trailing garbage in body", manSignRaw(append(bytes.Clone(body), "le"...), manTestKey), "trailing bytes"},
		{"short signature", encodeFile(body, make([]byte, 63)), "63 bytes, want 64"},
		{"unsorted keys", edit("3:seqi1e4:timei1790000000e", "4:timei1790000000e3:seqi1e"), `keys not sorted: "seq" after "time"`},
		{"duplicate key", edit("1:vi1e", "1:vi1e1:vi1e"), `duplicate key "v"`},
		{"unknown key", edit("1:vi1e", "1:vi1e1:wi0e"), `unknown key "w"`},
		{"unknown pack key", edit("4:file", "5:extrai1e4:file"), `unknown key "extra"`},
		{"missing key", edit("1:vi1e", ""), `missing key "v"`},
		{"leading-zero integer", edit("3:seqi1e", "3:seqi01e"), "leading zero"},
		{"leading-zero length", edit("4:list9:demo-list", "4:list09:demo-list"), "leading zero"},
		{"negative zero", edit("5:firsti10e", "5:firsti-0e"), "negative zero"},
		{"huge integer", edit("4:sizei1000e", "4:sizei99999999999999999999e"), "out of range"},
		{"string for integer", edit("3:seqi1e", "3:seq1:1"), "where integer expected"},
		{"short hash", edit("4:prev32:", "4:prev31:"), "want 32"},
		{"version 2", edit("1:vi1e", "1:vi2e"), "version 2, but its bundles make it version 1"},
		{"version 3", edit("1:vi1e", "1:vi3e"), "manifest version 3: this node reads versions up to 2"},
		{"bad list name", change(func(m *Manifest) { m.List = "Demo" }), `list name "Demo" is not valid`},
		{"seq 0", change(func(m *Manifest) { m.Seq = 0 }), "seq 0 is not >= 1"},
		{"seq 1 with prev", change(func(m *Manifest) { m.Prev = manH32("x") }), "seq 1 names a prev hash"},
		{"seq 2 without prev", change(func(m *Manifest) { m.Seq = 2 }), "seq 2 names no prev hash"},
		{"name ../x", change(func(m *Manifest) { m.Packs[0].File = "../x" }), `file name "../x" is not valid`},
		{"name a/b", change(func(m *Manifest) { m.Packs[0].File = "a/b" }), `file name "a/b" is not valid`},
		{"name a..b", change(func(m *Manifest) { m.Packs[0].File = "a..b" }), `file name "a..b" is not valid`},
		{"bundle name", change(func(m *Manifest) { m.Bundles[0].Name = ".hidden" }), `name ".hidden" is not valid`},
		{"duplicate files", change(func(m *Manifest) { m.Packs[3].File = m.Packs[2].File }), "duplicate file name"},
		{"bundle named as a pack", change(func(m *Manifest) { m.Bundles[0].Name = m.Packs[4].File }), "duplicate file name"},
		{"bundle of a missing pack", change(func(m *Manifest) { m.Bundles[0].Files[1] = "nope.pack" }), `file "nope.pack" is not a pack of the manifest`},
		{"bundle of a slice", change(func(m *Manifest) { m.Bundles[0].Files[1] = m.Packs[2].File }), "is a slice, not a day pack"},
		{"bundle of another month", change(func(m *Manifest) { m.Bundles[0].Month = "2026-02" }), "not in 2026-02"},
		{"bundle of another epoch", change(func(m *Manifest) { m.Bundles[0].Files[0] = m.Packs[4].File }), "is of epoch 1, not 0"},
		{"bundle size", change(func(m *Manifest) { m.Bundles[0].Size++ }), "size 3001, but its files sum to 3000"},
		{"bundle files order", change(func(m *Manifest) { slices.Reverse(m.Bundles[0].Files) }), "files not in day order"},
		{"bundle file twice", change(func(m *Manifest) { m.Bundles[0].Files[1] = m.Bundles[0].Files[0] }), "listed twice"},
		{"kind", change(func(m *Manifest) { m.Packs[0].Kind = "week" }), `kind "week"`},
		{"day", change(func(m *Manifest) { m.Packs[0].Day = "2026-01-32" }), `day "2026-01-32" is not a YYYY-MM-DD date`},
		{"month", change(func(m *Manifest) { m.Bundles[0].Month = "2026-1" }), `month "2026-1"`},
		{"size 0", change(func(m *Manifest) { m.Packs[4].Size = 0 }), "size 0 is not > 0"},
		{"negative epoch", change(func(m *Manifest) { m.Epochs[0].Epoch = -1 }), "epoch -1 is negative"},
		{"commits 0", change(func(m *Manifest) { m.Packs[4].Commits = 0 }), "commits 0"},
		{"objects < commits", change(func(m *Manifest) { m.Packs[4].Objects = 9 }), "objects 9 is fewer than commits 10"},
		{"first > last", change(func(m *Manifest) { m.Packs[4].FirstArticle = 20 }), "first after last"},
		{"first 0 last 5", change(func(m *Manifest) { m.Packs[4].FirstArticle = 0 }), "both must be 0 or both >= 1"},
		{"zero sha256", change(func(m *Manifest) { m.Packs[4].SHA256 = [32]byte{} }), "sha256 is zero"},
		{"empty range", change(func(m *Manifest) { m.Packs[4].From = m.Packs[4].To }), "empty range"},
		{"two day packs a day", change(func(m *Manifest) {
			p := m.Packs[1]
			p.File = "other.pack"
			m.Packs = slices.Insert(m.Packs, 2, p)
		}), "two day packs for epoch 0 day 2026-01-31"},
		{"slice of a sealed day", change(func(m *Manifest) {
			m.Packs = slices.Insert(m.Packs, 2, manSlicePack(0, "2026-01-31", 1))
		}), `slice "e0-2026-01-31.1.pack" of sealed day`},
		{"packs out of order", change(func(m *Manifest) { m.Packs[0], m.Packs[1] = m.Packs[1], m.Packs[0] }), "packs not in (epoch, day) order"},
		{"epochs out of order", change(func(m *Manifest) { slices.Reverse(m.Epochs) }), "epoch tips not unique and ascending"},
		{"duplicate epoch", change(func(m *Manifest) { m.Epochs[1].Epoch = 0 }), "epoch tips not unique and ascending"},
		{"bundles out of order", change(func(m *Manifest) {
			b := manBundle(0, "2025-12", m.Packs[0])
			b.Month, b.Name = "2026-01", "a-first"
			m.Bundles = append(m.Bundles, b)
		}), "bundles not in (epoch, month, name) order"},
		{"too big", make([]byte, maxManifestSize+1), "more than"},
	} {
		_, err := ParseManifest(tc.file, manTestPub())
		wantManRefused(t, tc.name, err, tc.want)
	}

	_, err = ParseManifest(good, manOtherPub())
	wantManRefused(t, "wrong expected key", err, "not the expected key")
	_, err = ParseManifest(good, manTestPub()[:31])
	wantManRefused(t, "short expected key", err, "expected key has 31 bytes")
	unsorted := fmt.Appendf(nil, "d3:sig64:%s4:body%d:%se", strings.Repeat("x", 64), len(body), body)
	_, err = ParseManifest(unsorted, nil)
	wantManRefused(t, "unsorted file keys", err, "keys not sorted")
}

func manClone(m *Manifest) *Manifest {
	c := *m
	c.Epochs = slices.Clone(m.Epochs)
	c.Packs = slices.Clone(m.Packs)
	c.Bundles = slices.Clone(m.Bundles)
	for i := range c.Bundles {
		c.Bundles[i].Files = slices.Clone(c.Bundles[i].Files)
	}
	c.raw = nil
	return &c
}

// next returns the manifest after prev, changed by f, signed and parsed.
func manNext(t *testing.T, prev *Manifest, f func(m *Manifest)) *Manifest {
	t.Helper()
	m := manClone(prev)
	m.Seq++
	m.Prev = prev.Hash()
	m.Time += 3600
	f(m)
	got, err := ParseManifest(manSign(t, m), m.Key)
	if err != nil {
		t.Fatalf("ParseManifest(seq %d): %v", m.Seq, err)
	}
	return got
}

func TestManifestFollows(t *testing.T) {
	d30, d31 := manDayPack(0, "2026-01-30", 1000), manDayPack(0, "2026-01-31", 2000)
	m1 := &Manifest{
		List: "demo", Key: manTestPub(), Seq: 1, Time: 1_790_000_000,
		Epochs: []EpochTip{{0, manH20("tip 1")}},
		Packs:  []PackEntry{d30, manSlicePack(0, "2026-01-31", 1)},
	}
	manSign(t, m1)
	// 2 adds a slice to the open day.
	m2 := manNext(t, m1, func(m *Manifest) {
		m.Packs = append(m.Packs, manSlicePack(0, "2026-01-31", 2))
		m.Epochs[0].Tip = manH20("tip 2")
	})
	// 3 seals the day (its slices give way to the day pack), adds a
	// bundle over the month and an epoch.
	m3 := manNext(t, m2, func(m *Manifest) {
		m.Packs = []PackEntry{d30, d31, manDayPack(1, "2026-01-31", 10)}
		m.Bundles = []BundleEntry{manBundle(0, "2026-01", d30, d31)}
		m.Epochs = append(m.Epochs, EpochTip{1, manH20("tip 1/1")})
	})
	for _, tc := range []struct{ m, prev *Manifest }{{m2, m1}, {m3, m2}, {m3, m1}} {
		if err := tc.m.Follows(tc.prev); err != nil {
			t.Errorf("seq %d Follows seq %d: %v", tc.m.Seq, tc.prev.Seq, err)
		}
	}
	// A gap skips the chain check but not the content rules.
	gap := manNext(t, m2, func(m *Manifest) {
		m.Seq = 5
		m.Packs = m.Packs[:2] // slice 2 dropped, its day not sealed
	})
	wantManRefused(t, "seq 5 after 2 dropping a slice", gap.Follows(m2), `slice "e0-2026-01-31.2.pack" of seq 2 dropped without a day pack`)

	other := manClone(m2)
	other.Key = manOtherPub()
	if _, err := other.Sign(manOtherKey); err != nil {
		t.Fatal(err)
	}
	renamed := manClone(m2)
	renamed.List = "other"
	manSign(t, renamed)

	for _, tc := range []struct {
		name    string
		m, prev *Manifest
		want    string
	}{
		{"older sequence", m1, m2, "older or same sequence: seq 1 does not follow seq 2"},
		{"same sequence", m2, m2, "older or same sequence: seq 2 does not follow seq 2"},
		{"other list", renamed, m1, `list "other" does not follow list "demo"`},
		{"other key", other, m1, "key"},
		{"broken chain", manNext(t, m1, func(m *Manifest) { m.Prev = manH32("not m1") }), m1, "broken chain: seq 2 names prev"},
		{"broken chain over a resigned prev", m3, func() *Manifest {
			c := manClone(m2)
			c.Time++
			manSign(t, c)
			return c
		}(), "broken chain"},
		{"dropped day pack", manNext(t, m3, func(m *Manifest) {
			m.Packs = m.Packs[1:]
			m.Bundles = nil
		}), m3, `day pack "e0-2026-01-30.pack" of seq 3 dropped`},
		{"changed day pack", manNext(t, m3, func(m *Manifest) { m.Packs[2].SHA256 = manH32("other") }), m3, `day pack "e1-2026-01-31.pack" changed since seq 3`},
		{"changed slice", manNext(t, m2, func(m *Manifest) { m.Packs[1].Size++ }), m2, `slice pack "e0-2026-01-31.1.pack" changed since seq 2`},
		{"slice dropped without its day pack", manNext(t, m2, func(m *Manifest) { m.Packs = m.Packs[:2] }), m2, `slice "e0-2026-01-31.2.pack" of seq 2 dropped without a day pack`},
		{"bundle dropped", manNext(t, m3, func(m *Manifest) { m.Bundles = nil }), m3, `bundle "e0-2026-01" of seq 3 dropped`},
		{"bundle changed", manNext(t, m3, func(m *Manifest) { m.Bundles[0].InfoHash = manH20("other") }), m3, `bundle "e0-2026-01" changed since seq 3`},
		{"epoch dropped", manNext(t, m3, func(m *Manifest) { m.Epochs = m.Epochs[:1] }), m3, "epoch 1 of seq 3 dropped"},
	} {
		wantManRefused(t, tc.name, tc.m.Follows(tc.prev), tc.want)
	}
}
