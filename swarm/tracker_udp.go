package swarm

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mailswarm/internal/netlimit"

	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/tracker/udp"
	"golang.org/x/time/rate"
)

// The node's tracker also speaks UDP (BEP 15) on the BitTorrent listen
// port: udp://HOST:PORT/announce, HOST:PORT the TCP listen address. It
// answers as the HTTP one does (tracker.go): the same peer store and
// bounds, the same rule (only the infohashes of manifests this node
// verified; anything else gets an error packet "unknown infohash").
//
// One socket, not a tracker_udp port: with the DHT on, the DHT already
// owns UDP on the BitTorrent port, and a second port would be one more
// thing to open in firewalls and to name. The two are told apart by the
// first byte (udpTrackerConn): every DHT message is a bencoded
// dictionary, 'd'; a BEP 15 connect starts with the protocol id
// 0x41727101980, byte 0x00, and an announce or scrape with a connection
// id this tracker made, whose first byte it keeps below 0x40 (never 'd',
// 0x64). uTP, the other user of that port in other clients, is off here
// (third_party/go-utp). With the DHT off the tracker opens the UDP port
// itself.
//
// Connection ids (BEP 15, "connect") are not stored: an id is an
// HMAC-SHA256 of the client's address and port and the minute, under a
// secret drawn at start, so a forged or spoofed announce costs one MAC
// and no memory. An id is accepted in its minute and the two after
// (udpConnIDLife: 2 to 3 minutes, BEP 15 asks 2). A packet with an id
// not ours is dropped unanswered: an answer would let a spoofed source
// point the tracker's packets at a victim. Each address (its /64 for
// IPv6, netlimit.ClientKey) gets udpTrackerRate packets a second,
// udpTrackerBurst at once; more are dropped.
//
// anacrolix/torrent's tracker/udp/server was not used (tracker.go says
// why); its protocol constants and layouts (tracker/udp) are.

const (
	// udpConnIDLife is how long a connection id is accepted, in
	// minutes: its own and the two after.
	udpConnIDLife = 3
	// udpTrackerRate and udpTrackerBurst bound one address: a mirror
	// of a year of a list announces about 400 torrents (365 day packs,
	// monthly bundles) at start, a connect and an announce each, then
	// one announce per torrent per interval.
	udpTrackerRate  = 50
	udpTrackerBurst = 1000
	// udpTrackerAddrs bounds the addresses the limiter remembers
	// (about 200 bytes each: 2 MB); past it, those idle long enough to
	// be full again (20 s) are forgotten, and while none is, new
	// addresses share one bucket.
	udpTrackerAddrs = 10_000
	// udpMaxScrape is BEP 15's limit: 74 infohashes fill a 1,500-byte
	// packet.
	udpMaxScrape = 74
	// udpMaxPacket bounds what is read: an announce is 98 bytes, its
	// BEP 41 options at most 255 more; a full scrape 1,496.
	udpMaxPacket = 1500
)

// UDPTrackerStats counts the UDP tracker's packets since start.
type UDPTrackerStats struct {
	Connects, Announces, Scrapes int64
	// Errors are requests answered with an error packet (unknown
	// infohash, bad fields); Dropped the packets not answered:
	// malformed, short, a connection id not ours, over the rate.
	Errors, Dropped int64
}

// udpTracker answers BEP 15 packets for a node. Safe for concurrent use.
type udpTracker struct {
	n      *Node
	secret [32]byte
	now    func() time.Time

	connects, announces, scrapes, errs, dropped atomic.Int64

	mu       sync.Mutex
	limits   map[string]*rate.Limiter
	overflow *rate.Limiter
	swept    time.Time // limits, last
}

func newUDPTracker(n *Node) *udpTracker {
	t := &udpTracker{n: n, now: time.Now, limits: map[string]*rate.Limiter{},
		overflow: rate.NewLimiter(udpTrackerRate, udpTrackerBurst)}
	rand.Read(t.secret[:])
	return t
}

func (t *udpTracker) stats() UDPTrackerStats {
	return UDPTrackerStats{Connects: t.connects.Load(), Announces: t.announces.Load(), Scrapes: t.scrapes.Load(),
		Errors: t.errs.Load(), Dropped: t.dropped.Load()}
}

// UDPTrackerStats returns the UDP tracker's counts (zero when it is off).
func (n *Node) UDPTrackerStats() UDPTrackerStats {
	if n.udpTracker == nil {
		return UDPTrackerStats{}
	}
	return n.udpTracker.stats()
}

// UDPTrackerURL returns this node's UDP announce URL: udp://HOST:PORT/announce,
// HOST the BitTorrent listen address, or when that is every address the
// host of the HTTP base ("" when the tracker is off or there is neither).
func (n *Node) UDPTrackerURL() string { return n.udpURL }

// udpSelf is the node's own peer address for a UDP announce: the listen
// address, or when that is every address the UDP URL's host if it is an
// address (a UDP socket on every address does not say which one a packet
// reached without IP_PKTINFO; docs/SWARM.md "Limits").
func (n *Node) udpSelf() (netip.AddrPort, bool) { return n.udpSelfAddr, n.udpSelfAddr.IsValid() }

// udpAddrs works out UDPTrackerURL and udpSelf once the listener is
// open (they do not change after: NewNode).
func (n *Node) udpAddrs() (string, netip.AddrPort) {
	ip, port, ok := n.listenAddr()
	if n.udpTracker == nil || !ok {
		return "", netip.AddrPort{}
	}
	host := ""
	if ip.IsValid() && !ip.IsUnspecified() {
		host = ip.String()
	} else if u, err := url.Parse(n.opts.WebSeedBase); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	if host == "" {
		return "", netip.AddrPort{}
	}
	u := "udp://" + net.JoinHostPort(host, strconv.Itoa(int(port))) + "/announce"
	self, err := netip.ParseAddr(host)
	if err != nil || self.IsUnspecified() {
		return u, netip.AddrPort{}
	}
	return u, netip.AddrPortFrom(self.Unmap(), port)
}

// connID is the connection id for from in minute m (unix minutes): its
// first byte below 0x40, never the DHT's 'd' (udpTrackerConn).
func (t *udpTracker) connID(from netip.AddrPort, m int64) uint64 {
	mac := hmac.New(sha256.New, t.secret[:])
	var b [8 + 16 + 2]byte
	binary.BigEndian.PutUint64(b[:8], uint64(m))
	a := from.Addr().Unmap().As16()
	copy(b[8:24], a[:])
	binary.BigEndian.PutUint16(b[24:], from.Port())
	mac.Write(b[:])
	id := binary.BigEndian.Uint64(mac.Sum(nil))
	return id &^ (0xc0 << 56)
}

// validID reports whether id is one this tracker gave from in the last
// udpConnIDLife minutes.
func (t *udpTracker) validID(from netip.AddrPort, id uint64, now time.Time) bool {
	m := now.Unix() / 60
	for i := int64(0); i < udpConnIDLife; i++ {
		if hmac.Equal(binary.BigEndian.AppendUint64(nil, t.connID(from, m-i)), binary.BigEndian.AppendUint64(nil, id)) {
			return true
		}
	}
	return false
}

// allow takes a token from from's bucket.
func (t *udpTracker) allow(from netip.AddrPort, now time.Time) bool {
	key := netlimit.ClientKey(from.String())
	t.mu.Lock()
	defer t.mu.Unlock()
	l := t.limits[key]
	if l == nil {
		// The sweep runs once a second at most: addresses spoofed by
		// the thousand (a connect needs no id) would otherwise make
		// every packet a walk of the whole map.
		if len(t.limits) >= udpTrackerAddrs && now.Sub(t.swept) >= time.Second {
			t.swept = now
			for k, v := range t.limits {
				if v.TokensAt(now) >= udpTrackerBurst {
					delete(t.limits, k)
				}
			}
		}
		if len(t.limits) >= udpTrackerAddrs {
			return t.overflow.AllowN(now, 1)
		}
		l = rate.NewLimiter(udpTrackerRate, udpTrackerBurst)
		t.limits[key] = l
	}
	return l.AllowN(now, 1)
}

// udpRequest is a BEP 15 request, parsed.
type udpRequest struct {
	connID uint64
	action udp.Action
	txID   int32
	// announce (its ip is the zero Addr when 0) and scrape
	announce announceReq
	scrape   []metainfo.Hash
}

// errUDPDrop is a packet not answered: too short, or not a request.
var errUDPDrop = errors.New("swarm: udp tracker: malformed packet")

// parseUDPRequest parses a BEP 15 request. A packet too short for its
// header, or a connect without the protocol id, is errUDPDrop; a request
// with a header but bad fields is an errAnnounce, answered with an error
// packet once its connection id checks.
func parseUDPRequest(b []byte) (udpRequest, error) {
	var r udpRequest
	if len(b) < 16 || len(b) > udpMaxPacket {
		return r, errUDPDrop
	}
	r.connID = binary.BigEndian.Uint64(b[0:8])
	r.action = udp.Action(binary.BigEndian.Uint32(b[8:12]))
	r.txID = int32(binary.BigEndian.Uint32(b[12:16]))
	body := b[16:]
	switch r.action {
	case udp.ActionConnect:
		if r.connID != udp.ConnectRequestConnectionId {
			return r, errUDPDrop
		}
		return r, nil
	case udp.ActionAnnounce:
		// BEP 15: infohash, peer id, downloaded, left, uploaded, event,
		// ip, key, num_want, port: 82 bytes; BEP 41 options may follow
		// and are ignored (the URL path they carry names nothing here).
		if len(body) < 82 {
			return r, errAnnounce("announce: short packet")
		}
		a := announceReq{left: -1, numWant: -1}
		copy(a.infoHash[:], body[0:20])
		left := int64(binary.BigEndian.Uint64(body[48:56]))
		if left >= 0 {
			a.left = left
		}
		switch binary.BigEndian.Uint32(body[64:68]) {
		case 0:
		case 1:
			a.event = "completed"
		case 2:
			a.event = "started"
		case 3:
			a.event = "stopped"
		default:
			return r, errAnnounce("event: want 0 to 3")
		}
		if ip := binary.BigEndian.Uint32(body[68:72]); ip != 0 {
			a.ip = netip.AddrFrom4([4]byte(body[68:72]))
		}
		if nw := int32(binary.BigEndian.Uint32(body[76:80])); nw >= 0 {
			a.numWant = int(nw)
		}
		a.port = binary.BigEndian.Uint16(body[80:82])
		if a.port == 0 {
			return r, errAnnounce("port: want 1 to 65535")
		}
		r.announce = a
		return r, nil
	case udp.ActionScrape:
		if len(body) == 0 || len(body)%20 != 0 || len(body)/20 > udpMaxScrape {
			return r, errAnnounce("scrape: want 1 to 74 infohashes")
		}
		for ; len(body) > 0; body = body[20:] {
			r.scrape = append(r.scrape, metainfo.Hash(body[:20]))
		}
		return r, nil
	}
	return r, errAnnounce("unknown action")
}

// handle answers one packet from from; nil is no answer. v6 says the
// packet came over IPv6: an announce is then given IPv6 peers, 18 bytes
// each, otherwise IPv4 ones, 6 bytes each (BEP 15, "IPv6").
func (t *udpTracker) handle(b []byte, from netip.AddrPort, v6 bool) []byte {
	now := t.now()
	if !t.allow(from, now) {
		t.dropped.Add(1)
		return nil
	}
	r, err := parseUDPRequest(b)
	if errors.Is(err, errUDPDrop) {
		t.dropped.Add(1)
		return nil
	}
	if r.action != udp.ActionConnect && !t.validID(from, r.connID, now) {
		t.dropped.Add(1)
		return nil
	}
	if err != nil {
		return t.errorPacket(r.txID, err.Error())
	}
	switch r.action {
	case udp.ActionConnect:
		t.connects.Add(1)
		out := make([]byte, 16)
		binary.BigEndian.PutUint32(out[0:4], uint32(udp.ActionConnect))
		binary.BigEndian.PutUint32(out[4:8], uint32(r.txID))
		binary.BigEndian.PutUint64(out[8:16], t.connID(from, now.Unix()/60))
		return out
	case udp.ActionAnnounce:
		return t.announce(r, from, v6, now)
	case udp.ActionScrape:
		return t.scrape(r)
	}
	return nil
}

func (t *udpTracker) errorPacket(txID int32, msg string) []byte {
	t.errs.Add(1)
	out := make([]byte, 8, 8+len(msg))
	binary.BigEndian.PutUint32(out[0:4], uint32(udp.ActionError))
	binary.BigEndian.PutUint32(out[4:8], uint32(txID))
	return append(out, msg...)
}

func (t *udpTracker) announce(r udpRequest, from netip.AddrPort, v6 bool, now time.Time) []byte {
	n := t.n
	req := r.announce
	fam := 4
	if v6 {
		fam = 6
	}
	// An answer in one unfragmented datagram on a 1,500-byte link:
	// 1,500 less the IP and UDP headers (28 bytes over IPv4, 48 over
	// IPv6) and the answer's own 20, in 6- or 18-byte peers (a
	// configured max_numwant over that is cut: 242 and 79).
	maxWant := (1500 - 28 - 20) / 6
	if v6 {
		maxWant = (1500 - 48 - 20) / 18
	}
	ans, known := n.trackerAnnounce(now, req, from, n.udpSelf, fam, maxWant)
	if !known {
		return t.errorPacket(r.txID, "unknown infohash")
	}
	t.announces.Add(1)
	out := make([]byte, 20, 20+len(ans.peers)*18)
	binary.BigEndian.PutUint32(out[0:4], uint32(udp.ActionAnnounce))
	binary.BigEndian.PutUint32(out[4:8], uint32(r.txID))
	binary.BigEndian.PutUint32(out[8:12], uint32(n.opts.Tracker.Interval/time.Second))
	binary.BigEndian.PutUint32(out[12:16], uint32(ans.leechers))
	binary.BigEndian.PutUint32(out[16:20], uint32(ans.seeders))
	for _, p := range ans.peers {
		if v6 {
			a := p.Addr().As16()
			out = append(out, a[:]...)
		} else {
			a := p.Addr().As4()
			out = append(out, a[:]...)
		}
		out = binary.BigEndian.AppendUint16(out, p.Port())
	}
	return out
}

func (t *udpTracker) scrape(r udpRequest) []byte {
	out := make([]byte, 8, 8+12*len(r.scrape))
	binary.BigEndian.PutUint32(out[0:4], uint32(udp.ActionScrape))
	binary.BigEndian.PutUint32(out[4:8], uint32(r.txID))
	for _, ih := range r.scrape {
		s, ok := t.n.scrapeOne(ih)
		if !ok {
			return t.errorPacket(r.txID, "unknown infohash")
		}
		out = binary.BigEndian.AppendUint32(out, uint32(s.complete))
		out = binary.BigEndian.AppendUint32(out, uint32(s.downloaded))
		out = binary.BigEndian.AppendUint32(out, uint32(s.incomplete))
	}
	t.scrapes.Add(1)
	return out
}

// udpTrackerConn is the UDP socket of the BitTorrent port handed to the
// DHT: it answers the tracker's packets itself and passes the DHT only
// bencoded dictionaries (a first byte 'd'; see the top of this file).
// The tracker's answers are written from the DHT's read loop: an answer
// costs a MAC, a map look-up and one write, no wait.
type udpTrackerConn struct {
	net.PacketConn
	t *udpTracker
}

func (c *udpTrackerConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || n == 0 || p[0] == 'd' {
			return n, addr, err
		}
		c.t.serve(c.PacketConn, p[:n], addr)
	}
}

// serve answers one packet read from pc. A panic is logged and the
// packet counted dropped: the loop it runs in is the DHT's, or the
// tracker's own.
func (t *udpTracker) serve(pc net.PacketConn, b []byte, addr net.Addr) {
	defer func() {
		if r := recover(); r != nil {
			t.dropped.Add(1)
			t.n.log.Error("swarm: udp tracker: panic", "from", addr, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		t.dropped.Add(1)
		return
	}
	from := ua.AddrPort()
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	if ans := t.handle(b, from, from.Addr().Is6()); ans != nil {
		pc.WriteTo(ans, addr)
	}
}

// run reads pc until it is closed: the tracker's own socket, with the
// DHT off.
func (t *udpTracker) run(pc net.PacketConn) {
	buf := make([]byte, udpMaxPacket+1)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// An ICMP error reported on the socket, or the like: the
			// next read may succeed; a pause keeps a lasting error
			// from spinning.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		t.serve(pc, buf[:n], addr)
	}
}
