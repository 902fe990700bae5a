package swarm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mailswarm/archive"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

// testNode is an origin node over a list with history, serving HTTP on
// 127.0.0.1.
type testNode struct {
	a    *archive.Archive
	l    *archive.List
	node *Node
	url  string // http://127.0.0.1:PORT
	now  time.Time
	ln   *capListener // the HTTP listener
}

// startTestNode archives messages over several days of October and
// November 2026 (the open day is 2026-11-23) and starts a node that has
// published them.
func startTestNode(t testing.TB, perDay int) *testNode {
	t.Helper()
	return startTestNodeWith(t, perDay, HTTPLimits{}, nil)
}

// startTestNodeWith is startTestNode with HTTP limits; wrap, when not nil,
// wraps the TCP listener under the node's HTTPListener.
func startTestNodeWith(t testing.TB, perDay int, lim HTTPLimits, wrap func(net.Listener) net.Listener) *testNode {
	t.Helper()
	return startTestNodeOpts(t, perDay, Options{HTTP: lim}, wrap)
}

// startTestNodeOpts is startTestNodeWith with options (WebSeedBase, Now
// and NoSync are set here).
func startTestNodeOpts(t testing.TB, perDay int, opts Options, wrap func(net.Listener) net.Listener) *testNode {
	t.Helper()
	a, l := testList(t)
	n := 1
	for _, d := range []string{"2026-10-30", "2026-10-31", "2026-11-02", "2026-11-23"} {
		var at []time.Time
		for i := range perDay {
			at = append(at, day(d, 0).Add(time.Duration(i)*time.Minute))
		}
		addAt(t, l, n, at...)
		n += perDay
	}
	tn := serveArchiveWrap(t, a, opts, wrap)
	tn.l = l
	return tn
}

func (tn *testNode) manifest(t testing.TB) *Manifest {
	m := tn.node.manifest(tn.node.list("demo"))
	if m == nil {
		t.Fatal("no manifest")
	}
	return m
}

func httpGet(t testing.TB, url string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestHTTP(t *testing.T) {
	tn := startTestNode(t, 3)
	m := tn.manifest(t)
	base := tn.url + "/lists/demo"

	resp, b := httpGet(t, base+"/manifest")
	if resp.StatusCode != 200 || !bytes.Equal(b, m.Bytes()) {
		t.Fatalf("manifest: %s", resp.Status)
	}
	got, err := ParseManifest(b, tn.l.PublicKey())
	if err != nil || got.Seq != m.Seq {
		t.Fatalf("served manifest: %v", err)
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := httpGet(t, base+"/manifest", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %s", resp.Status)
	}
	if resp, _ := httpGet(t, base+"/manifest?after="+strconv.FormatInt(m.Seq, 10)); resp.StatusCode != http.StatusNotModified {
		t.Errorf("after=seq without wait: %s", resp.Status)
	}

	// Key: the list's public key in hex.
	if _, b := httpGet(t, base+"/key"); strings.TrimSpace(string(b)) != fmt.Sprintf("%x", []byte(tn.l.PublicKey())) {
		t.Errorf("key %q", b)
	}

	// Torrents carry the web seed; their infohash is the manifest's.
	p := m.Packs[0]
	resp, b = httpGet(t, base+"/torrents/"+p.File+".torrent")
	if resp.StatusCode != 200 {
		t.Fatalf("torrent: %s", resp.Status)
	}
	mi, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if mi.HashInfoBytes() != p.InfoHash || len(mi.UrlList) != 1 || mi.UrlList[0] != base+"/packs/" {
		t.Errorf("torrent: infohash %s url-list %v", mi.HashInfoBytes(), mi.UrlList)
	}

	// Packs: whole, by range, and as a bundle member.
	want, err := os.ReadFile(filepath.Join(tn.node.list("demo").origin.Dir(), packsDir, p.File))
	if err != nil {
		t.Fatal(err)
	}
	if _, b := httpGet(t, base+"/packs/"+p.File); !bytes.Equal(b, want) {
		t.Error("pack body differs")
	}
	resp, b = httpGet(t, base+"/packs/"+p.File, "Range", "bytes=10-29")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(b, want[10:30]) {
		t.Errorf("range: %s", resp.Status)
	}
	bundle := m.Bundles[0]
	if _, b := httpGet(t, base+"/packs/"+bundle.Name+"/"+bundle.Files[0]); !bytes.Equal(b, want) {
		t.Error("bundle member differs")
	}
	for _, path := range []string{"/packs/nope.pack", "/packs/" + bundle.Name + "/nope.pack", "/packs/..%2fmanifest",
		"/torrents/nope.torrent", "/packs/" + bundle.Name + "/" + m.Packs[len(m.Packs)-1].File} {
		if resp, _ := httpGet(t, base+path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", path, resp.Status)
		}
	}
	if resp, _ := httpGet(t, tn.url+"/lists/other/manifest"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown list: %s", resp.Status)
	}
	for _, q := range []string{"?after=-1", "?after=x", "?after=1&wait=-3", "?after=1&wait=soon"} {
		if resp, b := httpGet(t, base+"/manifest"+q); resp.StatusCode != http.StatusBadRequest || len(b) == 0 {
			t.Errorf("manifest%s: %s, want 400 with a reason", q, resp.Status)
		}
	}
	if resp, _ := httpGet(t, base+"/torrents/"+p.File); resp.StatusCode != http.StatusNotFound {
		t.Errorf("torrent without .torrent: %s", resp.Status)
	}

	// Status: every pack with its torrent URL.
	st, err := tn.node.Status("demo")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Packs) != len(m.Packs) || st.Packs[0].TorrentURL != base+"/torrents/"+p.File+".torrent" ||
		st.Packs[0].SHA256 != fmt.Sprintf("%x", p.SHA256) || !st.Seeding {
		t.Errorf("status %+v", st)
	}
}

// A long-poll for "newer than seq N" returns as soon as the next manifest
// is published.
func TestManifestLongPoll(t *testing.T) {
	tn := startTestNode(t, 2)
	seq := tn.manifest(t).Seq
	type result struct {
		status int
		body   []byte
		took   time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		resp, err := http.Get(fmt.Sprintf("%s/lists/demo/manifest?after=%d&wait=30", tn.url, seq))
		if err != nil {
			done <- result{}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, b, time.Since(start)}
	}()
	time.Sleep(200 * time.Millisecond)
	addAt(t, tn.l, 100, tn.now.Add(time.Minute))
	tn.now = tn.now.Add(2 * time.Minute)
	if _, err := tn.node.Publish("demo"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.status != 200 {
		t.Fatalf("long poll: status %d", r.status)
	}
	m, err := ParseManifest(r.body, tn.l.PublicKey())
	if err != nil || m.Seq != seq+1 {
		t.Fatalf("long poll got seq %v: %v", m, err)
	}
	if r.took > 20*time.Second {
		t.Errorf("long poll took %v", r.took)
	}
	// A poll that times out says 304.
	resp, _ := httpGet(t, fmt.Sprintf("%s/lists/demo/manifest?after=%d&wait=0.2", tn.url, m.Seq))
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("timed-out poll: %s", resp.Status)
	}
}

// testClientConfig is an anacrolix client on 127.0.0.1 (TCP only, no
// DHT, PEX or port mapping) keeping its data in dir.
func testClientConfig(dir string) *torrent.ClientConfig {
	cfg := torrent.NewDefaultClientConfig()
	cfg.DisableUTP = true
	cfg.NoDHT = true
	cfg.DisablePEX = true
	cfg.DisableIPv6 = true
	cfg.ListenHost = func(string) string { return "127.0.0.1" }
	cfg.ListenPort = 0
	cfg.DataDir = dir
	cfg.NoDefaultPortForwarding = true
	return cfg
}

// leecher is an anacrolix client on 127.0.0.1 with its own directory.
func leecher(t testing.TB) (*torrent.Client, string) {
	dir := t.TempDir()
	c, err := torrent.NewClient(testClientConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, dir
}

// fetchTorrent gets a .torrent from the node's HTTP.
func fetchTorrent(t testing.TB, tn *testNode, name string) *metainfo.MetaInfo {
	resp, b := httpGet(t, tn.url+"/lists/demo/torrents/"+name+".torrent")
	if resp.StatusCode != 200 {
		t.Fatalf("torrent %s: %s", name, resp.Status)
	}
	mi, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return mi
}

// waitComplete waits for t to have all its data.
func waitComplete(tb testing.TB, t *torrent.Torrent, limit time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), limit)
	defer cancel()
	<-t.GotInfo()
	t.DownloadAll()
	select {
	case <-t.Complete().On():
	case <-ctx.Done():
		tb.Fatalf("%s: %d of %d bytes missing after %v", t.Name(), t.BytesMissing(), t.Length(), limit)
	}
}

// Our seeder serves a day pack and a month bundle to another BitTorrent
// client over TCP (web seeds removed: peers only); the bytes are the
// origin's and the pack verifies.
func TestSeedToPeer(t *testing.T) {
	tn := startTestNode(t, 40)
	m := tn.manifest(t)
	c, dir := leecher(t)
	seeder := tn.node.Addr().(*net.TCPAddr)
	for _, name := range []string{m.Packs[0].File, m.Bundles[0].Name} {
		mi := fetchTorrent(t, tn, name)
		mi.UrlList = nil
		tt, err := c.AddTorrent(mi)
		if err != nil {
			t.Fatal(err)
		}
		tt.AddPeers([]torrent.PeerInfo{{Addr: seeder, Trusted: true}})
		waitComplete(t, tt, 60*time.Second)
	}
	for _, p := range []string{m.Packs[0].File, filepath.Join(m.Bundles[0].Name, m.Bundles[0].Files[0]),
		filepath.Join(m.Bundles[0].Name, m.Bundles[0].Files[1])} {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := archive.VerifyPack(got); err != nil {
			t.Errorf("%s: %v", p, err)
		}
		want, _ := os.ReadFile(filepath.Join(tn.node.list("demo").origin.Dir(), packsDir, filepath.Base(p)))
		if sha256.Sum256(got) != sha256.Sum256(want) {
			t.Errorf("%s differs from the origin's", p)
		}
	}
	st, _ := tn.node.Status("demo")
	if st.BytesUp < m.Packs[0].Size {
		t.Errorf("status bytes_up %d after a %d-byte pack went out", st.BytesUp, m.Packs[0].Size)
	}
}

// With no peer at all, a client fetches a day pack and a bundle from the
// torrents' web seed (BEP 19) alone.
func TestWebSeedOnly(t *testing.T) {
	tn := startTestNode(t, 20)
	tn.node.Close() // no BitTorrent peer anywhere: HTTP only
	m := tn.manifest(t)
	c, dir := leecher(t)
	for _, name := range []string{m.Packs[1].File, m.Bundles[0].Name} {
		mi := fetchTorrent(t, tn, name)
		tt, err := c.AddTorrent(mi)
		if err != nil {
			t.Fatal(err)
		}
		waitComplete(t, tt, 60*time.Second)
		if s := tt.Stats(); s.WebSeeds.BytesReadUsefulData.Int64() == 0 || s.ActivePeers != 0 {
			t.Errorf("%s: %d bytes from web seeds, %d peers", name, s.WebSeeds.BytesReadUsefulData.Int64(), s.ActivePeers)
		}
	}
	got, err := os.ReadFile(filepath.Join(dir, m.Packs[1].File))
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != m.Packs[1].SHA256 {
		t.Error("web-seeded pack differs")
	}
	if _, err := archive.VerifyPack(got); err != nil {
		t.Error(err)
	}
}

// runTestNode runs a node over a new list with the given slice interval
// and a clock that reads 2026-11-23 10:00 until setNow moves it; the node
// stops when the test ends.
func runTestNode(t *testing.T, interval time.Duration) (node *Node, l *archive.List, setNow func(time.Time)) {
	t.Helper()
	a, l := testList(t)
	var mu sync.Mutex
	now := day("2026-11-23", 10)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	node, err := NewNode(a, &Options{SliceInterval: interval, Now: clock, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { node.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; node.Close() })
	return node, l, func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
}

// Run cuts a slice at the next tick after new mail, publishes nothing
// while nothing happens, and seals the day when the clock passes
// midnight, with no new mail.
func TestRunLoop(t *testing.T) {
	node, l, setNow := runTestNode(t, 20*time.Millisecond)

	waitFor := func(what string, ok func(m *Manifest) bool) *Manifest {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if m := node.manifest(node.list("demo")); m != nil && ok(m) {
				return m
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s: not published", what)
		return nil
	}
	addAt(t, l, 1, day("2026-11-23", 10))
	m := waitFor("first slice", func(m *Manifest) bool { return len(m.Packs) == 1 })
	if m.Packs[0].Kind != KindSlice || m.Seq != 1 {
		t.Fatalf("%+v", m.Packs)
	}
	time.Sleep(200 * time.Millisecond) // ten ticks with nothing new
	if m := node.manifest(node.list("demo")); m.Seq != 1 {
		t.Fatalf("published seq %d with nothing new", m.Seq)
	}
	addAt(t, l, 2, day("2026-11-23", 11))
	waitFor("second slice", func(m *Manifest) bool { return len(m.Packs) == 2 })
	if node.Torrent("demo", "demo-e0-2026-11-23-s00002.pack") == nil {
		t.Error("the new slice is not seeded")
	}
	setNow(day("2026-11-24", 0).Add(time.Second))
	m = waitFor("day pack", func(m *Manifest) bool { return len(m.Packs) == 1 && m.Packs[0].Kind == KindDay })
	if m.Packs[0].Commits != 2 || node.Torrent("demo", "demo-e0-2026-11-23-s00001.pack") != nil ||
		node.Torrent("demo", "demo-e0-2026-11-23.pack") == nil {
		t.Errorf("after sealing: %+v; retired slices still seeded or the day pack not", m.Packs)
	}
}

// A list created while the node runs (an import, keygen) is published and
// served from the next tick; a list without its private key (a mirror's)
// is left alone.
func TestNodeAdoptsNewLists(t *testing.T) {
	tn := startTestNode(t, 1)
	late, err := tn.a.Create("late", "late@example.org")
	if err != nil {
		t.Fatal(err)
	}
	addAt(t, late, 1, day("2026-11-20", 1))
	mirror, err := tn.a.Create("mirror", "")
	if err != nil {
		t.Fatal(err)
	}
	addAt(t, mirror, 1, day("2026-11-20", 1))
	if err := os.Remove(filepath.Join(mirror.Dir(), "list.key")); err != nil {
		t.Fatal(err)
	}
	tn.node.PublishAll()
	resp, b := httpGet(t, tn.url+"/lists/late/manifest")
	if resp.StatusCode != 200 {
		t.Fatalf("new list's manifest: %s", resp.Status)
	}
	if m, err := ParseManifest(b, late.PublicKey()); err != nil || len(m.Packs) != 1 || m.Packs[0].File != "late-e0-2026-11-20.pack" {
		t.Fatalf("new list's manifest: %v", err)
	}
	if resp, _ := httpGet(t, tn.url+"/lists/mirror/manifest"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a list without its key: %s", resp.Status)
	}
	if _, err := os.Stat(filepath.Join(mirror.Dir(), "swarm", "manifest")); !os.IsNotExist(err) {
		t.Errorf("a manifest was written for a list without its key (%v)", err)
	}
}

// A quiet list's first post is cut within about a second, not at the next
// tick; more mail right after it waits for the interval.
func TestQuietListFirstPostSoon(t *testing.T) {
	node, l, setNow := runTestNode(t, time.Hour)
	time.Sleep(100 * time.Millisecond) // the start-up publish
	setNow(day("2026-11-23", 12))      // quiet for two intervals

	start := time.Now()
	addAt(t, l, 1, day("2026-11-23", 12))
	for node.manifest(node.list("demo")) == nil {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the first post of a quiet list was not cut within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("cut %v after the post", time.Since(start).Round(time.Millisecond))
	addAt(t, l, 2, day("2026-11-23", 12).Add(time.Second))
	time.Sleep(3 * sliceLinger)
	if m := node.manifest(node.list("demo")); m.Seq != 1 {
		t.Errorf("more mail right after was cut at once (seq %d), not at the interval", m.Seq)
	}
}
