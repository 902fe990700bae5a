package swarm

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestManifestYearBundle: a year bundle makes the manifest version 2 (the
// version follows from the content: one encoding); a year bundle over a
// day of another year, a version 1 manifest with a year bundle, a version
// 2 manifest without one and a version 3 manifest are refused, each
// saying why.
func TestManifestYearBundle(t *testing.T) {
	m := manTestManifest()
	if body, _, err := decodeFile(manSign(t, m)); err != nil || !bytes.HasSuffix(body, []byte("1:vi1ee")) {
		t.Fatalf("a manifest without a year bundle is not version 1 (%v)", err)
	}
	y := manClone(m)
	y.Bundles = append(y.Bundles, manBundle(0, "2026", y.Packs[0], y.Packs[1]))
	y.Bundles[1].Name = "e0-2026"
	sortBundles(y.Bundles)
	b := manSign(t, y)
	got, err := ParseManifest(b, manTestPub())
	if err != nil {
		t.Fatal(err)
	}
	if got.version() != yearsVersion || !got.Bundles[0].Year() || got.Bundles[1].Year() {
		t.Fatalf("version %d, bundles %+v", got.version(), got.Bundles)
	}
	body, _, err := decodeFile(b)
	if err != nil {
		t.Fatal(err)
	}
	bad := manClone(y)
	bad.Bundles[0].Month = "2025"
	if _, err := bad.Sign(manTestKey); err == nil || !strings.Contains(err.Error(), "not in 2025") {
		t.Errorf("year bundle over another year's days: %v", err)
	}
	for _, tc := range []struct {
		name string
		body []byte
		want string
	}{
		{"v1 with a year bundle", bytes.Replace(body, []byte("1:vi2ee"), []byte("1:vi1ee"), 1), "version 1, but its bundles make it version 2"},
		{"v3", bytes.Replace(body, []byte("1:vi2ee"), []byte("1:vi3ee"), 1), "manifest version 3: this node reads versions up to 2"},
		{"v99 unreadable", append(bytes.Replace(body, []byte("1:vi2ee"), []byte("1:vi99e"), 1), "7:unknowni1ee"...), "version"},
	} {
		_, err := ParseManifest(manSignRaw(tc.body, manTestKey), manTestPub())
		if !errors.Is(err, ErrManifest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want an ErrManifest with %q", tc.name, err, tc.want)
		}
	}
}
