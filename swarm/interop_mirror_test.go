package swarm

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"

	"github.com/anacrolix/torrent/metainfo"
)

// Real clients fetch from a mirror, not the origin: the mirror synced
// with SyncOnce, then the origin's BitTorrent client and HTTP listener
// are closed, so every byte a client gets comes from the mirror. The
// .torrent files come from the mirror's HTTP.

// interopMirror starts an interop origin and a mirror of it, syncs the
// mirror and stops the origin. It returns the origin (for its pack files,
// the reference bytes), the mirror and the manifest.
func interopMirror(t *testing.T) (*testNode, *testMirror, *Manifest) {
	t.Helper()
	tn, m, _ := interopNode(t)
	tm := startTestMirror(t, tn.l.PublicKey(), func() time.Time { return tn.now }, tn.url)
	if err := tm.node.SyncOnce(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	tn.node.Close()
	tn.ln.Close()
	http.DefaultClient.CloseIdleConnections()
	if resp, err := http.Get(tn.url + "/lists/demo/manifest"); err == nil {
		resp.Body.Close()
		t.Fatalf("the origin still answers over HTTP: %s", resp.Status)
	}
	return tn, tm, m
}

// mirrorTorrent fetches the mirror's .torrent of name over its HTTP.
func mirrorTorrent(t *testing.T, tm *testMirror, name string) *metainfo.MetaInfo {
	t.Helper()
	resp, b := httpGet(t, tm.url+"/lists/demo/torrents/"+name+".torrent")
	if resp.StatusCode != 200 {
		t.Fatalf("mirror torrent %s: %s", name, resp.Status)
	}
	mi, err := metainfo.Load(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return mi
}

// mirrorPeerTorrent is the mirror's torrent for name, written without its
// url-list (peers only) and announcing to announce if not empty; its
// infohash is the manifest's.
func mirrorPeerTorrent(t *testing.T, tm *testMirror, m *Manifest, name, announce string) string {
	t.Helper()
	mi := mirrorTorrent(t, tm, name)
	if want := manifestInfoHash(t, m, name); mi.HashInfoBytes() != want {
		t.Fatalf("mirror's %s.torrent: infohash %s, manifest says %s", name, mi.HashInfoBytes(), want)
	}
	return writeTorrent(t, mi, name, announce)
}

// manifestInfoHash is the manifest's infohash of a pack or bundle.
func manifestInfoHash(t *testing.T, m *Manifest, name string) metainfo.Hash {
	t.Helper()
	for _, p := range m.Packs {
		if p.File == name {
			return p.InfoHash
		}
	}
	for _, b := range m.Bundles {
		if b.Name == name {
			return b.InfoHash
		}
	}
	t.Fatalf("%s is not in the manifest", name)
	return metainfo.Hash{}
}

// mirrorUploaded is the mirror's count of bytes sent to peers.
func mirrorUploaded(t *testing.T, tm *testMirror) int64 {
	t.Helper()
	st, err := tm.node.Status("demo")
	if err != nil {
		t.Fatal(err)
	}
	return st.BytesUp
}

// logRate logs a client's download of size bytes that took d.
func logRate(t *testing.T, client, name string, size int64, d time.Duration) {
	t.Helper()
	t.Logf("%s got %s (%d bytes) from the mirror in %v: %.0f KiB/s", client, name, size,
		d.Round(time.Millisecond), float64(size)/(1<<10)/d.Seconds())
}

// mirrorDownloads are the day pack and the month bundle the clients get:
// a day pack of the open month (the mirror took it as a day pack) and the
// closed month's bundle.
func mirrorDownloads(t *testing.T, m *Manifest) (PackEntry, BundleEntry) {
	t.Helper()
	for _, p := range m.Packs {
		if p.Kind == KindDay && !strings.HasPrefix(p.Day, m.Bundles[0].Month) {
			return p, m.Bundles[0]
		}
	}
	t.Fatal("no day pack outside the bundled month")
	return PackEntry{}, BundleEntry{}
}

// checkFromMirror checks every downloaded file (under out) against the
// origin's bytes, VerifyPack and git index-pack --strict.
func checkFromMirror(t *testing.T, tn *testNode, m *Manifest, out string, p PackEntry, b BundleEntry) {
	t.Helper()
	files := append([]string{filepath.Join(out, p.File)}, bundleFiles(out, b)...)
	for _, f := range files {
		checkDownloaded(t, originPacks(tn), m, f)
	}
}

// libtorrent fetches a day pack and a month bundle from the mirror's
// seeder alone (connect_peer to the mirror; the origin is closed).
func TestInteropLibtorrentFromMirror(t *testing.T) {
	peertest.NeedLibtorrent(t)
	peertest.Need(t, "git")
	tn, tm, m := interopMirror(t)
	p, b := mirrorDownloads(t, m)
	seeder := tm.node.Addr().String()
	out := t.TempDir()
	up0 := mirrorUploaded(t, tm)
	for _, it := range []struct {
		name string
		size int64
	}{{p.File, p.Size}, {b.Name, b.Size}} {
		start := time.Now()
		peertest.LTGet(t, mirrorPeerTorrent(t, tm, m, it.name, ""), seeder, out, interopLimit)
		logRate(t, "libtorrent", it.name, it.size, time.Since(start))
	}
	checkFromMirror(t, tn, m, out, p, b)
	if up := mirrorUploaded(t, tm) - up0; up < p.Size+b.Size {
		t.Errorf("mirror sent %d bytes to peers, want at least %d", up, p.Size+b.Size)
	}
}

// aria2 fetches a day pack and a month bundle from the mirror's seeder,
// which a tracker names (the only peer; the origin is closed).
func TestInteropAria2FromMirror(t *testing.T) {
	peertest.Need(t, "aria2c", "git")
	tn, tm, m := interopMirror(t)
	p, b := mirrorDownloads(t, m)
	tracker := peertest.StaticTracker(t, tm.node.Addr().String())
	out := t.TempDir()
	up0 := mirrorUploaded(t, tm)
	for _, it := range []struct {
		name string
		size int64
	}{{p.File, p.Size}, {b.Name, b.Size}} {
		start := time.Now()
		peertest.Aria2Get(t, mirrorPeerTorrent(t, tm, m, it.name, tracker), out, interopLimit)
		logRate(t, "aria2", it.name, it.size, time.Since(start))
	}
	checkFromMirror(t, tn, m, out, p, b)
	if up := mirrorUploaded(t, tm) - up0; up < p.Size+b.Size {
		t.Errorf("mirror sent %d bytes to peers, want at least %d", up, p.Size+b.Size)
	}
}

// aria2 fetches a day pack and a month bundle from the mirror's web seed
// alone: the mirror's torrents (from its HTTP) name its own pack URLs, its
// BitTorrent client and the origin are closed, so every byte is a Range
// GET to the mirror's HTTP.
func TestInteropAria2WebSeedFromMirror(t *testing.T) {
	peertest.Need(t, "aria2c", "git")
	tn, tm, m := interopMirror(t)
	p, b := mirrorDownloads(t, m)
	tm.node.Close() // no peer anywhere
	out := t.TempDir()
	for _, it := range []struct {
		name string
		size int64
	}{{p.File, p.Size}, {b.Name, b.Size}} {
		mi := mirrorTorrent(t, tm, it.name)
		if mi.HashInfoBytes() != manifestInfoHash(t, m, it.name) {
			t.Fatalf("mirror's %s.torrent: infohash differs from the manifest's", it.name)
		}
		if want := tm.url + "/lists/demo/packs/"; !slices.Contains(mi.UrlList, want) {
			t.Fatalf("%s: url-list %v, want the mirror's %s", it.name, mi.UrlList, want)
		}
		var buf bytes.Buffer
		if err := mi.Write(&buf); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), it.name+".torrent")
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		peertest.Aria2Get(t, path, out, interopLimit)
		logRate(t, "aria2 (web seed)", it.name, it.size, time.Since(start))
	}
	checkFromMirror(t, tn, m, out, p, b)
}
