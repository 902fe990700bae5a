package swarm

import (
	"bytes"
	"strconv"
	"testing"
	"time"
)

// TestGossipFollow: a mirror given only the origin's BitTorrent address
// (no HTTP source) follows every slice, a day close and a month close:
// the manifests come over ms_manifest, the .torrent infos over
// ut_metadata, the packs over BitTorrent.
func TestGossipFollow(t *testing.T) {
	clk := &clock{now: day("2026-11-23", 12)}
	tn := startTestNodeOpts(t, 3, Options{SliceInterval: 200 * time.Millisecond, Now: clk.Now}, nil)
	m1 := startTestMirror(t, tn.l.PublicKey(), clk.Now, tn.node.Addr().String())
	runNode(t, tn.node)
	runNode(t, m1.node)
	same := func() bool { return bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m1.a, "demo")) }
	waitFor(t, 30*time.Second, "the first sync over gossip", same)
	for i := range 3 {
		addAt(t, tn.l, 100+i, clk.Now().Add(time.Duration(i)*time.Second))
		waitFor(t, 20*time.Second, "slice "+strconv.Itoa(i), same)
	}
	seq := tn.node.manifest(tn.node.list("demo")).Seq
	clk.set(day("2026-12-01", 0).Add(30 * time.Minute)) // seals 2026-11-23, bundles November
	waitFor(t, 20*time.Second, "the day and month close at the origin", func() bool {
		return tn.node.manifest(tn.node.list("demo")).Seq > seq
	})
	waitFor(t, 30*time.Second, "the day and month close at the mirror", func() bool {
		st, _ := m1.node.FollowStatus("demo")
		return st.Seq == tn.node.manifest(tn.node.list("demo")).Seq && same()
	})
	st := mustFollowStatus(t, m1)
	if st.GossipManifests == 0 || st.GossipBytes == 0 {
		t.Errorf("no manifest came over gossip: %+v", st)
	}
	var peer *SourceStatus
	for i := range st.Sources {
		if st.Sources[i].Gossip {
			peer = &st.Sources[i]
		}
	}
	if peer == nil || peer.ManifestBytes == 0 || peer.Penalties != 0 {
		t.Errorf("no gossip peer in the status, or one with penalties: %+v", st.Sources)
	}
	t.Logf("gossip: %d manifests (%d patches), %d bytes; sources %+v", st.GossipManifests, st.ManifestPatches, st.GossipBytes, st.Sources)
	// The cost of the rendezvous torrent: one connection per peer per
	// list, held; the pack torrents' connections between the two
	// complete nodes are dropped (DropMutuallyCompletePeers stays on).
	rv := RendezvousInfoHash(tn.l.PublicKey(), "demo")
	var packConns, rvConns int
	waitFor(t, 10*time.Second, "the mutually complete pack connections dropped", func() bool {
		packConns, rvConns = 0, 0
		for _, tt := range m1.node.Client().Torrents() {
			if tt.InfoHash() == rv {
				rvConns += len(tt.PeerConns())
			} else {
				packConns += len(tt.PeerConns())
			}
		}
		return packConns == 0 && rvConns == 1
	})
	t.Logf("connections held by the mirror: %d on the rendezvous torrent, %d on %d pack torrents", rvConns, packConns, len(m1.node.Client().Torrents())-1)
}

// TestGossipSyncOnce: `follow --once` with only a BitTorrent peer: the
// sync ends with the origin's export, and a second finds it up to date.
func TestGossipSyncOnce(t *testing.T) {
	tn := startTestNode(t, 3)
	runNode(t, tn.node)
	now := func() time.Time { return tn.now }
	m1 := startTestMirror(t, tn.l.PublicKey(), now, tn.node.Addr().String())
	for range 2 {
		if err := m1.node.SyncOnce(t.Context(), "demo"); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m1.a, "demo")) {
			t.Fatal("mirror export differs from the origin's")
		}
	}
	if st := mustFollowStatus(t, m1); st.GossipManifests != 1 {
		t.Errorf("%d manifests by gossip, want 1", st.GossipManifests)
	}
}
