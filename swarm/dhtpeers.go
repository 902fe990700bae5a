package swarm

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/metainfo"
)

// With the DHT on, every node keeps the peers others announce to it
// (BEP 5 announce_peer) and gives them back to get_peers: anacrolix/dht
// keeps none by default, so a DHT made of mailswarm nodes alone answered
// every get_peers with nothing (and no token: no announce to it could
// succeed), and a mirror given only DHT bootstrap nodes found no peer of
// its list's rendezvous torrent. anacrolix/dht's own InMemory store keys
// a peer by its IP alone and gives back no port: two nodes on one
// address were one, unreachable.
//
// Bounds, for strangers' announces (docs/SECURITY.md, "BitTorrent"), as
// the tracker's (tracker.go): at most dhtPeersPerTorrent peers an
// infohash and dhtPeersTotal in all (a new infohash over it is refused,
// a new peer over its infohash's cap replaces the stalest), each kept
// dhtPeerLife after its last announce (two of our announce rounds),
// get_peers answered with at most dhtPeersAnswer of them (BEP 5's
// values must fit one UDP packet: 6 bytes each for IPv4).
const (
	dhtPeersPerTorrent = 200
	dhtPeersTotal      = 20000
	dhtPeersAnswer     = 50
	dhtPeerLife        = 2 * dhtRefresh
)

// dhtPeers is a DHT server's peer store (peer_store.Interface).
type dhtPeers struct {
	now   func() time.Time
	mu    sync.Mutex
	n     int // peers in all
	swept time.Time
	peers map[metainfo.Hash]map[string]dhtPeer
}

type dhtPeer struct {
	addr krpc.NodeAddr
	seen time.Time
}

func newDHTPeers(now func() time.Time) *dhtPeers {
	return &dhtPeers{now: now, peers: map[metainfo.Hash]map[string]dhtPeer{}}
}

// AddPeer stores (or renews) na as a peer of ih.
func (s *dhtPeers) AddPeer(ih metainfo.Hash, na krpc.NodeAddr) {
	if na.Port <= 0 || na.Port > 65535 || na.IP == nil {
		return
	}
	key := na.String()
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.peers[ih]
	if _, ok := ps[key]; ok {
		ps[key] = dhtPeer{na, now}
		return
	}
	s.expire(ih, now)
	ps = s.peers[ih]
	if s.n >= dhtPeersTotal {
		s.expireAll(now)
		ps = s.peers[ih]
		if s.n >= dhtPeersTotal {
			return // full of live peers: the announce is not kept
		}
	}
	if ps == nil {
		ps = map[string]dhtPeer{}
		s.peers[ih] = ps
	}
	if len(ps) >= dhtPeersPerTorrent {
		var stalest string
		for k, p := range ps {
			if stalest == "" || p.seen.Before(ps[stalest].seen) {
				stalest = k
			}
		}
		delete(ps, stalest)
		s.n--
	}
	ps[key] = dhtPeer{na, now}
	s.n++
}

// GetPeers returns at most dhtPeersAnswer live peers of ih, a random
// choice when there are more.
func (s *dhtPeers) GetPeers(ih metainfo.Hash) []krpc.NodeAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(ih, s.now())
	out := make([]krpc.NodeAddr, 0, min(len(s.peers[ih]), dhtPeersAnswer))
	for _, p := range s.peers[ih] {
		out = append(out, p.addr)
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out[:min(len(out), dhtPeersAnswer)]
}

// expire drops ih's peers not renewed within dhtPeerLife.
func (s *dhtPeers) expire(ih metainfo.Hash, now time.Time) {
	ps := s.peers[ih]
	for k, p := range ps {
		if now.Sub(p.seen) > dhtPeerLife {
			delete(ps, k)
			s.n--
		}
	}
	if ps != nil && len(ps) == 0 {
		delete(s.peers, ih)
	}
}

// expireAll drops every peer not renewed within dhtPeerLife, when the
// store is full: O(peers), so at most once a minute (a stranger's
// stream of new infohashes at a full store costs a map lookup each).
func (s *dhtPeers) expireAll(now time.Time) {
	if now.Sub(s.swept) < time.Minute {
		return
	}
	s.swept = now
	for ih := range s.peers {
		s.expire(ih, now)
	}
}
