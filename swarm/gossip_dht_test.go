package swarm

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/int160"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

// testPeerStore is a DHT node's peer store keyed by address:
// anacrolix/dht's InMemory keys a peer by its IP alone and gives back
// the IP without the port (two nodes on 127.0.0.1 are one, unusable).
type testPeerStore struct {
	mu    sync.Mutex
	peers map[metainfo.Hash]map[string]krpc.NodeAddr
}

func (s *testPeerStore) AddPeer(ih metainfo.Hash, na krpc.NodeAddr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.peers[ih] == nil {
		s.peers[ih] = map[string]krpc.NodeAddr{}
	}
	s.peers[ih][na.String()] = na
}

func (s *testPeerStore) GetPeers(ih metainfo.Hash) (out []krpc.NodeAddr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, na := range s.peers[ih] {
		out = append(out, na)
	}
	return out
}

// TestGossipFindsPeersByDHT: a mirror whose only given peer is gone
// finds the list's peers from the key alone: the origin announced the
// list's rendezvous torrent to a DHT node on 127.0.0.1 (the only one
// either node knows), the mirror asks it for that infohash's peers,
// connects, and follows by gossip. The DHT node is a plain anacrolix/dht
// one with a peer store (a DHT not of mailswarm nodes: the public one).
func TestGossipFindsPeersByDHT(t *testing.T) {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var announced atomic.Int64
	a, l := testList(t)
	rv := RendezvousInfoHash(l.PublicKey(), "demo")
	ps := &testPeerStore{peers: map[metainfo.Hash]map[string]krpc.NodeAddr{}}
	boot, err := dht.NewServer(&dht.ServerConfig{
		Conn:          conn,
		NoSecurity:    true,
		PeerStore:     ps,
		StartingNodes: func() ([]dht.Addr, error) { return nil, nil },
		OnAnnouncePeer: func(ih metainfo.Hash, ip net.IP, port int, portOk bool) {
			if ih == rv {
				announced.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer boot.Close()
	addAt(t, l, 1, day("2026-11-22", 1), day("2026-11-23", 1))
	bootAddr := []string{conn.LocalAddr().String()}
	tn := serveArchive(t, a, Options{DHT: true, DHTBootstrap: bootAddr})
	runNode(t, tn.node)
	waitFor(t, 20*time.Second, "the origin's announce of the rendezvous torrent", func() bool { return announced.Load() > 0 })
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone.Close() // a peer given that is not there any more
	now := func() time.Time { return tn.now }
	m1 := startMirrorOpts(t, Options{Now: now, DHT: true, DHTBootstrap: bootAddr}, l.PublicKey(), gone.Addr().String())
	runNode(t, m1.node)
	defer func() {
		if t.Failed() {
			for _, tt := range m1.node.Client().Torrents() {
				if tt.InfoHash() == rv {
					t.Logf("mirror's rendezvous: known %v, stats %+v", tt.KnownSwarm(), tt.Stats().ActivePeers)
				}
			}
			t.Logf("mirror dht: %+v", m1.node.Client().DhtServers()[0].Stats())
			t.Logf("boot has for the rendezvous: %v; origin listens on %v", ps.GetPeers(rv), tn.node.Addr())
		}
	}()
	waitFor(t, 30*time.Second, "the mirror's sync through a peer found in the DHT", func() bool {
		return bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m1.a, "demo"))
	})
	if st := mustFollowStatus(t, m1); st.GossipManifests == 0 {
		t.Errorf("no manifest by gossip: %+v", st)
	}
}

// TestGossipFindsPeersByOurDHT: the same with no DHT node but our own.
// The origin is the only bootstrap node; mirror 1 follows it over HTTP
// (and announces the list's rendezvous torrent to the origin's DHT);
// mirror 2 is given the key, a peer that is gone and the origin's DHT
// address: get_peers of the rendezvous infohash gives it mirror 1 (or
// the origin), and it syncs. Before dhtpeers.go our nodes kept no peers
// and answered get_peers with none. (Mirror 2 may take the manifest from
// the URL in the DHT item, the origin's, which is up: the peers found in
// the DHT are what is checked here.)
func TestGossipFindsPeersByOurDHT(t *testing.T) {
	a, l := testList(t)
	addAt(t, l, 1, day("2026-11-22", 1), day("2026-11-23", 1))
	tn := serveArchive(t, a, Options{DHT: true})
	runNode(t, tn.node)
	boot := []string{tn.node.Addr().String()}
	now := func() time.Time { return tn.now }
	m1 := startMirrorOpts(t, Options{Now: now, DHT: true, DHTBootstrap: boot}, l.PublicKey(), tn.url)
	runNode(t, m1.node)
	waitFor(t, 30*time.Second, "mirror 1's sync over HTTP", func() bool {
		return bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m1.a, "demo"))
	})
	rv := RendezvousInfoHash(l.PublicKey(), "demo")
	gone, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone.Close()
	m2 := startMirrorOpts(t, Options{Now: now, DHT: true, DHTBootstrap: boot}, l.PublicKey(), gone.Addr().String())
	runNode(t, m2.node)
	defer func() {
		if t.Failed() {
			for _, tt := range m2.node.Client().Torrents() {
				if tt.InfoHash() == rv {
					t.Logf("mirror 2's rendezvous: known %v", tt.KnownSwarm())
				}
			}
		}
	}()
	waitFor(t, 60*time.Second, "mirror 2's sync through a peer found in our DHT", func() bool {
		return bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m2.a, "demo"))
	})
	want := map[string]bool{tn.node.Addr().String(): true, m1.node.Addr().String(): true}
	waitFor(t, 30*time.Second, "a peer of the list from get_peers in our DHT", func() bool {
		for _, tt := range m2.node.Client().Torrents() {
			if tt.InfoHash() != rv {
				continue
			}
			for _, p := range tt.KnownSwarm() {
				if p.Source == torrent.PeerSourceDhtGetPeers && want[p.Addr.String()] {
					return true
				}
			}
		}
		return false
	})
}

// TestDHTAnswersWithSelf: a node answers get_peers of the infohashes it
// announces (its list's rendezvous torrent) with its own address, which
// no announce puts there (an announce goes to the nodes nearest the
// infohash, never to the announcer). Measured in TestServeDHTOnly (cmd):
// a new mirror bootstrapped from the one mirror left found it in 0.25 s
// with this, 2.2 s without (then only when the mirror, told of the new
// one's announce, dialed it back).
func TestDHTAnswersWithSelf(t *testing.T) {
	a, l := testList(t)
	addAt(t, l, 1, day("2026-11-23", 1))
	tn := serveArchive(t, a, Options{DHT: true})
	runNode(t, tn.node)
	rv := RendezvousInfoHash(l.PublicKey(), "demo")
	c := dhtClient(t, tn.node.Addr().String())
	udp, err := net.ResolveUDPAddr("udp", tn.node.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	want := tn.node.Addr().String()
	var got []krpc.NodeAddr
	waitFor(t, 20*time.Second, "the node's answer naming itself", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res := c.GetPeers(ctx, dht.NewAddr(udp), int160.FromByteArray(rv), false, dht.QueryRateLimiting{})
		if r := res.Reply.R; r != nil {
			got = r.Values
		}
		for _, p := range got {
			if p.String() == want {
				return true
			}
		}
		return false
	})
	// A stranger's infohash: no self entry.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res := c.GetPeers(ctx, dht.NewAddr(udp), int160.FromByteArray(metainfo.Hash{7}), false, dht.QueryRateLimiting{})
	if r := res.Reply.R; r == nil || len(r.Values) != 0 {
		t.Errorf("get_peers of an infohash the node does not hold: %+v, want an answer with no peers", r)
	}
}
