package swarm

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
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
// one with a peer store: our nodes' DHT servers keep none (anacrolix's
// default), so a DHT of mailswarm nodes alone answers get_peers with no
// peers.
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
