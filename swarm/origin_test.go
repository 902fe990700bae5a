package swarm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"mailswarm/archive"
)

// testList opens a fresh archive with one list.
func testList(t testing.TB) (*archive.Archive, *archive.List) {
	t.Helper()
	a, err := archive.Open(&archive.Options{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	l, err := a.Create("demo", "demo@example.org")
	if err != nil {
		t.Fatal(err)
	}
	return a, l
}

// testMessage is a small message numbered i, dated at.
func testMessage(i int, at time.Time) []byte {
	return fmt.Appendf(nil, "From: Poster %d <p%d@example.org>\r\nTo: demo@example.org\r\n"+
		"Subject: message %d\r\nDate: %s\r\nMessage-ID: <m%d@example.org>\r\n\r\nBody of message %d.\r\n%s\r\n",
		i, i%7, i, at.Format(time.RFC1123Z), i, i, bytes.Repeat([]byte("text "), i%50))
}

// addAt archives messages first..first+n-1, arriving at the given times.
func addAt(t testing.TB, l *archive.List, first int, at ...time.Time) {
	t.Helper()
	var ps []*archive.Prepared
	for i, when := range at {
		ps = append(ps, archive.Prepare(testMessage(first+i, when), when))
	}
	if _, err := l.AddPrepared(t.Context(), ps); err != nil {
		t.Fatal(err)
	}
}

func day(s string, hour int) time.Time {
	d, err := time.Parse(dayLayout, s)
	if err != nil {
		panic(err)
	}
	return d.Add(time.Duration(hour) * time.Hour)
}

// checkPackFiles checks every pack the manifest names: the file's size,
// sha256 and trailer, a strict pack verification, the torrent's infohash
// rebuilt from the file.
func checkPackFiles(t *testing.T, o *Origin, m *Manifest) {
	t.Helper()
	for _, p := range m.Packs {
		path := filepath.Join(o.Dir(), packsDir, p.File)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != p.Size || sha256.Sum256(b) != p.SHA256 || !bytes.Equal(b[len(b)-20:], p.Trailer[:]) {
			t.Errorf("%s: size/sha256/trailer differ from the manifest", p.File)
		}
		objs, err := archive.VerifyPack(b)
		if err != nil {
			t.Errorf("%s: %v", p.File, err)
		}
		if objs != p.Objects || p.Objects != 3*p.Commits {
			t.Errorf("%s: %d objects, manifest says %d for %d commits", p.File, objs, p.Objects, p.Commits)
		}
		mi, err := TorrentFor(path)
		if err != nil {
			t.Fatal(err)
		}
		if mi.HashInfoBytes() != p.InfoHash {
			t.Errorf("%s: infohash differs", p.File)
		}
	}
}

func files(m *Manifest, kind string) []string {
	var out []string
	for _, p := range m.Packs {
		if p.Kind == kind {
			out = append(out, p.File)
		}
	}
	return out
}

// Imported history becomes day packs by committer day and month bundles;
// the open day becomes a slice; nothing is published twice.
func TestPublishHistory(t *testing.T) {
	_, l := testList(t)
	addAt(t, l, 1,
		day("2026-10-30", 10), day("2026-10-30", 23), day("2026-10-31", 1),
		day("2026-11-02", 5), day("2026-11-02", 6), day("2026-11-23", 9))
	o, err := NewOrigin(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := o.Publish(day("2026-11-23", 12))
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	wantDays := []string{"demo-e0-2026-10-30.pack", "demo-e0-2026-10-31.pack", "demo-e0-2026-11-02.pack"}
	if got := files(m, KindDay); !slices.Equal(got, wantDays) {
		t.Errorf("day packs %v, want %v", got, wantDays)
	}
	if got := files(m, KindSlice); !slices.Equal(got, []string{"demo-e0-2026-11-23-s00001.pack"}) {
		t.Errorf("slices %v", got)
	}
	if len(m.Bundles) != 1 || m.Bundles[0].Name != "demo-e0-2026-10" ||
		!slices.Equal(m.Bundles[0].Files, wantDays[:2]) {
		t.Errorf("bundles %+v", m.Bundles)
	}
	if m.Seq != 1 || !res.Changed {
		t.Errorf("seq %d changed %v", m.Seq, res.Changed)
	}
	arts := [][2]int64{}
	for _, p := range m.Packs {
		arts = append(arts, [2]int64{p.FirstArticle, p.LastArticle})
	}
	if want := [][2]int64{{1, 2}, {3, 3}, {4, 5}, {6, 6}}; !slices.Equal(arts, want) {
		t.Errorf("article ranges %v, want %v", arts, want)
	}
	checkPackFiles(t, o, m)
	// Nothing new: no new manifest.
	res2, err := o.Publish(day("2026-11-23", 13))
	if err != nil || res2.Changed || res2.Manifest.Seq != 1 {
		t.Fatalf("second publish: changed %v seq %d err %v", res2.Changed, res2.Manifest.Seq, err)
	}
	// The manifest on disk is the one returned, and parses.
	b, err := os.ReadFile(filepath.Join(o.Dir(), manifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseManifest(b, l.PublicKey()); err != nil || !bytes.Equal(b, m.Bytes()) {
		t.Fatalf("manifest on disk: %v", err)
	}
}

// A commit dated before its predecessor's day lands in the predecessor's
// day; one dated before a sealed day lands in the first open day.
func TestDaysNeverGoBack(t *testing.T) {
	_, l := testList(t)
	addAt(t, l, 1, day("2026-11-10", 10), day("2026-11-09", 10), day("2026-11-11", 10))
	o, err := NewOrigin(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := o.Publish(day("2026-11-12", 0))
	if err != nil {
		t.Fatal(err)
	}
	if got := files(res.Manifest, KindDay); !slices.Equal(got, []string{"demo-e0-2026-11-10.pack", "demo-e0-2026-11-11.pack"}) {
		t.Fatalf("days %v", got)
	}
	if p := res.Manifest.Packs[0]; p.Commits != 2 || p.FirstArticle != 1 || p.LastArticle != 2 {
		t.Errorf("2026-11-10: %+v", p)
	}
	// Late mail dated inside sealed days goes to the first open day.
	addAt(t, l, 4, day("2026-11-10", 12), day("2026-11-12", 1))
	res, err = o.Publish(day("2026-11-12", 3))
	if err != nil {
		t.Fatal(err)
	}
	if got := files(res.Manifest, KindSlice); !slices.Equal(got, []string{"demo-e0-2026-11-12-s00001.pack"}) {
		t.Fatalf("slices %v", got)
	}
	if p := res.Manifest.Packs[2]; p.Commits != 2 || p.FirstArticle != 4 || p.LastArticle != 5 {
		t.Errorf("slice: %+v", p)
	}
	checkPackFiles(t, o, res.Manifest)
}

// An open day is cut into slices as mail comes; when it closes, its day
// pack spans exactly the slices' commits, the slices retire (files gone),
// and the manifest chain holds.
func TestSlicesSealIntoDay(t *testing.T) {
	_, l := testList(t)
	o, err := NewOrigin(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	var chain []*Manifest
	n := 1
	for hour := range 3 {
		addAt(t, l, n, day("2026-11-23", hour), day("2026-11-23", hour).Add(time.Minute))
		n += 2
		res, err := o.Publish(day("2026-11-23", hour).Add(2 * time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Slices) != 1 {
			t.Fatalf("hour %d: slices cut %v", hour, res.Slices)
		}
		chain = append(chain, res.Manifest)
	}
	m := chain[len(chain)-1]
	if got := files(m, KindSlice); len(got) != 3 || got[2] != "demo-e0-2026-11-23-s00003.pack" {
		t.Fatalf("slices %v", got)
	}
	checkPackFiles(t, o, m)
	sliceFiles := files(m, KindSlice)
	res, err := o.Publish(day("2026-11-24", 0).Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	chain = append(chain, res.Manifest)
	if !slices.Equal(res.Days, []string{"demo-e0-2026-11-23.pack"}) || !slices.Equal(res.Retired, sliceFiles) {
		t.Fatalf("seal: days %v retired %v", res.Days, res.Retired)
	}
	d := res.Manifest.Packs[0]
	if d.Commits != 6 || d.From != ([20]byte{}) || d.To != m.Packs[2].To || d.FirstArticle != 1 || d.LastArticle != 6 {
		t.Errorf("day pack %+v", d)
	}
	for _, f := range sliceFiles {
		if _, err := os.Stat(filepath.Join(o.Dir(), packsDir, f)); !os.IsNotExist(err) {
			t.Errorf("retired slice %s still on disk (%v)", f, err)
		}
	}
	checkPackFiles(t, o, res.Manifest)
	for i := 1; i < len(chain); i++ {
		if err := chain[i].Follows(chain[i-1]); err != nil {
			t.Errorf("manifest %d does not follow %d: %v", chain[i].Seq, chain[i-1].Seq, err)
		}
	}
}

// A second repository that received the same objects in other batches,
// through the origin's slices, rebuilds the origin's day pack byte for
// byte: same sha256, same infohash.
func TestDayPackRebuiltFromSlices(t *testing.T) {
	_, origin := testList(t)
	o, err := NewOrigin(origin, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Five arrival batches, three slices.
	n := 1
	var sliceFiles []string
	for i, batch := range []int{3, 1, 4, 1, 5} {
		at := make([]time.Time, batch)
		for j := range at {
			at[j] = day("2026-11-23", i).Add(time.Duration(j) * time.Second)
		}
		addAt(t, origin, n, at...)
		n += batch
		if i == 1 || i == 2 || i == 4 {
			res, err := o.Publish(day("2026-11-23", i).Add(time.Hour - time.Second))
			if err != nil {
				t.Fatal(err)
			}
			sliceFiles = append(sliceFiles, res.Slices...)
		}
	}
	if len(sliceFiles) != 3 {
		t.Fatalf("slices %v", sliceFiles)
	}
	slicePacks := map[string][]byte{}
	for _, f := range sliceFiles {
		b, err := os.ReadFile(filepath.Join(o.Dir(), packsDir, f))
		if err != nil {
			t.Fatal(err)
		}
		slicePacks[f] = b
	}
	res, err := o.Publish(day("2026-11-24", 0))
	if err != nil {
		t.Fatal(err)
	}
	dayPack := res.Manifest.Packs[0]
	if dayPack.Kind != KindDay || dayPack.Commits != 14 {
		t.Fatalf("day pack %+v", dayPack)
	}

	// The mirror: another archive, fed the slices one by one.
	ma, err := archive.Open(&archive.Options{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ma.Close()
	mirror, err := ma.Create("demo", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range sliceFiles {
		if _, err := mirror.AppendPack(t.Context(), 0, slicePacks[f]); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	// A slice cannot be applied twice, nor out of order.
	if _, err := mirror.AppendPack(t.Context(), 0, slicePacks[sliceFiles[1]]); err == nil {
		t.Error("a slice applied twice")
	}
	path := filepath.Join(t.TempDir(), dayPack.File)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := mirror.WriteCanonicalPack(f, 0, dayPack.From, dayPack.To)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if info.SHA256 != dayPack.SHA256 || info.Size != dayPack.Size || info.Trailer != dayPack.Trailer {
		t.Fatalf("rebuilt day pack differs: %d bytes %x, origin %d bytes %x", info.Size, info.SHA256, dayPack.Size, dayPack.SHA256)
	}
	mi, err := TorrentFor(path)
	if err != nil {
		t.Fatal(err)
	}
	if mi.HashInfoBytes() != dayPack.InfoHash {
		t.Errorf("infohash %s, origin %x", mi.HashInfoBytes(), dayPack.InfoHash)
	}
	// The mirror's index has the messages under the same article numbers.
	st, err := mirror.Stats(t.Context())
	if err != nil || st.Messages != 14 || st.LastArticle != 14 {
		t.Errorf("mirror stats %+v %v", st, err)
	}
}

// After a crash between writing packs and the manifest, the manifest
// names only complete files; the next publish rewrites what it needs (the
// same bytes) and removes the leftovers.
func TestPublishAfterCrash(t *testing.T) {
	_, l := testList(t)
	addAt(t, l, 1, day("2026-11-20", 1), day("2026-11-21", 1))
	o, err := NewOrigin(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Publish(day("2026-11-21", 2)); err != nil {
		t.Fatal(err)
	}
	// A crash mid-publish leaves a temporary file, a pack the manifest
	// does not name and a torrent for it.
	pdir := filepath.Join(o.Dir(), packsDir)
	for _, f := range []string{filepath.Join(pdir, ".tmp-demo-e0-2026-11-21.pack-123"), filepath.Join(pdir, "demo-e0-2026-11-21.pack"),
		filepath.Join(o.Dir(), torrentsDir, "demo-e0-2026-11-21.pack.torrent")} {
		if err := os.WriteFile(f, []byte("half written"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	o2, err := NewOrigin(l, nil) // the restarted process
	if err != nil {
		t.Fatal(err)
	}
	res, err := o2.Publish(day("2026-11-22", 0))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Days, []string{"demo-e0-2026-11-21.pack"}) {
		t.Fatalf("days %v", res.Days)
	}
	checkPackFiles(t, o2, res.Manifest)
	ents, _ := os.ReadDir(pdir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if want := []string{"demo-e0-2026-11-20.pack", "demo-e0-2026-11-21.pack"}; !slices.Equal(names, want) {
		t.Errorf("packs dir holds %v, want %v", names, want)
	}
}

// Storage trouble while publishing is an error and changes nothing: the
// manifest stays as it was; once the trouble is gone, publishing resumes.
func TestPublishStorageTrouble(t *testing.T) {
	_, l := testList(t)
	addAt(t, l, 1, day("2026-11-20", 1))
	o, err := NewOrigin(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := o.Publish(day("2026-11-21", 0))
	if err != nil {
		t.Fatal(err)
	}
	before := res.Manifest.Bytes()
	addAt(t, l, 2, day("2026-11-21", 1))
	pdir := filepath.Join(o.Dir(), packsDir)
	if err := os.Rename(pdir, pdir+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pdir, nil, 0o644); err != nil { // packs/ is now a file: no write can succeed
		t.Fatal(err)
	}
	if _, err := o.Publish(day("2026-11-22", 0)); err == nil {
		t.Fatal("publish succeeded with no packs directory")
	} else {
		t.Logf("refused: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(o.Dir(), manifestFile)); !bytes.Equal(b, before) {
		t.Fatal("the manifest changed after a failed publish")
	}
	os.Remove(pdir)
	if err := os.Rename(pdir+".away", pdir); err != nil {
		t.Fatal(err)
	}
	res, err = o.Publish(day("2026-11-22", 0))
	if err != nil || res.Manifest.Seq != 2 || !slices.Equal(res.Days, []string{"demo-e0-2026-11-21.pack"}) {
		t.Fatalf("after the trouble: %+v %v", res, err)
	}
	if err := res.Manifest.Follows(mustParse(t, before, l.PublicKey())); err != nil {
		t.Error(err)
	}
	checkPackFiles(t, o, res.Manifest)
}

func mustParse(t *testing.T, b []byte, key []byte) *Manifest {
	t.Helper()
	m, err := ParseManifest(b, key)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Two publishers of one list (serve and `swarm publish`) take turns: every
// manifest they write follows the one before it.
func TestConcurrentPublishers(t *testing.T) {
	_, l := testList(t)
	o1, err := NewOrigin(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	o2, err := NewOrigin(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[int64][]byte{}
	errs := make(chan error, 2)
	for w, o := range []*Origin{o1, o2} {
		go func() {
			for i := range 20 {
				now := day("2026-11-23", 1).Add(time.Duration(i*2+w) * time.Minute)
				res, err := o.Publish(now)
				if err != nil {
					errs <- err
					return
				}
				if res.Changed {
					mu.Lock()
					if _, dup := seen[res.Manifest.Seq]; dup {
						errs <- fmt.Errorf("seq %d written twice", res.Manifest.Seq)
					}
					seen[res.Manifest.Seq] = res.Manifest.Bytes()
					mu.Unlock()
				}
			}
			errs <- nil
		}()
	}
	for i := range 40 {
		addAt(t, l, i+1, day("2026-11-23", 1).Add(time.Duration(i)*time.Minute))
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	res, err := o1.Publish(day("2026-11-24", 0))
	if err != nil {
		t.Fatal(err)
	}
	seen[res.Manifest.Seq] = res.Manifest.Bytes()
	var prev *Manifest
	for seq := int64(1); seq <= res.Manifest.Seq; seq++ {
		b, ok := seen[seq]
		if !ok {
			t.Fatalf("seq %d missing of %d", seq, res.Manifest.Seq)
		}
		m := mustParse(t, b, l.PublicKey())
		if prev != nil {
			if err := m.Follows(prev); err != nil {
				t.Fatalf("seq %d: %v", seq, err)
			}
		}
		prev = m
	}
	if d := res.Manifest.Packs[0]; d.Kind != KindDay || d.Commits != 40 {
		t.Errorf("day pack %+v", d)
	}
	checkPackFiles(t, o1, res.Manifest)
}

// A long history is published in steps, each a signed manifest that
// follows the one before: the packs are those of a single pass, and no
// bundle is made over a month a step has not finished.
func TestPublishInSteps(t *testing.T) {
	_, l := testList(t)
	var at []time.Time
	for d := range 45 { // 2026-10-01 .. 2026-11-14
		at = append(at, day("2026-10-01", 9).AddDate(0, 0, d), day("2026-10-01", 17).AddDate(0, 0, d))
	}
	addAt(t, l, 1, at...)
	o, err := NewOrigin(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.stepPacks = 7
	now := day("2026-11-14", 20) // Nov 14 is open: a slice
	var chain []*Manifest
	for {
		res, more, err := o.PublishStep(t.Context(), now)
		if err != nil {
			t.Fatal(err)
		}
		if res.Changed {
			chain = append(chain, res.Manifest)
		}
		if !more {
			break
		}
	}
	if len(chain) != 7 { // 44 day packs and a slice, 7 at a time
		t.Errorf("%d steps, want 7", len(chain))
	}
	final := chain[len(chain)-1]
	if d := files(final, KindDay); len(d) != 44 || d[0] != "demo-e0-2026-10-01.pack" || d[43] != "demo-e0-2026-11-13.pack" {
		t.Errorf("%d day packs: %v", len(d), d)
	}
	if len(final.Bundles) != 1 || len(final.Bundles[0].Files) != 31 {
		t.Fatalf("bundles %+v", final.Bundles)
	}
	for i, m := range chain {
		if i > 0 {
			if err := m.Follows(chain[i-1]); err != nil {
				t.Errorf("step %d: %v", i, err)
			}
		}
		for _, b := range m.Bundles {
			if len(b.Files) != 31 {
				t.Errorf("step %d bundles %d files of October", i, len(b.Files))
			}
		}
		if tip := m.Epochs[0].Tip; tip != m.Packs[len(m.Packs)-1].To {
			t.Errorf("step %d: epoch tip %x is not the last pack's end", i, tip)
		}
	}
	checkPackFiles(t, o, final)

	// The same history published in one pass gives the same packs.
	_, l2 := testList(t)
	addAt(t, l2, 1, at...)
	o2, err := NewOrigin(l2, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := o2.Publish(now)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range res.Manifest.Packs {
		if q := final.Packs[i]; p.File != q.File || p.SHA256 != q.SHA256 || p.InfoHash != q.InfoHash {
			t.Errorf("pack %d: one pass %s %x, in steps %s %x", i, p.File, p.SHA256[:4], q.File, q.SHA256[:4])
		}
	}

	// A publish whose context ends stops after a signed step; the next
	// one finishes.
	_, l3 := testList(t)
	addAt(t, l3, 1, at...)
	o3, err := NewOrigin(l3, nil)
	if err != nil {
		t.Fatal(err)
	}
	o3.stepPacks = 7
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if res, err := o3.PublishContext(ctx, now, nil); !errors.Is(err, context.Canceled) || res.Changed {
		t.Fatalf("canceled publish: changed %v, %v", res.Changed, err)
	}
	res, err = o3.Publish(now)
	if err != nil || len(res.Manifest.Packs) != 45 {
		t.Fatalf("after cancel: %d packs, %v", len(res.Manifest.Packs), err)
	}
}
