package swarm

import (
	"crypto/sha256"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mailswarm/internal/peertest"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker/udp"
)

// Real clients given nothing but a mirror's tracker URL and an infohash
// (the origin is closed, interopMirror): the mirror's tracker names the
// mirror as a seeder and the client downloads the day pack from it. The
// tracker refuses an infohash no manifest it verified names.

// trackerOnlyDay is a day pack of m other than skip, and checks first that
// the mirror's tracker refuses a stranger's infohash.
func trackerOnlyDay(t *testing.T, tm *testMirror, m *Manifest, skip int) PackEntry {
	t.Helper()
	a := announceTo(t, tm.url+"/announce", metainfo.Hash{0xde, 0xad, 0xbe, 0xef}, 6881, 1, "")
	if a.Failure != "unknown infohash" {
		t.Fatalf("mirror's tracker, a stranger's infohash: failure reason %q, want \"unknown infohash\"", a.Failure)
	}
	var days []PackEntry
	for _, p := range m.Packs {
		if p.Kind == KindDay {
			days = append(days, p)
		}
	}
	if len(days) <= skip {
		t.Fatalf("%d day packs", len(days))
	}
	return days[skip]
}

// checkSHA256 checks a downloaded file against the manifest's size and
// sha256, then against the origin's bytes and git index-pack --strict.
func checkSHA256(t *testing.T, tn *testNode, m *Manifest, p PackEntry, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != p.Size || sha256.Sum256(b) != p.SHA256 {
		t.Fatalf("%s: %d bytes, sha256 %x: the manifest says %d bytes, %x", p.File, len(b), sha256.Sum256(b), p.Size, p.SHA256)
	}
	checkDownloaded(t, originPacks(tn), m, path)
}

// libtorrent, given a magnet link with the infohash and the mirror's
// tracker (tr=) only, fetches the info dictionary and the day pack from
// the mirror.
func TestInteropLibtorrentTrackerOnly(t *testing.T) {
	peertest.NeedLibtorrent(t)
	peertest.Need(t, "git")
	tn, tm, m := interopMirror(t)
	p := trackerOnlyDay(t, tm, m, 1)
	magnet := "magnet:?xt=urn:btih:" + metainfo.Hash(p.InfoHash).HexString() + "&tr=" + url.QueryEscape(tm.url+"/announce")
	out := t.TempDir()
	up0 := mirrorUploaded(t, tm)
	start := time.Now()
	peertest.LTGetMagnet(t, magnet, "", out, interopLimit)
	logRate(t, "libtorrent (tracker only)", p.File, p.Size, time.Since(start))
	checkSHA256(t, tn, m, p, filepath.Join(out, p.File))
	if up := mirrorUploaded(t, tm) - up0; up < p.Size {
		t.Errorf("mirror sent %d bytes to peers, want at least %d", up, p.Size)
	}
}

// aria2, given a .torrent whose only announce is the mirror's tracker (no
// url-list, no peer), fetches a day pack from the mirror.
func TestInteropAria2TrackerOnly(t *testing.T) {
	peertest.Need(t, "aria2c", "git")
	tn, tm, m := interopMirror(t)
	p := trackerOnlyDay(t, tm, m, 2)
	path := mirrorPeerTorrent(t, tm, m, p.File, tm.url+"/announce")
	mi, err := metainfo.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if mi.Announce != tm.url+"/announce" || len(mi.AnnounceList) != 0 || len(mi.UrlList) != 0 {
		t.Fatalf("torrent: announce %q, announce-list %q, url-list %q: want the mirror's tracker alone", mi.Announce, mi.AnnounceList, mi.UrlList)
	}
	out := t.TempDir()
	up0 := mirrorUploaded(t, tm)
	start := time.Now()
	peertest.Aria2Get(t, path, out, interopLimit)
	logRate(t, "aria2 (tracker only)", p.File, p.Size, time.Since(start))
	checkSHA256(t, tn, m, p, filepath.Join(out, p.File))
	if up := mirrorUploaded(t, tm) - up0; up < p.Size {
		t.Errorf("mirror sent %d bytes to peers, want at least %d", up, p.Size)
	}
}

// The same over UDP (BEP 15): libtorrent and aria2 given only the
// mirror's udp:// tracker find the mirror and fetch a day pack from it;
// the UDP tracker refuses a stranger's infohash.

// udpTrackerOnlyDay is trackerOnlyDay for the mirror's UDP tracker.
func udpTrackerOnlyDay(t *testing.T, tm *testMirror, m *Manifest, skip int) (PackEntry, string) {
	t.Helper()
	tracker := tm.node.UDPTrackerURL()
	cc := udpTrackerClient(t, tracker)
	var er udp.ErrorResponse
	if _, _, err := udpAnnounce(t, cc, metainfo.Hash{0xde, 0xad, 0xbe, 0xef}, 6881, 1, 0); !errors.As(err, &er) || er.Message != "unknown infohash" {
		t.Fatalf("mirror's UDP tracker, a stranger's infohash: %v, want the error \"unknown infohash\"", err)
	}
	return trackerOnlyDay(t, tm, m, skip), tracker
}

func TestInteropLibtorrentUDPTrackerOnly(t *testing.T) {
	peertest.NeedLibtorrent(t)
	peertest.Need(t, "git")
	tn, tm, m := interopMirror(t)
	p, tracker := udpTrackerOnlyDay(t, tm, m, 1)
	magnet := "magnet:?xt=urn:btih:" + metainfo.Hash(p.InfoHash).HexString() + "&tr=" + url.QueryEscape(tracker)
	udpTrackerFetch(t, "libtorrent", tn, tm, m, p, func(out string) {
		peertest.LTGetMagnet(t, magnet, "", out, interopLimit)
	})
}

func TestInteropAria2UDPTrackerOnly(t *testing.T) {
	peertest.Need(t, "aria2c", "git")
	tn, tm, m := interopMirror(t)
	p, tracker := udpTrackerOnlyDay(t, tm, m, 2)
	path := mirrorPeerTorrent(t, tm, m, p.File, tracker)
	udpTrackerFetch(t, "aria2", tn, tm, m, p, func(out string) {
		peertest.Aria2GetUDP(t, path, out, interopLimit)
	})
}

// udpTrackerFetch runs client's fetch of p into a new directory and
// checks it: the origin's bytes, sent by the mirror, which the client
// announced to over UDP.
func udpTrackerFetch(t *testing.T, client string, tn *testNode, tm *testMirror, m *Manifest, p PackEntry, fetch func(out string)) {
	t.Helper()
	out := t.TempDir()
	up0 := mirrorUploaded(t, tm)
	s0 := tm.node.UDPTrackerStats()
	start := time.Now()
	fetch(out)
	logRate(t, client+" (UDP tracker only)", p.File, p.Size, time.Since(start))
	checkSHA256(t, tn, m, p, filepath.Join(out, p.File))
	if up := mirrorUploaded(t, tm) - up0; up < p.Size {
		t.Errorf("mirror sent %d bytes to peers, want at least %d", up, p.Size)
	}
	if s := tm.node.UDPTrackerStats(); s.Announces <= s0.Announces {
		t.Errorf("UDP tracker counts %+v: %s announced nothing", s, client)
	}
}
