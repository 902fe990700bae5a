package swarm

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// Every node runs an HTTP tracker (BEP 3, compact answers BEP 23, IPv6
// peers BEP 7) at GET /announce on its HTTP listener: peers of a list
// find each other through any node's tracker, the origin's or a
// mirror's.
//
// It answers only for the infohashes of the manifests this node has
// verified: the torrents it seeds (an origin's own published manifest, a
// mirror's last installed one) and the downloads of a newer manifest it
// has verified and is fetching (Node.dirs holds both). Anything else gets
// the failure reason "unknown infohash": the tracker is no open tracker
// for strangers' files. A retired slice is unknown at once, no grace
// period: its file is gone from packs/ and from HTTP (404), no node seeds
// it, and its objects are in the day pack that replaced it.
//
// The node lists itself as a seeder of what it seeds. The peers it stores
// are bounded per torrent and in all, forgotten 2×Interval after their
// last announce, and given as they reached us: the connection's address
// and the announced port. The "ip" key is taken only from a loopback
// client (a proxy or a test on the same host, as opentracker and
// libtorrent's own tests trust only a configured proxy): from anyone else
// it would let one client enter others' addresses, making the tracker a
// tool to point peers at a victim.
//
// The anacrolix/torrent tracker server packages were not used: the HTTP
// one answers every refusal with an HTTP 500 instead of a BEP 3 failure
// reason, ignores numwant and logs each bad request on slog.Default at
// ERROR; its UDP one (BEP 15) sends no error packet for an unknown
// infohash and logs the same way. The node's own UDP tracker is in
// tracker_udp.go, scrape for both in tracker_scrape.go.

// TrackerOptions configures a node's tracker. The zero value is a
// tracker with the defaults below.
type TrackerOptions struct {
	// Off turns the tracker off: GET /announce is 404 and the torrents
	// served name no tracker of this node.
	Off bool
	// Interval is the announce interval told to peers (0:
	// DefaultTrackerInterval); MinInterval the "min interval" (0:
	// DefaultTrackerMinInterval, never above Interval). A peer not heard
	// from for 2×Interval is forgotten.
	Interval, MinInterval time.Duration
	// MaxPeersPerTorrent (0: DefaultTrackerMaxPeersPerTorrent) and
	// MaxPeers (0: DefaultTrackerMaxPeers) bound the peers stored; a new
	// peer over either is answered but not stored until others expire.
	MaxPeersPerTorrent, MaxPeers int
	// MaxNumWant caps the peers in one answer whatever numwant asks (0:
	// DefaultTrackerMaxNumWant).
	MaxNumWant int
}

// The defaults of TrackerOptions.
const (
	// DefaultTrackerInterval is BitTorrent's usual 30 minutes: a peer
	// costs the tracker one request per torrent per interval.
	DefaultTrackerInterval    = 30 * time.Minute
	DefaultTrackerMinInterval = time.Minute
	// DefaultTrackerMaxPeersPerTorrent and DefaultTrackerMaxPeers bound
	// the store at about 100 bytes a peer: 10 MB in all at most.
	DefaultTrackerMaxPeersPerTorrent = 1000
	DefaultTrackerMaxPeers           = 100_000
	// DefaultTrackerMaxNumWant is BEP 3's default numwant (50); a
	// client asking more gets 50: 300 bytes of compact IPv4 peers.
	DefaultTrackerMaxNumWant = 50
	// maxAnnounceQuery bounds an announce's query string: a real one
	// (info_hash and peer_id escaped, port, uploaded, downloaded, left,
	// event, key, numwant, compact) is about 250 bytes.
	maxAnnounceQuery = 2048
)

func (o TrackerOptions) withDefaults() TrackerOptions {
	if o.Interval <= 0 {
		o.Interval = DefaultTrackerInterval
	}
	if o.MinInterval <= 0 {
		o.MinInterval = DefaultTrackerMinInterval
	}
	o.MinInterval = min(o.MinInterval, o.Interval)
	if o.MaxPeersPerTorrent <= 0 {
		o.MaxPeersPerTorrent = DefaultTrackerMaxPeersPerTorrent
	}
	if o.MaxPeers <= 0 {
		o.MaxPeers = DefaultTrackerMaxPeers
	}
	if o.MaxNumWant <= 0 {
		o.MaxNumWant = DefaultTrackerMaxNumWant
	}
	return o
}

// TrackerURL returns this node's announce URL, the HTTP base's /announce
// ("" when the tracker is off or the node has no HTTP base).
func (n *Node) TrackerURL() string {
	if n.opts.Tracker.Off || n.opts.WebSeedBase == "" {
		return ""
	}
	return trackerOf(n.opts.WebSeedBase)
}

// trackerOf is the announce URL of the node whose HTTP base (or list
// URL, BASE/lists/NAME) is base: BASE/announce, the path libtorrent
// accepts for a tracker on a local address (its SSRF mitigation refuses
// others). A base with a path (a node behind a proxy under a prefix)
// keeps it. "" when base is no http(s) URL.
func trackerOf(base string) string {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	p := u.Path
	if i := strings.LastIndex(p, "/lists/"); i >= 0 && !strings.Contains(p[i+len("/lists/"):], "/") {
		p = p[:i]
	}
	return u.Scheme + "://" + u.Host + p + "/announce"
}

// clientTrackers are the trackers the node's own client announces list's
// torrents to: the configured ones and those of the nodes it follows the
// list from (its HTTP sources), so that any of their trackers knows this
// node as a seeder.
func (n *Node) clientTrackers(nl *nodeList) []string {
	out := append([]string(nil), n.opts.Trackers...)
	if nl.follow != nil {
		for _, s := range nl.follow.spec.Sources {
			if tr := trackerOf(s); tr != "" && !containsString(out, tr) {
				out = append(out, tr)
			}
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// trackerTorrent reports whether ih is named by a manifest this node has
// verified (known), and whether the node seeds it (its file is in a
// list's packs/, not a download under way in incoming/).
func (n *Node) trackerTorrent(ih metainfo.Hash) (known, seeding bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	dir, ok := n.dirs[ih]
	return ok, ok && filepath.Base(dir) == packsDir
}

// selfPeer is the node's own BitTorrent address as the client of r should
// dial it: the listen address, or, when that is every address (0.0.0.0,
// ::), the address r reached the HTTP listener on with the BitTorrent
// port.
func (n *Node) selfPeer(r *http.Request) (netip.AddrPort, bool) {
	ip, port, ok := n.listenAddr()
	if !ok {
		return netip.AddrPort{}, false
	}
	if !ip.IsValid() || ip.IsUnspecified() {
		la, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if la == nil {
			return netip.AddrPort{}, false
		}
		ap, err := netip.ParseAddrPort(la.String())
		if err != nil {
			return netip.AddrPort{}, false
		}
		ip = ap.Addr().Unmap()
	}
	return netip.AddrPortFrom(ip, port), ip.IsValid() && !ip.IsUnspecified()
}

// listenAddr is the BitTorrent listen address (IPv4 unmapped) and port.
func (n *Node) listenAddr() (netip.Addr, uint16, bool) {
	ta, ok := n.ln.Addr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, 0, false
	}
	ip, _ := netip.AddrFromSlice(ta.IP)
	return ip.Unmap(), uint16(ta.Port), true
}

// announceReq is an announce's query, parsed.
type announceReq struct {
	infoHash metainfo.Hash
	port     uint16
	left     int64  // -1 when not given
	event    string // "", "started", "completed", "stopped"
	numWant  int    // -1 when not given
	ip       netip.Addr
}

// errAnnounce is an announce refused; its text is the failure reason.
type errAnnounce string

func (e errAnnounce) Error() string { return string(e) }

// parseAnnounce parses an announce's raw query string (BEP 3): info_hash
// (20 bytes, URL-escaped) and port are required, left, event, numwant
// and ip optional; other keys (peer_id, uploaded, downloaded, key,
// compact, no_peer_id, trackerid) are ignored.
func parseAnnounce(raw string) (announceReq, error) {
	req := announceReq{left: -1, numWant: -1}
	if len(raw) > maxAnnounceQuery {
		return req, errAnnounce("request too long")
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return req, errAnnounce("bad query")
	}
	one := func(k string) (string, bool, error) {
		v := q[k]
		switch len(v) {
		case 0:
			return "", false, nil
		case 1:
			return v[0], true, nil
		}
		return "", false, errAnnounce(k + " given twice")
	}
	ih, ok, err := one("info_hash")
	if err != nil {
		return req, err
	}
	if !ok || len(ih) != 20 {
		return req, errAnnounce("info_hash: want 20 bytes")
	}
	copy(req.infoHash[:], ih)
	ps, _, err := one("port")
	if err != nil {
		return req, err
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || p == 0 {
		return req, errAnnounce("port: want 1 to 65535")
	}
	req.port = uint16(p)
	if s, ok, err := one("left"); err != nil {
		return req, err
	} else if ok {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return req, errAnnounce("left: want a number of bytes")
		}
		req.left = v
	}
	if s, _, err := one("event"); err != nil {
		return req, err
	} else {
		switch s {
		case "", "started", "completed", "stopped":
			req.event = s
		case "empty": // BEP 15's name for none, sent by some clients over HTTP too
		default:
			return req, errAnnounce("event: want started, completed or stopped")
		}
	}
	if s, ok, err := one("numwant"); err != nil {
		return req, err
	} else if ok {
		v, err := strconv.Atoi(s)
		if err != nil {
			return req, errAnnounce("numwant: want a number")
		}
		if v >= 0 { // some clients send -1 for "the default"
			req.numWant = v
		}
	}
	// ip may come once per address family (anacrolix sends one for
	// each, BEP 7): the first that parses. A host name is not looked
	// up: an address or nothing.
	for _, s := range q["ip"] {
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			req.ip = a.Unmap()
			break
		}
	}
	return req, nil
}

// serveAnnounce answers GET /announce?... (BEP 3, BEP 23, BEP 7). Every
// answer is 200 with a bencoded dictionary, a refusal one with a
// "failure reason" as BEP 3 has it (clients show it).
func (n *Node) serveAnnounce(w http.ResponseWriter, r *http.Request) {
	if n.opts.Tracker.Off {
		http.NotFound(w, r)
		return
	}
	req, err := parseAnnounce(r.URL.RawQuery)
	if err != nil {
		trackerFailure(w, err.Error())
		return
	}
	remote, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		trackerFailure(w, "no client address")
		return
	}
	ans, known := n.trackerAnnounce(time.Now(), req, remote, func() (netip.AddrPort, bool) { return n.selfPeer(r) }, 0, n.opts.Tracker.MaxNumWant)
	if !known {
		trackerFailure(w, "unknown infohash")
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(ans.encode(n.opts.Tracker))
}

// trackerAnnounce answers an announce over HTTP or UDP: the peer store's
// answer to req from remote, false when no manifest this node verified
// names req's infohash. A loopback client may name its address (ip=);
// the node itself is among the peers when it seeds (self, called only
// then); fam 4 or 6 gives peers of that family alone, 0 both; at most
// maxWant peers, and never more than max_numwant.
func (n *Node) trackerAnnounce(now time.Time, req announceReq, remote netip.AddrPort, self func() (netip.AddrPort, bool), fam, maxWant int) (announceAnswer, bool) {
	known, seeding := n.trackerTorrent(req.infoHash)
	if !known {
		return announceAnswer{}, false
	}
	ip := remote.Addr().Unmap()
	if req.ip.IsValid() && ip.IsLoopback() {
		ip = req.ip
	}
	peer := netip.AddrPortFrom(ip, req.port)
	want := min(n.opts.Tracker.MaxNumWant, maxWant)
	if req.numWant >= 0 && req.numWant < want {
		want = req.numWant
	}
	var sp netip.AddrPort
	if seeding {
		if a, ok := self(); ok && a != peer {
			sp = a
		}
	}
	seed := req.left == 0 || req.event == "completed"
	return n.tracker.announce(now, req.infoHash, peer, seed, req.event == "stopped", want, sp, fam), true
}

// trackerFailure writes a BEP 3 failure.
func trackerFailure(w http.ResponseWriter, reason string) {
	var b bytes.Buffer
	b.WriteString("d14:failure reason")
	bencodeString(&b, reason)
	b.WriteString("e")
	w.Header().Set("Content-Type", "text/plain")
	w.Write(b.Bytes())
}

func bencodeString(b *bytes.Buffer, s string) {
	b.WriteString(strconv.Itoa(len(s)))
	b.WriteByte(':')
	b.WriteString(s)
}

func bencodeInt(b *bytes.Buffer, key string, v int64) {
	bencodeString(b, key)
	b.WriteByte('i')
	b.WriteString(strconv.FormatInt(v, 10))
	b.WriteByte('e')
}

// announceAnswer is what the tracker answers an announce with.
type announceAnswer struct {
	peers             []netip.AddrPort
	seeders, leechers int
}

// encode is the answer's bencoded dictionary, its keys sorted: complete,
// incomplete, interval, min interval, peers (BEP 23: 6 bytes an IPv4
// peer), peers6 (BEP 7: 18 bytes an IPv6 peer). It is compact whatever
// the client asks: BEP 23 lets a tracker answer compact to a client
// asking compact=0, as most do.
func (a announceAnswer) encode(o TrackerOptions) []byte {
	var v4, v6 []byte
	for _, p := range a.peers {
		port := []byte{byte(p.Port() >> 8), byte(p.Port())}
		if p.Addr().Is4() {
			ip := p.Addr().As4()
			v4 = append(append(v4, ip[:]...), port...)
		} else {
			ip := p.Addr().As16()
			v6 = append(append(v6, ip[:]...), port...)
		}
	}
	var b bytes.Buffer
	b.WriteByte('d')
	bencodeInt(&b, "complete", int64(a.seeders))
	bencodeInt(&b, "incomplete", int64(a.leechers))
	bencodeInt(&b, "interval", int64(o.Interval/time.Second))
	bencodeInt(&b, "min interval", int64(o.MinInterval/time.Second))
	bencodeString(&b, "peers")
	bencodeString(&b, string(v4))
	if len(v6) > 0 {
		bencodeString(&b, "peers6")
		bencodeString(&b, string(v6))
	}
	b.WriteByte('e')
	return b.Bytes()
}

// peerStore holds the peers that announced, per infohash, bounded per
// torrent and in all; a peer expires ttl after its last announce. Safe
// for concurrent use.
type peerStore struct {
	maxPer, maxTotal int
	ttl              time.Duration

	mu       sync.Mutex
	torrents map[metainfo.Hash]*trackerSwarm
	total    int
	// done counts, per infohash, the stored leechers that announced as
	// seeders (scrape's "downloaded"), each peer once while stored,
	// kept while the infohash is known to the node (forget): bounded by
	// the manifests it verified. Not the "completed" events themselves:
	// a peer repeating one would count each time.
	done  map[metainfo.Hash]int64
	swept time.Time // the whole store, last
}

type trackerSwarm struct {
	peers map[netip.AddrPort]trackerPeer
	swept time.Time
}

type trackerPeer struct {
	seen time.Time
	seed bool
	// counted: this peer's download was counted (done); a peer going
	// back and forth between leecher and seeder counts once.
	counted bool
}

func newPeerStore(o TrackerOptions) *peerStore {
	return &peerStore{maxPer: o.MaxPeersPerTorrent, maxTotal: o.MaxPeers, ttl: 2 * o.Interval,
		torrents: map[metainfo.Hash]*trackerSwarm{}, done: map[metainfo.Hash]int64{}}
}

// errStoreFull is a peer not stored: a cap is reached.
var errStoreFull = errors.New("swarm: tracker: peer store full")

// announce records peer's announce for ih (or forgets it when stopped)
// and returns up to want other peers: self first when valid (the node,
// seeding), then stored ones in Go's random map order; a seeder is given
// only leechers (seeders have nothing to give each other). fam 4 or 6
// gives only peers of that address family (a UDP answer has one size of
// peer, BEP 15), 0 both. The counts are of the torrent's live peers,
// self included. A stored leecher announcing as a seeder counts a
// download (scrape's "downloaded").
func (s *peerStore) announce(now time.Time, ih metainfo.Hash, peer netip.AddrPort, seed, stopped bool, want int, self netip.AddrPort, fam int) announceAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	family := func(a netip.AddrPort) bool {
		return fam == 0 || (fam == 4) == a.Addr().Is4()
	}
	sw := s.torrents[ih]
	if sw != nil && now.Sub(sw.swept) >= time.Second {
		s.sweep(ih, sw, now)
		sw = s.torrents[ih]
	}
	counted := false
	if sw != nil && !stopped {
		if p, ok := sw.peers[peer]; ok && now.Sub(p.seen) <= s.ttl {
			counted = p.counted
			if seed && !p.seed && !counted {
				s.done[ih]++
				counted = true
			}
		}
	}
	if stopped {
		if sw != nil {
			if _, ok := sw.peers[peer]; ok {
				delete(sw.peers, peer)
				s.total--
			}
		}
	} else if err := s.put(ih, peer, trackerPeer{seen: now, seed: seed, counted: counted}, now); err == nil {
		sw = s.torrents[ih]
	}
	var a announceAnswer
	if self.IsValid() {
		a.seeders++
		if want > 0 && !seed && family(self) {
			a.peers = append(a.peers, self)
		}
	}
	if sw == nil {
		return a
	}
	for addr, p := range sw.peers {
		if now.Sub(p.seen) > s.ttl {
			continue
		}
		if p.seed {
			a.seeders++
		} else {
			a.leechers++
		}
		if addr == peer || addr == self || len(a.peers) >= want || (seed && p.seed) || !family(addr) {
			continue
		}
		a.peers = append(a.peers, addr)
	}
	if len(sw.peers) == 0 {
		delete(s.torrents, ih)
	}
	return a
}

// put stores or refreshes a peer; a new one over a cap is refused (once
// a minute at most, the whole store is swept first to make room).
func (s *peerStore) put(ih metainfo.Hash, addr netip.AddrPort, p trackerPeer, now time.Time) error {
	sw := s.torrents[ih]
	if sw != nil {
		if _, ok := sw.peers[addr]; ok {
			sw.peers[addr] = p
			return nil
		}
		if len(sw.peers) >= s.maxPer {
			return errStoreFull
		}
	}
	if s.total >= s.maxTotal && now.Sub(s.swept) >= time.Minute {
		s.swept = now
		for h, t := range s.torrents {
			s.sweep(h, t, now)
		}
		sw = s.torrents[ih]
	}
	if s.total >= s.maxTotal {
		return errStoreFull
	}
	if sw == nil {
		sw = &trackerSwarm{peers: map[netip.AddrPort]trackerPeer{}, swept: now}
		s.torrents[ih] = sw
	}
	sw.peers[addr] = p
	s.total++
	return nil
}

// sweep drops sw's expired peers, and sw when it has none left.
func (s *peerStore) sweep(ih metainfo.Hash, sw *trackerSwarm, now time.Time) {
	sw.swept = now
	for a, p := range sw.peers {
		if now.Sub(p.seen) > s.ttl {
			delete(sw.peers, a)
			s.total--
		}
	}
	if len(sw.peers) == 0 {
		delete(s.torrents, ih)
	}
}

// count returns how many peers the store holds (tests).
func (s *peerStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}
