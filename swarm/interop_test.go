package swarm

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailswarm/archive"
	"mailswarm/internal/peertest"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

// Interop with real BitTorrent clients (libtorrent, aria2, transmission)
// over TCP on 127.0.0.1. Torrents are written without their web seed so
// that every byte moves between peers.

const (
	// interopPerDay messages a day make day packs of several 16 KiB
	// pieces.
	interopPerDay = 300
	// interopLimit bounds each download.
	interopLimit = 120 * time.Second
)

// interopNode starts a test node with packs of several pieces and returns
// it with its manifest and its BitTorrent address.
func interopNode(t *testing.T) (*testNode, *Manifest, string) {
	t.Helper()
	tn := startTestNode(t, interopPerDay)
	m := tn.manifest(t)
	if len(m.Packs) < 3 || len(m.Bundles) == 0 {
		t.Fatalf("manifest has %d packs and %d bundles, want 3 day packs and a bundle", len(m.Packs), len(m.Bundles))
	}
	for _, p := range m.Packs[:3] {
		if p.Kind != KindDay {
			t.Fatalf("pack %s is a %v, want the day packs first", p.File, p.Kind)
		}
		if pieces := (p.Size + PieceLength(p.Size) - 1) / PieceLength(p.Size); pieces < 4 {
			t.Fatalf("day pack %s: %d bytes, %d pieces: want at least 4", p.File, p.Size, pieces)
		}
	}
	return tn, m, tn.node.Addr().String()
}

// originPath is the origin's copy of a pack file.
func originPath(tn *testNode, file string) string {
	return filepath.Join(originPacks(tn), file)
}

// originPacks is the directory of the origin's pack files.
func originPacks(tn *testNode) string {
	return filepath.Join(tn.node.list("demo").origin.Dir(), packsDir)
}

// peerTorrent writes the node's torrent for name to a file without its
// url-list (peers only) and, if announce is not empty, with that tracker.
func peerTorrent(t *testing.T, tn *testNode, name, announce string) string {
	t.Helper()
	return writeTorrent(t, fetchTorrent(t, tn, name), name, announce)
}

// writeTorrent writes mi to a file without url-list, announcing to
// announce if it is not empty.
func writeTorrent(t *testing.T, mi *metainfo.MetaInfo, name, announce string) string {
	t.Helper()
	out := metainfo.MetaInfo{InfoBytes: mi.InfoBytes, Announce: announce}
	var b bytes.Buffer
	if err := out.Write(&b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name+".torrent")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// checkDownloaded compares a downloaded pack file with its copy in the
// directory packs (the origin's) and verifies it with archive.VerifyPack
// and git index-pack --strict.
func checkDownloaded(t *testing.T, packs string, m *Manifest, got string) {
	t.Helper()
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatalf("downloaded: %v", err)
	}
	want, err := os.ReadFile(filepath.Join(packs, filepath.Base(got)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Errorf("%s: %d bytes differ from the origin's %d", got, len(b), len(want))
		return
	}
	if _, err := archive.VerifyPack(b); err != nil {
		t.Errorf("%s: VerifyPack: %v", got, err)
	}
	indexPackStrict(t, packs, m, got)
}

// indexPackStrict has git index-pack --strict take the pack file at path
// into a bare repository holding the packs (from the directory packs)
// before it on its epoch's chain: a day pack's first commit has its parent in the day
// before, and --strict wants every object a pack refers to. (Outside a
// repository, git 2.39's index-pack --strict crashes on such a pack.)
func indexPackStrict(t *testing.T, packs string, m *Manifest, path string) {
	t.Helper()
	repo := t.TempDir()
	git := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
		cmd.WaitDelay = 5 * time.Second
		if stdin != "" {
			f, err := os.Open(stdin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd.Stdin = f
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s < %s: %v\n%s", strings.Join(args, " "), filepath.Base(stdin), err, out)
		}
	}
	git("", "init", "-q", "--bare", ".")
	file := filepath.Base(path)
	i := 0
	for i < len(m.Packs) && m.Packs[i].File != file {
		i++
	}
	if i == len(m.Packs) {
		t.Fatalf("%s is not in the manifest", file)
	}
	for _, p := range m.Packs[:i] {
		if p.Epoch == m.Packs[i].Epoch {
			git(filepath.Join(packs, p.File), "index-pack", "--strict", "--stdin")
		}
	}
	git(path, "index-pack", "--strict", "--stdin")
}

// bundleFiles are the paths of a bundle's member files under a client's
// download directory: NAME/FILE.
func bundleFiles(dir string, b BundleEntry) []string {
	var out []string
	for _, f := range b.Files {
		out = append(out, filepath.Join(dir, b.Name, f))
	}
	return out
}

// checkUploaded checks that the node's status counts at least n bytes
// sent to peers: the client had them from our seeder.
func checkUploaded(t *testing.T, tn *testNode, n int64) {
	t.Helper()
	st, err := tn.node.Status("demo")
	if err != nil {
		t.Fatal(err)
	}
	if st.BytesUp < n {
		t.Errorf("status bytes_up %d, want at least %d", st.BytesUp, n)
	}
}

// libtorrent fetches a day pack and the month bundle from our seeder,
// handed its address (connect_peer).
func TestInteropLibtorrentFromUs(t *testing.T) {
	peertest.NeedLibtorrent(t)
	peertest.Need(t, "git")
	tn, m, seeder := interopNode(t)
	out := t.TempDir()
	for _, name := range []string{m.Packs[0].File, m.Bundles[0].Name} {
		start := time.Now()
		peertest.LTGet(t, peerTorrent(t, tn, name, ""), seeder, out, interopLimit)
		t.Logf("libtorrent got %s in %v", name, time.Since(start).Round(time.Millisecond))
	}
	for _, p := range append([]string{filepath.Join(out, m.Packs[0].File)}, bundleFiles(out, m.Bundles[0])...) {
		checkDownloaded(t, originPacks(tn), m, p)
	}
	checkUploaded(t, tn, m.Packs[0].Size+m.Bundles[0].Size)
}

// aria2 fetches a day pack and the month bundle from our seeder, which a
// tracker names (aria2 cannot be handed a peer).
func TestInteropAria2FromUs(t *testing.T) {
	peertest.Need(t, "aria2c", "git")
	tn, m, seeder := interopNode(t)
	tracker := peertest.StaticTracker(t, seeder)
	out := t.TempDir()
	for _, name := range []string{m.Packs[1].File, m.Bundles[0].Name} {
		start := time.Now()
		peertest.Aria2Get(t, peerTorrent(t, tn, name, tracker), out, interopLimit)
		t.Logf("aria2 got %s in %v", name, time.Since(start).Round(time.Millisecond))
	}
	for _, p := range append([]string{filepath.Join(out, m.Packs[1].File)}, bundleFiles(out, m.Bundles[0])...) {
		checkDownloaded(t, originPacks(tn), m, p)
	}
	checkUploaded(t, tn, m.Packs[1].Size+m.Bundles[0].Size)
}

// transmission fetches a day pack from our seeder. It takes loopback
// peers only as incoming connections, so the node dials it.
func TestInteropTransmissionFromUs(t *testing.T) {
	peertest.Need(t, "transmission-daemon", "transmission-remote", "git")
	tn, m, seeder := interopNode(t)
	file := m.Packs[2].File
	tracker := peertest.StaticTracker(t, seeder) // stopped after transmission, which says goodbye to it
	tr := peertest.TransmissionStart(t)
	tr.Add(peerTorrent(t, tn, file, tracker))
	// Transmission refuses connections while it checks its (empty)
	// copy: the node dials again until transmission is done.
	dial := func() {
		if err := tn.node.Dial("demo", file, tr.PeerAddr); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	dial()
	if err := tr.WaitDone(interopLimit, dial); err != nil {
		t.Fatal(err)
	}
	t.Logf("transmission got %s in %v", file, time.Since(start).Round(time.Millisecond))
	// Transmission writes its cache out when a torrent stops; WaitDone
	// stopped it, but give the write a moment.
	got := filepath.Join(tr.DownloadDir, file)
	want, _ := os.ReadFile(originPath(tn, file))
	deadline := time.Now().Add(10 * time.Second)
	for b, _ := os.ReadFile(got); !bytes.Equal(b, want) && time.Now().Before(deadline); b, _ = os.ReadFile(got) {
		time.Sleep(100 * time.Millisecond)
	}
	checkDownloaded(t, originPacks(tn), m, got)
	checkUploaded(t, tn, m.Packs[2].Size)
}

// An anacrolix client (as our nodes' readers use) fetches a day pack that
// libtorrent seeds from its own copy, by the recipe's torrent.
func TestInteropFromLibtorrent(t *testing.T) {
	peertest.NeedLibtorrent(t)
	peertest.Need(t, "git")
	tn, m, _ := interopNode(t)
	p := m.Packs[1]
	src := t.TempDir()
	b, err := os.ReadFile(originPath(tn, p.File))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, p.File), b, 0o644); err != nil {
		t.Fatal(err)
	}
	mi, err := TorrentFor(filepath.Join(src, p.File))
	if err != nil {
		t.Fatal(err)
	}
	if mi.HashInfoBytes() != p.InfoHash {
		t.Fatalf("recipe infohash %s, manifest says %s", mi.HashInfoBytes(), p.InfoHash)
	}
	lt := peertest.LTSeed(t, writeTorrent(t, mi, p.File, ""), src)
	ltAddr, err := net.ResolveTCPAddr("tcp", lt)
	if err != nil {
		t.Fatal(err)
	}
	c, dir := leecher(t)
	tt, err := c.AddTorrent(mi)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tt.AddPeers([]torrent.PeerInfo{{Addr: ltAddr, Trusted: true}})
	waitComplete(t, tt, interopLimit)
	t.Logf("anacrolix got %s from libtorrent in %v", p.File, time.Since(start).Round(time.Millisecond))
	if s := tt.Stats(); s.BytesReadUsefulData.Int64() < p.Size {
		n := s.BytesReadUsefulData.Int64()
		t.Errorf("%d useful bytes from peers, want %d", n, p.Size)
	}
	checkDownloaded(t, originPacks(tn), m, filepath.Join(dir, p.File))
}

// aria2 fetches a day pack and the month bundle from the torrents' web
// seed alone: our BitTorrent client is closed and the torrents name no
// tracker, so every byte comes over HTTP (BEP 19, Range requests; for the
// bundle, /packs/BUNDLE/FILE).
func TestInteropAria2WebSeedOnly(t *testing.T) {
	peertest.Need(t, "aria2c", "git")
	tn, m, _ := interopNode(t)
	tn.node.Close() // no peer anywhere
	out := t.TempDir()
	for _, name := range []string{m.Packs[0].File, m.Bundles[0].Name} {
		mi := fetchTorrent(t, tn, name)
		if len(mi.UrlList) != 1 {
			t.Fatalf("%s: url-list %v", name, mi.UrlList)
		}
		var b bytes.Buffer
		if err := mi.Write(&b); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), name+".torrent")
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		peertest.Aria2Get(t, p, out, interopLimit)
		t.Logf("aria2 got %s from the web seed in %v", name, time.Since(start).Round(time.Millisecond))
	}
	for _, p := range append([]string{filepath.Join(out, m.Packs[0].File)}, bundleFiles(out, m.Bundles[0])...) {
		checkDownloaded(t, originPacks(tn), m, p)
	}
}
