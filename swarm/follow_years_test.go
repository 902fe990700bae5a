package swarm

import (
	"bytes"
	"testing"
	"time"
)

// TestFollowYearBundles: a late joiner of a list with five years of
// history opens one torrent per closed year, one per closed month of the
// open year, one per sealed day of the open month and one per slice of
// the open day, and ends with the origin's export.
func TestFollowYearBundles(t *testing.T) {
	a, l := testList(t)
	var at []time.Time
	for d := time.Date(2022, 1, 3, 0, 0, 0, 0, time.UTC); d.Before(day("2026-11-23", 0)); d = d.AddDate(0, 0, 6) {
		at = append(at, d.Add(time.Hour))
	}
	at = append(at, day("2026-11-23", 1))
	addAt(t, l, 1, at...)
	o, err := NewOrigin(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := o.Publish(day("2026-11-23", 12))
	if err != nil {
		t.Fatal(err)
	}
	m := res.Manifest
	var years, months2026, openMonthDays, slices int
	for _, b := range m.Bundles {
		switch {
		case b.Year():
			years++
		case b.Month >= "2026-01":
			months2026++
		}
	}
	for _, p := range m.Packs {
		switch {
		case p.Kind == KindSlice:
			slices++
		case p.Day >= "2026-11-01":
			openMonthDays++
		}
	}
	if years != 4 || months2026 != 10 || m.version() != yearsVersion {
		t.Fatalf("%d year bundles, %d month bundles of 2026, version %d; want 4, 10, 2", years, months2026, m.version())
	}
	for _, b := range m.Bundles {
		if b.Year() && (len(b.Files) < 52 || b.Name != "demo-e0-"+b.Month) {
			t.Errorf("year bundle %s: %d files", b.Name, len(b.Files))
		}
	}
	tn := serveArchive(t, a, Options{})
	if mm := tn.manifest(t); mm.Hash() != m.Hash() {
		t.Fatalf("the node serves seq %d, the origin published seq %d", mm.Seq, m.Seq)
	}
	mir := startTestMirror(t, l.PublicKey(), func() time.Time { return day("2026-11-23", 12) }, tn.url)
	if err := mir.node.SyncOnce(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exportOf(t, a, "demo"), exportOf(t, mir.a, "demo")) {
		t.Fatal("the mirror's export differs from the origin's")
	}
	st := mustFollowStatus(t, mir)
	want := years + months2026 + openMonthDays + slices
	t.Logf("late joiner of %d packs over 5 years: %d torrents opened (%d years + %d months + %d days + %d slices); %d bundles in the manifest",
		len(m.Packs), st.TorrentsOpened, years, months2026, openMonthDays, slices, len(m.Bundles))
	if st.TorrentsOpened != want {
		t.Errorf("opened %d torrents, want %d", st.TorrentsOpened, want)
	}
	// The mirror seeds the year bundles from the day pack files.
	for _, b := range m.Bundles {
		if tt := mir.node.Torrent("demo", b.Name); tt == nil || !tt.Complete().Bool() {
			t.Errorf("bundle %s not seeded complete by the mirror", b.Name)
		}
	}
}
