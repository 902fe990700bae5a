package swarm

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"mailswarm/archive"
)

// startHistoryNode is an origin node (HTTP on 127.0.0.1) over a list with
// one message a day for the days before 2026-11-23 and one on that day,
// published at its time (opts.Now, else 2026-11-23 12:00).
func startHistoryNode(t testing.TB, days int, opts Options) *testNode {
	t.Helper()
	a, l := testList(t)
	first := day("2026-11-23", 0).AddDate(0, 0, -days)
	var at []time.Time
	for i := range days + 1 {
		at = append(at, first.AddDate(0, 0, i).Add(time.Hour))
	}
	addAt(t, l, 1, at...)
	tn := serveArchive(t, a, opts)
	tn.l = l
	return tn
}

// serveArchive starts a node over a (HTTP on 127.0.0.1) and publishes
// demo at its time (opts.Now, else 2026-11-23 12:00).
func serveArchive(t testing.TB, a *archive.Archive, opts Options) *testNode {
	t.Helper()
	return serveArchiveWrap(t, a, opts, nil)
}

// serveArchiveWrap is serveArchive with wrap, when not nil, wrapping the
// TCP listener under the node's HTTPListener.
func serveArchiveWrap(t testing.TB, a *archive.Archive, opts Options, wrap func(net.Listener) net.Listener) *testNode {
	t.Helper()
	tn := &testNode{a: a, now: day("2026-11-23", 12)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tn.url = "http://" + ln.Addr().String()
	opts.WebSeedBase, opts.NoSync = tn.url, true
	if opts.Now == nil {
		opts.Now = func() time.Time { return tn.now }
	}
	tn.node, err = NewNode(a, &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.node.Close() })
	if wrap != nil {
		ln = wrap(ln)
	}
	tn.ln = tn.node.HTTPListener(ln).(*capListener)
	srv := &httptest.Server{Listener: tn.ln, Config: tn.node.HTTPServer(t.Context())}
	srv.Start()
	t.Cleanup(srv.Close)
	if _, err := tn.node.Publish("demo"); err != nil {
		t.Fatal(err)
	}
	return tn
}

// TestManifestPatchHTTP: a client naming the manifest it holds (have=)
// gets a patch from it; one naming a manifest the node never served, or
// none, gets the whole file; a malformed have is a 400.
func TestManifestPatchHTTP(t *testing.T) {
	tn := startHistoryNode(t, 60, Options{})
	m1 := tn.manifest(t)
	h1 := m1.Hash()
	addAt(t, tn.l, 1000, tn.now.Add(time.Minute))
	tn.now = tn.now.Add(2 * time.Minute)
	if _, err := tn.node.Publish("demo"); err != nil {
		t.Fatal(err)
	}
	m2 := tn.manifest(t)
	if m2.Seq != m1.Seq+1 {
		t.Fatalf("seq %d after seq %d", m2.Seq, m1.Seq)
	}
	u := fmt.Sprintf("%s/lists/demo/manifest?after=%d", tn.url, m1.Seq)
	for range 2 { // the second answer comes from the cache
		resp, b := httpGet(t, u+"&have="+hex.EncodeToString(h1[:]))
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != patchContentType {
			t.Fatalf("with have: %s %s", resp.Status, ct)
		}
		p, err := DecodePatch(b)
		if err != nil {
			t.Fatal(err)
		}
		file, err := p.Apply(m1)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(file, m2.Bytes()) {
			t.Fatal("the served patch does not rebuild the served manifest")
		}
		t.Logf("patch %d bytes, manifest %d (%d days)", len(b), len(m2.Bytes()), 60)
		if len(b) > 2048 {
			t.Errorf("patch for one slice: %d bytes, more than 2 KiB", len(b))
		}
	}
	for _, q := range []string{"", "&have=" + hex.EncodeToString(make([]byte, 32))} {
		resp, b := httpGet(t, u+q)
		if resp.Header.Get("Content-Type") != "application/x-mailswarm-manifest" || !bytes.Equal(b, m2.Bytes()) {
			t.Errorf("have %q: %s %q, want the whole manifest", q, resp.Status, resp.Header.Get("Content-Type"))
		}
	}
	for _, q := range []string{"&have=zz", "&have=" + hex.EncodeToString(make([]byte, 31))} {
		if resp, _ := httpGet(t, u+q); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("have %q: %s, want 400", q, resp.Status)
		}
	}
}

// TestFollowPatches: a mirror long-polling the origin, and a mirror of
// that mirror, take each new slice of a list with history as a patch of
// at most 2 KiB, and end with the origin's export.
func TestFollowPatches(t *testing.T) {
	clk := &clock{now: day("2026-11-23", 12)}
	tn := startHistoryNode(t, 60, Options{SliceInterval: 200 * time.Millisecond, Now: clk.Now})
	m1 := startTestMirror(t, tn.l.PublicKey(), clk.Now, tn.url)
	m2 := startTestMirror(t, tn.l.PublicKey(), clk.Now, m1.url)
	runNode(t, tn.node)
	runNode(t, m1.node)
	runNode(t, m2.node)
	same := func() bool {
		want := exportOf(t, tn.a, "demo")
		return bytes.Equal(want, exportOf(t, m1.a, "demo")) && bytes.Equal(want, exportOf(t, m2.a, "demo"))
	}
	waitFor(t, 30*time.Second, "the first sync", same)
	st1, _ := m1.node.FollowStatus("demo")
	st2, _ := m2.node.FollowStatus("demo")
	const n = 4
	for i := range n {
		addAt(t, tn.l, 1000+i, clk.Now().Add(time.Duration(i)*time.Second))
		waitFor(t, 20*time.Second, "slice "+strconv.Itoa(i), func() bool {
			s1, _ := m1.node.FollowStatus("demo")
			s2, _ := m2.node.FollowStatus("demo")
			seq := tn.manifest(t).Seq
			return s1.Seq == seq && s2.Seq == seq && same()
		})
	}
	for name, st := range map[string][2]FollowStatus{"mirror": {st1, mustFollowStatus(t, m1)}, "mirror of mirror": {st2, mustFollowStatus(t, m2)}} {
		before, after := st[0], st[1]
		fetched := after.ManifestsFetched - before.ManifestsFetched
		patches := after.ManifestPatches - before.ManifestPatches
		read := after.ManifestBytes - before.ManifestBytes
		t.Logf("%s: %d manifests in %d bytes, %d as patches (%d bytes a manifest; the whole is %d)",
			name, fetched, read, patches, read/int64(max(fetched, 1)), len(tn.manifest(t).Bytes()))
		if fetched < 1 || patches != fetched {
			t.Errorf("%s: %d of %d manifests came as patches, want all", name, patches, fetched)
		}
		if fetched > 0 && read/int64(fetched) > 2048 {
			t.Errorf("%s: %d bytes a manifest, more than 2 KiB", name, read/int64(fetched))
		}
	}
}

func mustFollowStatus(t testing.TB, m *testMirror) FollowStatus {
	t.Helper()
	st, err := m.node.FollowStatus("demo")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestFollowHostilePatch: a source answering with a patch that does not
// rebuild the signed manifest (a bad signature, another base, one that
// drops a sealed day, a Content-Length over the cap) is refused with a
// penalty and a WARN naming it; the honest source then brings the mirror
// up to date.
func TestFollowHostilePatch(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		edit       func(p *ManifestPatch, old *Manifest)
		raw        func(b []byte) []byte
	}{
		{name: "bad signature", want: "bad signature", edit: func(p *ManifestPatch, _ *Manifest) { p.Sig[0] ^= 1 }},
		{name: "another base", want: "the manifest held is", edit: func(p *ManifestPatch, _ *Manifest) { p.Base[0] ^= 1 }},
		{name: "sealed day dropped", want: "bad signature", edit: func(p *ManifestPatch, old *Manifest) {
			p.Drop = append(p.Drop, old.Packs[0].File)
			slices.Sort(p.Drop)
		}},
		{name: "oversized", want: "oversized patch", raw: func(b []byte) []byte { return append(b, make([]byte, maxPatchSize)...) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn := startTestNode(t, 2)
			r := newHostileRun(t, tn)
			r.completes(t, 30*time.Second)
			old := tn.manifest(t)
			addAt(t, tn.l, 100, tn.now.Add(time.Minute))
			tn.now = tn.now.Add(2 * time.Minute)
			if _, err := tn.node.Publish("demo"); err != nil {
				t.Fatal(err)
			}
			p, err := DiffManifest(old, tn.manifest(t))
			if err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				tc.edit(p, old)
			}
			b := p.Encode()
			if tc.raw != nil {
				b = tc.raw(b)
			}
			r.h.set(func(h *hostile) {
				h.manifest = func(w http.ResponseWriter, r *http.Request, after int64) {
					w.Header().Set("Content-Type", patchContentType)
					w.Header().Set("Content-Length", strconv.Itoa(len(b)))
					w.Write(b)
				}
			})
			r.refused(t, 20*time.Second, tc.want, "manifest refused")
			r.completes(t, 30*time.Second)
		})
	}
}
