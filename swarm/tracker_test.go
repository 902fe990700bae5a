package swarm

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
)

// trackerAnswer is a tracker's bencoded answer, decoded.
type trackerAnswer struct {
	Failure     string `bencode:"failure reason"`
	Complete    int    `bencode:"complete"`
	Incomplete  int    `bencode:"incomplete"`
	Interval    int64  `bencode:"interval"`
	MinInterval int64  `bencode:"min interval"`
	Peers       string `bencode:"peers"`
	Peers6      string `bencode:"peers6"`
}

// peers are the answer's compact peers, IPv4 (BEP 23) then IPv6 (BEP 7).
func (a trackerAnswer) peers(t testing.TB) []netip.AddrPort {
	t.Helper()
	if len(a.Peers)%6 != 0 || len(a.Peers6)%18 != 0 {
		t.Fatalf("compact peers of %d and %d bytes", len(a.Peers), len(a.Peers6))
	}
	var out []netip.AddrPort
	for p := a.Peers; p != ""; p = p[6:] {
		ip := netip.AddrFrom4([4]byte([]byte(p[:4])))
		out = append(out, netip.AddrPortFrom(ip, binary.BigEndian.Uint16([]byte(p[4:6]))))
	}
	for p := a.Peers6; p != ""; p = p[18:] {
		ip := netip.AddrFrom16([16]byte([]byte(p[:16])))
		out = append(out, netip.AddrPortFrom(ip, binary.BigEndian.Uint16([]byte(p[16:18]))))
	}
	return out
}

// announceTo announces ih to the tracker at announce as a peer listening
// on port with left bytes to go; extra is appended to the query.
func announceTo(t testing.TB, announce string, ih metainfo.Hash, port int, left int64, extra string) trackerAnswer {
	t.Helper()
	q := "info_hash=" + url.QueryEscape(string(ih[:])) + "&peer_id=" + url.QueryEscape("-MS0001-abcdefghijkl") +
		"&port=" + strconv.Itoa(port) + "&uploaded=0&downloaded=0&left=" + strconv.FormatInt(left, 10) + "&compact=1" + extra
	resp, b := httpGet(t, announce+"?"+q)
	if resp.StatusCode != 200 {
		t.Fatalf("announce: %s: %s", resp.Status, b)
	}
	var a trackerAnswer
	if err := bencode.Unmarshal(b, &a); err != nil {
		t.Fatalf("announce answer %q: %v", b, err)
	}
	return a
}

// startListenMirror is startTestMirror with the mirror's BitTorrent
// client listening on listen.
func startListenMirror(t testing.TB, key []byte, now func() time.Time, listen string, sources ...string) *testMirror {
	t.Helper()
	return startMirrorOpts(t, Options{Listen: listen, Now: now}, key, sources...)
}

func addrPort(t testing.TB, a net.Addr) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// The tracker of an origin and of its mirror: they answer for the
// manifest's infohashes only, list themselves as seeders, store peers,
// and the .torrent files they serve name them (outside the info
// dictionary: the infohash is the manifest's). The mirror's client
// announces to the origin's tracker, its source.
func TestTracker(t *testing.T) {
	tn := startTestNode(t, 3)
	m := tn.manifest(t)
	// The mirror seeds on 127.0.0.3: its announces must leave from there
	// for the origin's tracker to list it where it listens.
	tm := startListenMirror(t, tn.l.PublicKey(), func() time.Time { return tn.now }, "127.0.0.3:0", tn.url)
	if err := tm.node.SyncOnce(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	day := m.Packs[0]
	for _, node := range []struct {
		name, url string
		n         *Node
	}{{"origin", tn.url, tn.node}, {"mirror", tm.url, tm.node}} {
		tracker := node.url + "/announce"
		if got := node.n.TrackerURL(); got != tracker {
			t.Errorf("%s: TrackerURL %q, want %q", node.name, got, tracker)
		}
		// The .torrent served: its tracker first, infohash unchanged.
		for _, name := range []string{day.File, m.Bundles[0].Name} {
			resp, b := httpGet(t, node.url+"/lists/demo/torrents/"+name+".torrent")
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %s.torrent: %s", node.name, name, resp.Status)
			}
			mi, err := metainfo.Load(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if mi.HashInfoBytes() != manifestInfoHash(t, m, name) {
				t.Errorf("%s: %s.torrent: infohash %s, manifest says %s", node.name, name, mi.HashInfoBytes(), manifestInfoHash(t, m, name))
			}
			if mi.Announce != tracker || len(mi.AnnounceList) == 0 || !slices.Equal(mi.AnnounceList[0], []string{tracker}) {
				t.Errorf("%s: %s.torrent: announce %q, announce-list %q: want %q first", node.name, name, mi.Announce, mi.AnnounceList, tracker)
			}
		}
		// The status names it.
		resp, b := httpGet(t, node.url+"/lists/demo/status")
		var st Status
		if resp.StatusCode != 200 || json.Unmarshal(b, &st) != nil || st.Tracker != tracker {
			t.Errorf("%s: status: %s, tracker %q, want %q", node.name, resp.Status, st.Tracker, tracker)
		}
		// An infohash no manifest names: a BEP 3 failure reason.
		if a := announceTo(t, tracker, metainfo.Hash{1, 2, 3}, 6881, 100, ""); a.Failure != "unknown infohash" {
			t.Errorf("%s: unknown infohash: failure reason %q", node.name, a.Failure)
		}
		// A leecher of a day pack is given the node, a seeder.
		a := announceTo(t, tracker, day.InfoHash, 40001, day.Size, "&event=started")
		self := addrPort(t, node.n.Addr())
		if a.Failure != "" || !slices.Contains(a.peers(t), self) || a.Complete < 1 {
			t.Errorf("%s: a leecher's announce: %+v, peers %v: want %v among them", node.name, a, a.peers(t), self)
		}
		if a.Interval != int64(DefaultTrackerInterval/time.Second) || a.MinInterval != int64(DefaultTrackerMinInterval/time.Second) {
			t.Errorf("%s: interval %d, min interval %d", node.name, a.Interval, a.MinInterval)
		}
		// A second leecher is given the first; the first, stopped, is gone.
		first := netip.MustParseAddrPort("127.0.0.1:40001")
		if a := announceTo(t, tracker, day.InfoHash, 40002, day.Size, ""); !slices.Contains(a.peers(t), first) || a.Incomplete != 2 {
			t.Errorf("%s: second leecher: %+v, peers %v: want %v and 2 leechers", node.name, a, a.peers(t), first)
		}
		announceTo(t, tracker, day.InfoHash, 40001, day.Size, "&event=stopped")
		if a := announceTo(t, tracker, day.InfoHash, 40002, day.Size, ""); slices.Contains(a.peers(t), first) || a.Incomplete != 1 {
			t.Errorf("%s: after stopped: %+v, peers %v", node.name, a, a.peers(t))
		}
		// ip= from a loopback client is taken as given.
		other := netip.MustParseAddrPort("127.0.0.9:40003")
		announceTo(t, tracker, day.InfoHash, 40003, day.Size, "&ip=127.0.0.9")
		if a := announceTo(t, tracker, day.InfoHash, 40002, day.Size, "&numwant=10"); !slices.Contains(a.peers(t), other) {
			t.Errorf("%s: ip=127.0.0.9: peers %v, want %v", node.name, a.peers(t), other)
		}
		// A hostile query: failure reasons, not errors.
		for _, q := range []string{"", "info_hash=abc&port=1", "info_hash=" + url.QueryEscape(string(day.InfoHash[:])) + "&port=0",
			"info_hash=" + strings.Repeat("%41", 1000) + "&port=1"} {
			resp, b := httpGet(t, tracker+"?"+q)
			var a trackerAnswer
			if resp.StatusCode != 200 || bencode.Unmarshal(b, &a) != nil || a.Failure == "" {
				t.Errorf("%s: announce ?%.40s: %s %q, want a failure reason", node.name, q, resp.Status, b)
			}
		}
	}
	// The mirror's client announced to the origin's tracker (its source):
	// a leecher asking the origin is given both seeders.
	mirror := addrPort(t, tm.node.Addr())
	deadline := time.Now().Add(20 * time.Second)
	for {
		a := announceTo(t, tn.url+"/announce", day.InfoHash, 40010, day.Size, "")
		if slices.Contains(a.peers(t), mirror) && slices.Contains(a.peers(t), addrPort(t, tn.node.Addr())) {
			t.Logf("origin's tracker: %d seeders, peers %v", a.Complete, a.peers(t))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("origin's tracker never listed the mirror %v: %+v, peers %v", mirror, a, a.peers(t))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ip= from a client not on loopback is ignored: the peer is stored with
// the address it came from. (The handler is called directly: no socket
// here has another address.)
func TestTrackerIPUntrusted(t *testing.T) {
	tn := startTestNode(t, 1)
	ih := tn.manifest(t).Packs[0].InfoHash
	q := "info_hash=" + url.QueryEscape(string(ih[:])) + "&port=5000&left=10&ip=127.0.0.5"
	r := httptest.NewRequest("GET", "/announce?"+q, nil)
	r.RemoteAddr = "192.0.2.7:40000"
	w := httptest.NewRecorder()
	tn.node.Handler().ServeHTTP(w, r)
	var a trackerAnswer
	if err := bencode.Unmarshal(w.Body.Bytes(), &a); err != nil || a.Failure != "" {
		t.Fatalf("announce: %v %q", err, w.Body.Bytes())
	}
	got := announceTo(t, tn.url+"/announce", ih, 5001, 10, "").peers(t)
	if want := netip.MustParseAddrPort("192.0.2.7:5000"); !slices.Contains(got, want) {
		t.Errorf("peers %v, want %v (the connection's address, not ip=)", got, want)
	}
	if bad := netip.MustParseAddrPort("127.0.0.5:5000"); slices.Contains(got, bad) {
		t.Errorf("peers %v: ip= of a stranger was taken", got)
	}
}

// The peer store: bounded per torrent and in all, expiry at 2×interval,
// numwant, seeders given leechers only.
func TestPeerStore(t *testing.T) {
	o := TrackerOptions{Interval: time.Minute, MaxPeersPerTorrent: 3, MaxPeers: 5}.withDefaults()
	s := newPeerStore(o)
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ih1, ih2 := metainfo.Hash{1}, metainfo.Hash{2}
	peer := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(40000+i))
	}
	for i := range 5 {
		s.announce(now, ih1, peer(i), false, false, 50, netip.AddrPort{}, 0)
	}
	if n := s.count(); n != 3 {
		t.Fatalf("%d peers stored for one torrent, want the cap 3", n)
	}
	for i := range 5 {
		s.announce(now, ih2, peer(10+i), i == 0, false, 50, netip.AddrPort{}, 0)
	}
	if n := s.count(); n != 5 {
		t.Fatalf("%d peers stored, want the cap 5", n)
	}
	a := s.announce(now, ih2, peer(20), false, false, 1, netip.AddrPort{}, 0)
	if len(a.peers) != 1 || a.seeders != 1 || a.leechers != 1 {
		t.Errorf("numwant 1: %d peers, %d seeders, %d leechers; want 1, 1, 1", len(a.peers), a.seeders, a.leechers)
	}
	// A seeder is given no seeder; the node itself (self) is counted.
	self := netip.MustParseAddrPort("127.0.0.2:6881")
	a = s.announce(now, ih2, peer(10), true, false, 50, self, 0)
	if len(a.peers) != 1 || a.peers[0] != peer(11) || a.seeders != 2 {
		t.Errorf("seeder: peers %v, %d seeders; want [%v], 2", a.peers, a.seeders, peer(11))
	}
	a = s.announce(now, ih2, peer(11), false, false, 50, self, 0)
	if len(a.peers) == 0 || a.peers[0] != self {
		t.Errorf("leecher: peers %v, want the node %v first", a.peers, self)
	}
	// 2×interval later every peer has expired: room again.
	later := now.Add(2*o.Interval + time.Second)
	a = s.announce(later, ih1, peer(30), false, false, 50, netip.AddrPort{}, 0)
	if len(a.peers) != 0 || a.leechers != 1 {
		t.Errorf("after expiry: peers %v, %d leechers", a.peers, a.leechers)
	}
	if later = later.Add(time.Minute); s.announce(later, ih2, peer(31), false, false, 50, netip.AddrPort{}, 0).leechers != 1 {
		t.Error("a new peer was not stored after the others expired")
	}
	if n := s.count(); n > 2 {
		t.Errorf("%d peers stored after expiry, want 2", n)
	}
}

func TestTrackerOf(t *testing.T) {
	for _, tc := range []struct{ base, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/announce"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/announce"},
		{"http://127.0.0.2:8080/lists/demo", "http://127.0.0.2:8080/announce"},
		{"https://example.org/mailswarm", "https://example.org/mailswarm/announce"},
		{"https://example.org/mailswarm/lists/dev/", "https://example.org/mailswarm/announce"},
		{"127.0.0.1:6881", ""},
		{"ftp://example.org", ""},
	} {
		if got := trackerOf(tc.base); got != tc.want {
			t.Errorf("trackerOf(%q) = %q, want %q", tc.base, got, tc.want)
		}
	}
}

func TestParseAnnounce(t *testing.T) {
	ih := url.QueryEscape(string(bytes.Repeat([]byte{0xfe}, 20)))
	for _, tc := range []struct {
		q, fail string
		want    announceReq
	}{
		{q: "info_hash=" + ih + "&port=6881", want: announceReq{port: 6881, left: -1, numWant: -1}},
		{q: "info_hash=" + ih + "&port=1&left=0&event=completed&numwant=7&ip=::ffff:127.0.0.3",
			want: announceReq{port: 1, left: 0, event: "completed", numWant: 7, ip: netip.MustParseAddr("127.0.0.3")}},
		{q: "info_hash=" + ih + "&port=1&event=empty&ip=host.example", want: announceReq{port: 1, left: -1, numWant: -1}},
		{q: "info_hash=" + ih + "&port=1&ip=x&ip=::1&ip=127.0.0.4", want: announceReq{port: 1, left: -1, numWant: -1, ip: netip.MustParseAddr("::1")}},
		{q: "port=1", fail: "info_hash: want 20 bytes"},
		{q: "info_hash=" + ih + "&info_hash=" + ih + "&port=1", fail: "info_hash given twice"},
		{q: "info_hash=" + ih, fail: "port: want 1 to 65535"},
		{q: "info_hash=" + ih + "&port=65536", fail: "port: want 1 to 65535"},
		{q: "info_hash=" + ih + "&port=1&left=-1", fail: "left: want a number of bytes"},
		{q: "info_hash=" + ih + "&port=1&event=paused", fail: "event: want started, completed or stopped"},
		{q: "info_hash=" + ih + "&port=1&numwant=x", fail: "numwant: want a number"},
		{q: "info_hash=" + ih + "&port=1&numwant=-1", want: announceReq{port: 1, left: -1, numWant: -1}},
		{q: "info_hash=%zz&port=1", fail: "bad query"},
		{q: strings.Repeat("a", maxAnnounceQuery+1), fail: "request too long"},
	} {
		got, err := parseAnnounce(tc.q)
		if tc.fail != "" {
			if err == nil || err.Error() != tc.fail {
				t.Errorf("parseAnnounce(%.60q) = %v, want failure %q", tc.q, err, tc.fail)
			}
			continue
		}
		tc.want.infoHash = metainfo.Hash(bytes.Repeat([]byte{0xfe}, 20))
		if err != nil || got != tc.want {
			t.Errorf("parseAnnounce(%.60q) = %+v, %v; want %+v", tc.q, got, err, tc.want)
		}
	}
}

func FuzzParseAnnounce(f *testing.F) {
	ih := url.QueryEscape(string(bytes.Repeat([]byte{7}, 20)))
	f.Add("info_hash=" + ih + "&peer_id=-MS0001-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=10&event=started&compact=1")
	f.Add("info_hash=" + ih + "&port=1&numwant=99999999999999999999&ip=[::1]")
	f.Add("info_hash=%&port=;;&&==")
	f.Fuzz(func(t *testing.T, q string) {
		req, err := parseAnnounce(q)
		if err != nil {
			if _, ok := err.(errAnnounce); !ok {
				t.Fatalf("error %T %v, want a failure reason", err, err)
			}
			return
		}
		if len(q) > maxAnnounceQuery || req.port == 0 || req.left < -1 || req.numWant < -1 {
			t.Fatalf("parseAnnounce(%q) = %+v", q, req)
		}
		// The answer to it encodes whatever the store gives.
		s := newPeerStore(TrackerOptions{}.withDefaults())
		peer := netip.AddrPortFrom(netip.MustParseAddr("::1"), req.port)
		if req.ip.IsValid() {
			peer = netip.AddrPortFrom(req.ip, req.port)
		}
		s.announce(time.Now(), req.infoHash, peer, req.left == 0, req.event == "stopped", 50, netip.AddrPort{}, 0)
		a := s.announce(time.Now(), req.infoHash, netip.MustParseAddrPort("127.0.0.1:1"), false, false, 50, netip.AddrPort{}, 0)
		var got trackerAnswer
		if err := bencode.Unmarshal(a.encode(TrackerOptions{}.withDefaults()), &got); err != nil {
			t.Fatalf("answer: %v", err)
		}
	})
}

// Tracker off: no /announce, no tracker in the torrents served.
func TestTrackerOff(t *testing.T) {
	tn := startTestNodeOpts(t, 1, Options{Tracker: TrackerOptions{Off: true}}, nil)
	m := tn.manifest(t)
	if resp, _ := httpGet(t, tn.url+"/announce?port=1"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("announce with the tracker off: %s", resp.Status)
	}
	if mi := fetchTorrent(t, tn, m.Packs[0].File); mi.Announce != "" || len(mi.AnnounceList) != 0 {
		t.Errorf("torrent with the tracker off: announce %q %q", mi.Announce, mi.AnnounceList)
	}
}

// BenchmarkTrackerAnnounce is one announce, parsed and answered, to a
// torrent with a full store (1,000 peers, DefaultTrackerMaxPeersPerTorrent).
func BenchmarkTrackerAnnounce(b *testing.B) {
	o := TrackerOptions{}.withDefaults()
	s := newPeerStore(o)
	ih := metainfo.Hash{9}
	now := time.Now()
	for i := range o.MaxPeersPerTorrent {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), 6881)
		s.announce(now, ih, ap, i%4 == 0, false, 0, netip.AddrPort{}, 0)
	}
	q := "info_hash=" + url.QueryEscape(string(ih[:])) + "&peer_id=-MS0001-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=10&compact=1&numwant=200"
	self := netip.MustParseAddrPort("127.0.0.1:6881")
	b.ReportAllocs()
	for b.Loop() {
		req, err := parseAnnounce(q)
		if err != nil {
			b.Fatal(err)
		}
		a := s.announce(now, req.infoHash, netip.AddrPortFrom(netip.MustParseAddr("127.2.0.1"), req.port),
			false, false, o.MaxNumWant, self, 0)
		a.encode(o)
	}
}
