package swarm

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mailswarm/internal/peertest"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker/udp"
)

// udpTrackerClient is anacrolix's BEP 15 client for the tracker at
// trackerURL (udp://HOST:PORT/announce).
func udpTrackerClient(t testing.TB, trackerURL string) *udp.ConnClient {
	t.Helper()
	u, err := url.Parse(trackerURL)
	if err != nil || u.Scheme != "udp" {
		t.Fatalf("UDP tracker URL %q: %v", trackerURL, err)
	}
	cc, err := udp.NewConnClient(udp.NewConnClientOpts{Network: "udp4", Host: u.Host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// udpAnnounce announces ih as a peer on port with left bytes to go.
func udpAnnounce(t testing.TB, cc *udp.ConnClient, ih metainfo.Hash, port uint16, left int64, ev udp.AnnounceEvent) (udp.AnnounceResponseHeader, []netip.AddrPort, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req := udp.AnnounceRequest{InfoHash: ih, Left: left, Event: ev, NumWant: -1, Port: port}
	copy(req.PeerId[:], "-MS0001-udpudpudpudp")
	hdr, peers, err := cc.Client.Announce(ctx, req, udp.Options{}, func(net.Addr) bool { return false })
	if err != nil {
		return hdr, nil, err
	}
	var out []netip.AddrPort
	for _, p := range peers.NodeAddrs() {
		out = append(out, p.UDP().AddrPort())
	}
	return hdr, out, nil
}

// rawUDP sends pkt to addr from conn and returns the answer, or nil when
// none comes within wait.
func rawUDP(t testing.TB, conn *net.UDPConn, addr *net.UDPAddr, pkt []byte, wait time.Duration) []byte {
	t.Helper()
	if _, err := conn.WriteToUDP(pkt, addr); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 2048)
	n, _, err := conn.ReadFromUDP(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		t.Fatal(err)
	}
	return buf[:n]
}

func udpHeader(connID uint64, action udp.Action, tx int32) []byte {
	b := binary.BigEndian.AppendUint64(nil, connID)
	b = binary.BigEndian.AppendUint32(b, uint32(action))
	return binary.BigEndian.AppendUint32(b, uint32(tx))
}

// udpAnnounceBody is an announce's 82 bytes after the header.
func udpAnnounceBody(ih metainfo.Hash, event uint32, port uint16) []byte {
	b := append([]byte(nil), ih[:]...)
	b = append(b, "-MS0001-rawrawrawraw"...)
	b = binary.BigEndian.AppendUint64(b, 0)  // downloaded
	b = binary.BigEndian.AppendUint64(b, 10) // left
	b = binary.BigEndian.AppendUint64(b, 0)  // uploaded
	b = binary.BigEndian.AppendUint32(b, event)
	b = binary.BigEndian.AppendUint32(b, 0)          // ip
	b = binary.BigEndian.AppendUint32(b, 7)          // key
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // num_want -1
	return binary.BigEndian.AppendUint16(b, port)
}

// The UDP tracker of an origin (its own socket: the DHT off): named in
// the .torrent files and the status, it answers BEP 15 announces and
// scrapes for the manifest's infohashes only, with the HTTP tracker's
// peer store, and drops or refuses bad packets, counted, and keeps
// answering.
func TestUDPTracker(t *testing.T) {
	tn := startTestNode(t, 2)
	m := tn.manifest(t)
	day := m.Packs[0]
	self := addrPort(t, tn.node.Addr())
	tracker := tn.node.UDPTrackerURL()
	if want := "udp://" + self.String() + "/announce"; tracker != want {
		t.Fatalf("UDPTrackerURL %q, want %q", tracker, want)
	}
	// The .torrent: the HTTP tracker first, the UDP one the second tier.
	mi := fetchTorrent(t, tn, day.File)
	if len(mi.AnnounceList) < 2 || !slices.Equal(mi.AnnounceList[1], []string{tracker}) {
		t.Errorf("torrent: announce-list %q: want %q second", mi.AnnounceList, tracker)
	}
	resp, b := httpGet(t, tn.url+"/lists/demo/status")
	var st Status
	if resp.StatusCode != 200 || json.Unmarshal(b, &st) != nil || st.TrackerUDP != tracker {
		t.Errorf("status: %s, tracker_udp %q, want %q", resp.Status, st.TrackerUDP, tracker)
	}

	cc := udpTrackerClient(t, tracker)
	// An infohash no manifest names: an error packet.
	var er udp.ErrorResponse
	if _, _, err := udpAnnounce(t, cc, metainfo.Hash{1, 2, 3}, 6881, 100, udp.AnnounceEvent(0)); !errors.As(err, &er) || er.Message != "unknown infohash" {
		t.Errorf("unknown infohash: %v, want the error \"unknown infohash\"", err)
	}
	// A leecher is given the node; a second leecher the first.
	hdr, peers, err := udpAnnounce(t, cc, day.InfoHash, 40001, day.Size, udp.AnnounceEvent(2))
	if err != nil || !slices.Contains(peers, self) || hdr.Seeders < 1 || hdr.Interval != int32(DefaultTrackerInterval/time.Second) {
		t.Errorf("leecher: %v, %+v, peers %v: want %v among them", err, hdr, peers, self)
	}
	first := netip.MustParseAddrPort("127.0.0.1:40001")
	if hdr, peers, err = udpAnnounce(t, cc, day.InfoHash, 40002, day.Size, 0); err != nil || !slices.Contains(peers, first) || hdr.Leechers != 2 {
		t.Errorf("second leecher: %v, %+v, peers %v: want %v and 2 leechers", err, hdr, peers, first)
	}
	// The HTTP tracker shares the store: it lists the UDP peers.
	if a := announceTo(t, tn.url+"/announce", day.InfoHash, 40003, day.Size, ""); !slices.Contains(a.peers(t), first) || a.Incomplete != 3 {
		t.Errorf("HTTP announce after UDP: %+v, peers %v: want %v and 3 leechers", a, a.peers(t), first)
	}
	// The first completes: a seeder, one download. Its "completed"
	// again, a leecher again and a seeder again, and a "completed" from
	// a peer that never leeched here count none (scrape's downloaded is
	// leechers seen to become seeders, each once).
	for _, a := range []struct {
		port uint16
		left int64
	}{{40001, 0}, {40001, 0}, {40009, 0}, {40001, day.Size}, {40001, 0}} {
		ev := udp.AnnounceEvent(1)
		if a.left > 0 {
			ev = 0
		}
		if _, _, err = udpAnnounce(t, cc, day.InfoHash, a.port, a.left, ev); err != nil {
			t.Fatal(err)
		}
	}
	// Scrape over UDP and HTTP: the node and two seeds, two leech.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	sc, err := cc.Client.Scrape(ctx, []udp.InfoHash{day.InfoHash, m.Packs[1].InfoHash})
	want := udp.ScrapeInfohashResult{Seeders: 3, Completed: 1, Leechers: 2}
	if err != nil || len(sc) != 2 || sc[0] != want || sc[1] != (udp.ScrapeInfohashResult{Seeders: 1}) {
		t.Errorf("UDP scrape: %v, %+v: want [%+v {1 0 0}]", err, sc, want)
	}
	if _, err := cc.Client.Scrape(ctx, []udp.InfoHash{day.InfoHash, {9}}); !errors.As(err, &er) || er.Message != "unknown infohash" {
		t.Errorf("UDP scrape of an unknown infohash: %v", err)
	}
	var hs struct {
		Failure string                              `bencode:"failure reason"`
		Files   map[string]udp.ScrapeInfohashResult `bencode:"files"`
	}
	resp, b = httpGet(t, tn.url+"/scrape?info_hash="+url.QueryEscape(string(day.InfoHash[:])))
	if err := bencode.Unmarshal(b, &hs); resp.StatusCode != 200 || err != nil || hs.Files[string(day.InfoHash[:])] != want {
		t.Errorf("HTTP scrape: %s %q: %v: want %+v", resp.Status, b, err, want)
	}
	for _, q := range []string{"", "info_hash=abc", "info_hash=" + url.QueryEscape(string(day.InfoHash[:])) + "&info_hash=" + url.QueryEscape(strings.Repeat("x", 20)),
		strings.Repeat("info_hash="+url.QueryEscape(string(day.InfoHash[:]))+"&", 75)} {
		hs.Failure = ""
		resp, b = httpGet(t, tn.url+"/scrape?"+q)
		if err := bencode.Unmarshal(b, &hs); resp.StatusCode != 200 || err != nil || hs.Failure == "" {
			t.Errorf("HTTP scrape ?%.40s: %s %q: want a failure reason", q, resp.Status, b)
		}
	}

	// Hostile packets, raw: each dropped (no answer) or refused (an error
	// packet), counted; the tracker answers a good connect after them.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	addr := net.UDPAddrFromAddrPort(self)
	s0 := tn.node.UDPTrackerStats()
	connect := rawUDP(t, conn, addr, udpHeader(udp.ConnectRequestConnectionId, udp.ActionConnect, 77), 5*time.Second)
	if len(connect) != 16 || binary.BigEndian.Uint32(connect) != 0 || binary.BigEndian.Uint32(connect[4:]) != 77 {
		t.Fatalf("connect: answer %x", connect)
	}
	id := binary.BigEndian.Uint64(connect[8:])
	if id>>62 != 0 {
		t.Errorf("connection id %x: its first byte could be the DHT's 'd'", id)
	}
	drops := [][]byte{
		{},
		[]byte("short"),
		udpHeader(udp.ConnectRequestConnectionId+1, udp.ActionConnect, 1),                                                                                   // not the protocol id
		append(udpHeader(id^1, udp.ActionAnnounce, 2), udpAnnounceBody(day.InfoHash, 2, 40009)...),                                                          // forged id
		append(udpHeader(0x1234567890, udp.ActionScrape, 3), day.InfoHash[:]...),                                                                            // forged id
		append(udpHeader(id, udp.ActionAnnounce, 4), bytes.Repeat([]byte{1}, udpMaxPacket)...),                                                              // too long
		append(udpHeader(tn.node.udpTracker.connID(netip.MustParseAddrPort("127.0.0.1:1"), time.Now().Unix()/60), udp.ActionScrape, 5), day.InfoHash[:]...), // another address's id
	}
	for i, p := range drops {
		if ans := rawUDP(t, conn, addr, p, 300*time.Millisecond); ans != nil {
			t.Errorf("packet %d (%x…): answer %x, want none", i, p[:min(len(p), 20)], ans)
		}
	}
	refusals := [][]byte{
		append(udpHeader(id, udp.ActionAnnounce, 10), udpAnnounceBody(day.InfoHash, 2, 40009)[:50]...), // short announce
		append(udpHeader(id, udp.ActionAnnounce, 11), udpAnnounceBody(day.InfoHash, 9, 40009)...),      // event 9
		append(udpHeader(id, udp.ActionAnnounce, 12), udpAnnounceBody(day.InfoHash, 2, 0)...),          // port 0
		append(udpHeader(id, udp.ActionScrape, 13), day.InfoHash[:19]...),                              // 19 bytes
		udpHeader(id, udp.ActionScrape, 14),                                                            // none
		udpHeader(id, udp.ActionError, 15),                                                             // not a request
		udpHeader(id, udp.Action(-1), 16),
	}
	for i, p := range refusals {
		ans := rawUDP(t, conn, addr, p, 5*time.Second)
		if len(ans) < 8 || binary.BigEndian.Uint32(ans) != uint32(udp.ActionError) || binary.BigEndian.Uint32(ans[4:]) != uint32(10+i) {
			t.Errorf("packet %d: answer %q, want an error for transaction %d", i, ans, 10+i)
		}
	}
	// A good announce with that id, raw: BEP 41 options after it ignored.
	ans := rawUDP(t, conn, addr, append(append(udpHeader(id, udp.ActionAnnounce, 20), udpAnnounceBody(day.InfoHash, 2, 40009)...), 2, 9, '/', 'a', 'n', 'n', 'o', 'u', 'n', 'c', 'e', 0), 5*time.Second)
	if len(ans) < 20 || binary.BigEndian.Uint32(ans) != uint32(udp.ActionAnnounce) || (len(ans)-20)%6 != 0 || !bytes.Contains(ans[20:], append(self.Addr().AsSlice(), byte(self.Port()>>8), byte(self.Port()))) {
		t.Errorf("announce: answer %x, want the node among its IPv4 peers", ans)
	}
	s1 := tn.node.UDPTrackerStats()
	if d := s1.Dropped - s0.Dropped; d != int64(len(drops)) {
		t.Errorf("%d packets counted dropped, want %d", d, len(drops))
	}
	if e := s1.Errors - s0.Errors; e != int64(len(refusals)) {
		t.Errorf("%d packets counted refused, want %d", e, len(refusals))
	}
	if s1.Connects < 2 || s1.Announces != 8 || s1.Scrapes != 1 {
		t.Errorf("counts %+v", s1)
	}
}

// With the DHT on the UDP tracker shares the DHT's socket: both answer
// on the BitTorrent port, each its own packets.
func TestUDPTrackerWithDHT(t *testing.T) {
	boot := dhtBoot(t, time.Hour, nil)
	tn := startTestNodeOpts(t, 1, Options{DHT: true, DHTBootstrap: []string{boot}}, nil)
	if tn.node.udpConn != nil {
		t.Fatal("the tracker opened a socket of its own with the DHT on")
	}
	day := tn.manifest(t).Packs[0]
	self := addrPort(t, tn.node.Addr())
	cc := udpTrackerClient(t, tn.node.UDPTrackerURL())
	if _, peers, err := udpAnnounce(t, cc, day.InfoHash, 40001, day.Size, 2); err != nil || !slices.Contains(peers, self) {
		t.Errorf("announce: %v, peers %v: want %v", err, peers, self)
	}
	// A KRPC ping (BEP 5) on the same port: the DHT's answer.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ping := []byte("d1:ad2:id20:mailswarm-test-nod01e1:q4:ping1:t2:aa1:y1:qe")
	var ans []byte
	for range 10 { // the DHT may rate-limit a first unknown node: a few tries
		if ans = rawUDP(t, conn, net.UDPAddrFromAddrPort(self), ping, time.Second); ans != nil {
			break
		}
	}
	var msg struct {
		T string `bencode:"t"`
		Y string `bencode:"y"`
	}
	if err := bencode.Unmarshal(ans, &msg); err != nil || msg.T != "aa" || msg.Y != "r" {
		t.Errorf("DHT ping on the shared port: %q, %v: want a KRPC response", ans, err)
	}
}

// Each address gets udpTrackerBurst packets at once, then
// udpTrackerRate a second; another address its own.
func TestUDPTrackerRate(t *testing.T) {
	tn := startTestNode(t, 1)
	ut := tn.node.udpTracker
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	ut.now = func() time.Time { return now }
	a := netip.MustParseAddrPort("127.0.0.7:5000")
	pkt := udpHeader(udp.ConnectRequestConnectionId, udp.ActionConnect, 1)
	answered := 0
	for range udpTrackerBurst + 100 {
		if ut.handle(pkt, a, false) != nil {
			answered++
		}
	}
	if answered != udpTrackerBurst {
		t.Errorf("%d connects answered at once, want %d", answered, udpTrackerBurst)
	}
	if ut.handle(pkt, netip.MustParseAddrPort("127.0.0.8:5000"), false) == nil {
		t.Error("another address was refused")
	}
	now = now.Add(time.Second)
	answered = 0
	for range 2 * udpTrackerRate {
		if ut.handle(pkt, a, false) != nil {
			answered++
		}
	}
	if answered != udpTrackerRate {
		t.Errorf("%d connects answered a second later, want %d", answered, udpTrackerRate)
	}
	// udpTrackerAddrs addresses remembered at most; past them, new
	// ones share one bucket until the others are full again.
	for i := range udpTrackerAddrs {
		ut.handle(pkt, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 3, byte(i >> 8), byte(i)}), 5000), false)
	}
	if len(ut.limits) != udpTrackerAddrs {
		t.Errorf("%d addresses remembered, want the cap %d", len(ut.limits), udpTrackerAddrs)
	}
	if ut.handle(pkt, netip.MustParseAddrPort("127.4.0.1:5000"), false) == nil || len(ut.limits) != udpTrackerAddrs {
		t.Errorf("an address past the cap: refused, or remembered (%d)", len(ut.limits))
	}
	now = now.Add(time.Minute) // every bucket full again: swept
	if ut.handle(pkt, netip.MustParseAddrPort("127.4.0.2:5000"), false) == nil || len(ut.limits) != 1 {
		t.Errorf("a minute later: %d addresses remembered, want 1", len(ut.limits))
	}
	// A connection id lives udpConnIDLife minutes.
	id := binary.BigEndian.Uint64(ut.handle(pkt, netip.MustParseAddrPort("127.0.0.9:5000"), false)[8:])
	for _, tc := range []struct {
		after time.Duration
		ok    bool
	}{{0, true}, {2 * time.Minute, true}, {3*time.Minute + time.Second, false}} {
		if got := ut.validID(netip.MustParseAddrPort("127.0.0.9:5000"), id, now.Add(tc.after)); got != tc.ok {
			t.Errorf("connection id after %v: valid %v, want %v", tc.after, got, tc.ok)
		}
	}
	if ut.validID(netip.MustParseAddrPort("127.0.0.9:5001"), id, now) {
		t.Error("connection id valid from another port")
	}
}

func TestParseUDPRequest(t *testing.T) {
	ih := metainfo.Hash(bytes.Repeat([]byte{0xfe}, 20))
	body := udpAnnounceBody(ih, 1, 6881)
	withIP := slices.Clone(body)
	copy(withIP[68:72], []byte{127, 0, 0, 3})
	for _, tc := range []struct {
		name string
		pkt  []byte
		err  string // "drop" for errUDPDrop
		want udpRequest
	}{
		{"connect", udpHeader(udp.ConnectRequestConnectionId, udp.ActionConnect, 5), "",
			udpRequest{connID: udp.ConnectRequestConnectionId, action: udp.ActionConnect, txID: 5}},
		{"announce", append(udpHeader(9, udp.ActionAnnounce, 6), body...), "",
			udpRequest{connID: 9, action: udp.ActionAnnounce, txID: 6, announce: announceReq{infoHash: ih, port: 6881, left: 10, event: "completed", numWant: -1}}},
		{"announce ip", append(udpHeader(9, udp.ActionAnnounce, 6), withIP...), "",
			udpRequest{connID: 9, action: udp.ActionAnnounce, txID: 6, announce: announceReq{infoHash: ih, port: 6881, left: 10, event: "completed", numWant: -1, ip: netip.MustParseAddr("127.0.0.3")}}},
		{"empty", nil, "drop", udpRequest{}},
		{"15 bytes", make([]byte, 15), "drop", udpRequest{}},
		{"connect without the protocol id", udpHeader(1, udp.ActionConnect, 5), "drop", udpRequest{}},
		{"too long", make([]byte, udpMaxPacket+1), "drop", udpRequest{}},
		{"short announce", append(udpHeader(9, udp.ActionAnnounce, 6), body[:81]...), "announce: short packet", udpRequest{}},
		{"75 infohashes", append(udpHeader(9, udp.ActionScrape, 6), make([]byte, 75*20)...), "drop", udpRequest{}},
		{"74 and a half infohashes", append(udpHeader(9, udp.ActionScrape, 6), make([]byte, 74*20-10)...), "scrape: want 1 to 74 infohashes", udpRequest{}},
		{"action 4", udpHeader(9, 4, 6), "unknown action", udpRequest{}},
	} {
		got, err := parseUDPRequest(tc.pkt)
		switch {
		case tc.err == "drop":
			if !errors.Is(err, errUDPDrop) {
				t.Errorf("%s: parseUDPRequest = %v, want dropped", tc.name, err)
			}
		case tc.err != "":
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: parseUDPRequest = %v, want %q", tc.name, err, tc.err)
			}
		case err != nil || !equalUDPRequest(got, tc.want):
			t.Errorf("%s: parseUDPRequest = %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func equalUDPRequest(a, b udpRequest) bool {
	return a.connID == b.connID && a.action == b.action && a.txID == b.txID && a.announce == b.announce && slices.Equal(a.scrape, b.scrape)
}

// FuzzUDPTrackerRequest: any packet is dropped, refused with an error
// packet or answered as BEP 15 has it, and never panics; a connection id
// minted for the fuzzer's address makes the fuzzer reach past the
// check into announce and scrape.
func FuzzUDPTrackerRequest(f *testing.F) {
	ih := metainfo.Hash{0xaa}
	f.Add(udpHeader(udp.ConnectRequestConnectionId, udp.ActionConnect, 1), false)
	f.Add(append(udpHeader(0, udp.ActionAnnounce, 2), udpAnnounceBody(ih, 2, 6881)...), true)
	f.Add(append(udpHeader(0, udp.ActionScrape, 3), ih[:]...), true)
	f.Add(append(udpHeader(0, udp.ActionAnnounce, 2), udpAnnounceBody(ih, 2, 6881)[:40]...), true)
	f.Add([]byte("d1:ad2:id20:xxxxxxxxxxxxxxxxxxxxe1:q4:ping1:t2:aa1:y1:qe"), false)
	n := &Node{opts: Options{Tracker: TrackerOptions{}.withDefaults()}, dirs: map[metainfo.Hash]string{ih: "/x/" + packsDir}}
	n.tracker = newPeerStore(n.opts.Tracker)
	n.ln = fakeListener{addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6881}}
	ut := newUDPTracker(n)
	n.udpTracker = ut
	from := netip.MustParseAddrPort("127.0.0.1:40000")
	// A second a packet: the rate limit never drops one (the fuzzer
	// sends thousands a second), and an id is minted for that second.
	var mu sync.Mutex
	clock := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	ut.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}
	f.Fuzz(func(t *testing.T, pkt []byte, ours bool) {
		mu.Lock()
		clock = clock.Add(time.Second)
		mu.Unlock()
		if ours && len(pkt) >= 8 {
			binary.BigEndian.PutUint64(pkt, ut.connID(from, ut.now().Unix()/60))
		}
		r, perr := parseUDPRequest(pkt)
		ans := ut.handle(pkt, from, false)
		if ans == nil {
			return
		}
		if len(ans) < 8 || binary.BigEndian.Uint32(ans[4:]) != uint32(r.txID) {
			t.Fatalf("answer %x to %x", ans, pkt)
		}
		switch act := udp.Action(binary.BigEndian.Uint32(ans)); {
		case perr != nil && act != udp.ActionError:
			t.Fatalf("parse error %v answered with action %d", perr, act)
		case act == udp.ActionConnect && len(ans) != 16,
			act == udp.ActionAnnounce && (len(ans) < 20 || (len(ans)-20)%6 != 0),
			act == udp.ActionScrape && len(ans) != 8+12*len(r.scrape):
			t.Fatalf("answer %x: bad length for action %d", ans, act)
		}
	})
}

// fakeListener is a net.Listener that only has an address (the fuzz
// target's node has no socket).
type fakeListener struct {
	net.Listener
	addr net.Addr
}

func (l fakeListener) Addr() net.Addr { return l.addr }

// BenchmarkUDPTrackerAnnounce is one UDP announce, rate-checked, its
// connection id checked, parsed and answered, to a torrent with a full
// store (1,000 peers), as BenchmarkTrackerAnnounce over HTTP.
func BenchmarkUDPTrackerAnnounce(b *testing.B) {
	ih := metainfo.Hash{9}
	n := &Node{opts: Options{Tracker: TrackerOptions{}.withDefaults()}, dirs: map[metainfo.Hash]string{ih: "/x/" + packsDir}}
	n.tracker = newPeerStore(n.opts.Tracker)
	n.ln = fakeListener{addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6881}}
	ut := newUDPTracker(n)
	n.udpTracker = ut
	now := time.Now()
	for i := range n.opts.Tracker.MaxPeersPerTorrent {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), 6881)
		n.tracker.announce(now, ih, ap, i%4 == 0, false, 0, netip.AddrPort{}, 0)
	}
	// Announces from 1,000 addresses in turn: the per-address rate is
	// not what is measured.
	pkt := append(udpHeader(0, udp.ActionAnnounce, 1), udpAnnounceBody(ih, 0, 6881)...)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i = (i + 1) % 1000
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 2, byte(i >> 8), byte(i)}), 6881)
		binary.BigEndian.PutUint64(pkt, ut.connID(from, now.Unix()/60))
		if ans := ut.handle(pkt, from, false); len(ans) < 20 || binary.BigEndian.Uint32(ans) != uint32(udp.ActionAnnounce) {
			b.Fatalf("answer %x", ans)
		}
	}
}

// Over IPv6 (a node on ::1) the answer's peers are IPv6 ones, 18 bytes
// each (BEP 15): the node itself among them.
func TestUDPTrackerIPv6(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		if peertest.InCI() {
			t.Fatalf("no ::1: %v", err)
		}
		t.Skipf("no ::1: %v", err)
	} else {
		ln.Close()
	}
	tn := startTestNodeOpts(t, 1, Options{Listen: "[::1]:0"}, nil)
	day := tn.manifest(t).Packs[0]
	self := addrPort(t, tn.node.Addr())
	tracker := tn.node.UDPTrackerURL()
	if want := "udp://" + self.String() + "/announce"; tracker != want {
		t.Fatalf("UDPTrackerURL %q, want %q", tracker, want)
	}
	u, _ := url.Parse(tracker)
	cc, err := udp.NewConnClient(udp.NewConnClientOpts{Network: "udp6", Host: u.Host})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req := udp.AnnounceRequest{InfoHash: day.InfoHash, Left: day.Size, NumWant: -1, Port: 40001}
	hdr, peers, err := cc.Client.Announce(ctx, req, udp.Options{}, func(net.Addr) bool { return true })
	var got []netip.AddrPort
	if err == nil {
		for _, p := range peers.NodeAddrs() {
			got = append(got, p.UDP().AddrPort())
		}
	}
	if err != nil || !slices.Contains(got, self) || hdr.Seeders != 1 {
		t.Errorf("IPv6 announce: %v, %+v, peers %v: want %v", err, hdr, got, self)
	}
}

// TestUDPTrackerPortTaken: a node given a fixed port whose UDP side
// another program holds (the DHT off, so the tracker would open it)
// starts without its UDP tracker, says so in the status (no tracker_udp)
// and the torrents (no udp:// tier), and its HTTP tracker answers.
func TestUDPTrackerPortTaken(t *testing.T) {
	var taken net.PacketConn
	var addr string
	for range 20 { // a port free for TCP and UDP, then UDP taken
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
		if taken, err = net.ListenPacket("udp", addr); err == nil {
			break
		}
	}
	if taken == nil {
		t.Fatal("no port free for both TCP and UDP")
	}
	defer taken.Close()
	tn := startTestNodeOpts(t, 2, Options{Listen: addr}, nil)
	if got := tn.node.Addr().String(); got != addr {
		t.Fatalf("listening on %s, want %s", got, addr)
	}
	if u := tn.node.UDPTrackerURL(); u != "" {
		t.Errorf("UDPTrackerURL %q with its port taken, want none", u)
	}
	resp, b := httpGet(t, tn.url+"/lists/demo/status")
	var st Status
	if resp.StatusCode != 200 || json.Unmarshal(b, &st) != nil || st.TrackerUDP != "" || st.Tracker == "" {
		t.Errorf("status: %s, tracker %q, tracker_udp %q: want the HTTP tracker alone", resp.Status, st.Tracker, st.TrackerUDP)
	}
	m := tn.manifest(t)
	day := m.Packs[0]
	mi := fetchTorrent(t, tn, day.File)
	for _, tier := range mi.AnnounceList {
		for _, u := range tier {
			if strings.HasPrefix(u, "udp://") {
				t.Errorf("torrent announces to %s", u)
			}
		}
	}
	if a := announceTo(t, tn.url+"/announce", day.InfoHash, 40001, day.Size, ""); !slices.Contains(a.peers(t), addrPort(t, tn.node.Addr())) {
		t.Errorf("HTTP announce: %+v: want the node among the peers", a)
	}
}

// TestUDPTrackerAnswerFits: with max_numwant set far over it, a UDP
// answer still fits one 1,500-byte datagram with its IP and UDP headers
// (242 IPv4 peers, 79 IPv6 ones), however many peers are stored.
func TestUDPTrackerAnswerFits(t *testing.T) {
	ih := metainfo.Hash{9}
	n := &Node{opts: Options{Tracker: TrackerOptions{MaxNumWant: 1000, MaxPeersPerTorrent: 1000}.withDefaults()}, dirs: map[metainfo.Hash]string{ih: "/x/" + packsDir}}
	n.tracker = newPeerStore(n.opts.Tracker)
	n.ln = fakeListener{addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6881}}
	ut := newUDPTracker(n)
	n.udpTracker = ut
	now := time.Now()
	for i := range 500 {
		ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)}), 6881)
		n.tracker.announce(now, ih, ap, false, false, 0, netip.AddrPort{}, 0)
		ap6 := netip.AddrPortFrom(netip.AddrFrom16([16]byte{0xfd, 14: byte(i >> 8), 15: byte(i)}), 6881)
		n.tracker.announce(now, ih, ap6, false, false, 0, netip.AddrPort{}, 0)
	}
	for _, tc := range []struct {
		from   netip.AddrPort
		v6     bool
		header int
		peers  int
	}{
		{netip.MustParseAddrPort("127.0.0.9:1"), false, 28, 242},
		{netip.MustParseAddrPort("[::1]:1"), true, 48, 79},
	} {
		pkt := append(udpHeader(ut.connID(tc.from, now.Unix()/60), udp.ActionAnnounce, 1), udpAnnounceBody(ih, 0, 6881)...)
		ans := ut.handle(pkt, tc.from, tc.v6)
		size := 6
		if tc.v6 {
			size = 18
		}
		if got := (len(ans) - 20) / size; len(ans)+tc.header > 1500 || got != tc.peers {
			t.Errorf("v6 %v: answer of %d bytes, %d peers: want %d peers within 1,500 bytes", tc.v6, len(ans), got, tc.peers)
		}
	}
}

// TestUDPAddrs: the UDP URL and the node's own peer address, worked out
// once: the listen address, or on every address the HTTP base's host
// (the peer address only when that host is an address); none with the
// tracker off.
func TestUDPAddrs(t *testing.T) {
	for _, tc := range []struct {
		listen net.IP
		base   string
		off    bool
		url    string
		self   string
	}{
		{net.IPv4(127, 0, 0, 3), "http://127.0.0.5:8080/", false, "udp://127.0.0.3:6881/announce", "127.0.0.3:6881"},
		{net.IPv4zero, "http://127.0.0.5:8080/", false, "udp://127.0.0.5:6881/announce", "127.0.0.5:6881"},
		{net.IPv4zero, "http://mirror.example:8080/", false, "udp://mirror.example:6881/announce", ""},
		{net.IPv4zero, "", false, "", ""},
		{net.IPv6loopback, "", false, "udp://[::1]:6881/announce", "[::1]:6881"},
		{net.IPv4(127, 0, 0, 3), "", true, "", ""},
	} {
		n := &Node{opts: Options{WebSeedBase: tc.base}, ln: fakeListener{addr: &net.TCPAddr{IP: tc.listen, Port: 6881}}}
		if !tc.off {
			n.udpTracker = newUDPTracker(n)
		}
		u, self := n.udpAddrs()
		s := ""
		if self.IsValid() {
			s = self.String()
		}
		if u != tc.url || s != tc.self {
			t.Errorf("listen %v, base %q: %q, self %q; want %q, %q", tc.listen, tc.base, u, s, tc.url, tc.self)
		}
	}
}
