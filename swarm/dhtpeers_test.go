package swarm

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/metainfo"
)

// TestDHTPeers: peers kept by address and port (two on one IP are two),
// renewed, expired after dhtPeerLife, at most dhtPeersPerTorrent an
// infohash (the stalest replaced), dhtPeersAnswer an answer, and a new
// infohash refused once dhtPeersTotal live peers are held.
func TestDHTPeers(t *testing.T) {
	clock := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	s := newDHTPeers(func() time.Time { return clock })
	ih := metainfo.Hash{1}
	a := krpc.NodeAddr{IP: net.IPv4(127, 0, 0, 2), Port: 6881}
	b := krpc.NodeAddr{IP: net.IPv4(127, 0, 0, 2), Port: 6882}
	s.AddPeer(ih, a)
	s.AddPeer(ih, b)
	s.AddPeer(ih, a)
	s.AddPeer(ih, krpc.NodeAddr{IP: net.IPv4(127, 0, 0, 3), Port: 0}) // no port: not kept
	if got := s.GetPeers(ih); len(got) != 2 {
		t.Fatalf("peers %v, want %v and %v", got, a, b)
	}
	clock = clock.Add(dhtPeerLife / 2)
	s.AddPeer(ih, a) // renewed
	clock = clock.Add(dhtPeerLife/2 + time.Second)
	if got := s.GetPeers(ih); len(got) != 1 || got[0].String() != a.String() {
		t.Fatalf("after %s: %v, want only the renewed %v", dhtPeerLife, got, a)
	}
	for i := range dhtPeersPerTorrent + 10 {
		clock = clock.Add(time.Millisecond)
		s.AddPeer(ih, krpc.NodeAddr{IP: net.IPv4(127, 1, byte(i>>8), byte(i)), Port: 1000})
	}
	if n := len(s.peers[ih]); n != dhtPeersPerTorrent {
		t.Errorf("%d peers held for one infohash, want the cap %d", n, dhtPeersPerTorrent)
	}
	if _, ok := s.peers[ih][a.String()]; ok {
		t.Errorf("the stalest peer %v was not the one replaced", a)
	}
	if got := s.GetPeers(ih); len(got) != dhtPeersAnswer {
		t.Errorf("answer of %d peers, want %d", len(got), dhtPeersAnswer)
	}
	for i := 0; s.n < dhtPeersTotal; i++ {
		s.AddPeer(metainfo.Hash{2, byte(i >> 8), byte(i)}, krpc.NodeAddr{IP: net.IPv4(127, 2, 0, 1), Port: 1000 + i%dhtPeersPerTorrent})
		if i > 2*dhtPeersTotal {
			t.Fatal("the store never filled")
		}
	}
	s.AddPeer(metainfo.Hash{3}, a)
	if len(s.GetPeers(metainfo.Hash{3})) != 0 || s.n != dhtPeersTotal {
		t.Errorf("a new infohash at a full store: %d peers held, want %d and none for it", s.n, dhtPeersTotal)
	}
	clock = clock.Add(dhtPeerLife + 2*time.Minute)
	s.AddPeer(metainfo.Hash{3}, a) // everything expired: room again
	if got := s.GetPeers(metainfo.Hash{3}); len(got) != 1 {
		t.Errorf("after every peer expired: %v, want %v (%s)", got, a, fmt.Sprint(s.n))
	}
}
