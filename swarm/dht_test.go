package swarm

import (
	"bytes"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"
	"golang.org/x/time/rate"
)

// With the DHT on, the node announces only its newest torrents (the open
// day's slices, the newest day pack and bundle), never its whole history,
// and stores a signed pointer to its newest manifest under the list's key
// (BEP 44): a DHT node on 127.0.0.1, the only one our node knows, records
// every announce and item it receives.
func TestDHTAnnouncesNewestAndManifest(t *testing.T) {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	announced := map[metainfo.Hash]bool{}
	items := bep44.NewMemory()
	boot, err := dht.NewServer(&dht.ServerConfig{
		Conn:       conn,
		NoSecurity: true,
		PeerStore:  &peer_store.InMemory{}, // a node without one gives no announce tokens
		Store:      items,
		StartingNodes: func() ([]dht.Addr, error) {
			return nil, nil
		},
		OnAnnouncePeer: func(ih metainfo.Hash, ip net.IP, port int, portOk bool) {
			mu.Lock()
			announced[ih] = true
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer boot.Close()

	a, l := testList(t)
	n := 1
	for _, d := range []string{"2026-10-30", "2026-10-31", "2026-11-02", "2026-11-23"} {
		addAt(t, l, n, day(d, 1), day(d, 2))
		n += 2
	}
	node, err := NewNode(a, &Options{DHT: true, DHTBootstrap: []string{conn.LocalAddr().String()},
		Now: func() time.Time { return day("2026-11-23", 12) }, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	if _, err := node.Publish("demo"); err != nil {
		t.Fatal(err)
	}
	m := node.manifest(node.list("demo"))
	want := map[string]bool{
		"demo-e0-2026-11-23-s00001.pack": true, // the open day's slice
		"demo-e0-2026-11-02.pack":        true, // the newest day pack
		"demo-e0-2026-10":                true, // the newest bundle
		"rendezvous":                     true, // the list's rendezvous torrent (gossip.go)
	}
	ih := map[metainfo.Hash]string{RendezvousInfoHash(l.PublicKey(), "demo"): "rendezvous"}
	for _, p := range m.Packs {
		ih[p.InfoHash] = p.File
	}
	for _, b := range m.Bundles {
		ih[b.InfoHash] = b.Name
	}
	deadline := time.Now().Add(30 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		mu.Lock()
		got = got[:0]
		for h := range announced {
			got = append(got, ih[h])
		}
		mu.Unlock()
		if len(got) >= len(want) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // anything more would show now
	mu.Lock()
	got = got[:0]
	for h := range announced {
		got = append(got, ih[h])
	}
	mu.Unlock()
	slices.Sort(got)
	var wantList []string
	for f := range want {
		wantList = append(wantList, f)
	}
	slices.Sort(wantList)
	if !slices.Equal(got, wantList) {
		t.Errorf("announced %v, want %v", got, wantList)
	}

	// The manifest's pointer is a BEP 44 item under the list's key: its
	// sequence and sha256, signed by the list's key.
	var it *bep44.Item
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if it, err = items.Get(ManifestTarget(l.PublicKey())); err == nil {
			break
		}
	}
	if it == nil {
		t.Fatal("no manifest item in the DHT")
	}
	vb, err := bencode.Marshal(it.V)
	if err != nil {
		t.Fatal(err)
	}
	var ptr manifestPointer
	if err := bencode.Unmarshal(vb, &ptr); err != nil {
		t.Fatal(err)
	}
	h := m.Hash()
	if it.Seq != m.Seq || ptr.Seq != m.Seq || !bytes.Equal(ptr.Hash, h[:]) ||
		!bep44.Verify(l.PublicKey(), nil, it.Seq, vb, it.Sig[:]) {
		t.Errorf("item seq %d, pointer %+v; manifest seq %d hash %x", it.Seq, ptr, m.Seq, h)
	}
}

// With the DHT on, the node stores the BEP 44 items others put (for
// two hours), at most dhtMaxItems (lowered to 16 here): after 40 puts of
// distinct items from a DHT node on 127.0.0.1, the last is served and the
// first is gone. Before, every item put was kept in a map without a cap
// and none was ever served: anacrolix/torrent makes its DHT server with
// an expiry of 0, so an item was already expired when read, and deleted
// only then.
func TestDHTItemsCapped(t *testing.T) {
	defer func(n int) { dhtMaxItems = n }(dhtMaxItems)
	dhtMaxItems = 16
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Its own send limiter; the node's replies share anacrolix/dht's
	// global one (250/s, burst 25, a reply over it dropped): the
	// stranger goes at most 100 queries a second.
	stranger, err := dht.NewServer(&dht.ServerConfig{Conn: conn, NoSecurity: true,
		SendLimiter:   rate.NewLimiter(rate.Inf, 0),
		StartingNodes: func() ([]dht.Addr, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	a, l := testList(t)
	addAt(t, l, 1, day("2026-11-23", 1))
	node, err := NewNode(a, &Options{DHT: true, DHTBootstrap: []string{conn.LocalAddr().String()},
		Now: func() time.Time { return day("2026-11-23", 12) }, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	servers := node.Client().DhtServers()
	if len(servers) != 1 {
		t.Fatalf("%d DHT servers", len(servers))
	}
	to := dht.NewAddr(servers[0].Addr().(*net.UDPAddr))
	ctx := t.Context()
	item := func(i int) *bep44.Put { return &bep44.Put{V: fmt.Sprintf("stranger's item %d", i)} }
	get := func(i int) bool {
		r := stranger.Get(ctx, to, item(i).Target(), nil, dht.QueryRateLimiting{})
		if r.Err != nil {
			t.Fatalf("get %d: %v", i, r.Err)
		}
		return r.Reply.R != nil && len(r.Reply.R.V) > 0
	}
	for i := range 40 {
		time.Sleep(20 * time.Millisecond)
		r := stranger.Get(ctx, to, item(i).Target(), nil, dht.QueryRateLimiting{})
		if r.Err != nil || r.Reply.R == nil || r.Reply.R.Token == nil {
			t.Fatalf("get %d for a token: %v", i, r.Err)
		}
		if r := stranger.Put(ctx, to, *item(i), *r.Reply.R.Token, dht.QueryRateLimiting{}); r.Err != nil || r.Reply.E != nil {
			t.Fatalf("put %d: %v %v", i, r.Err, r.Reply.E)
		}
	}
	if !get(39) {
		t.Error("the last item put is not stored")
	}
	if get(0) {
		t.Error("the first of 40 items is still stored with a cap of 16")
	}
}

// The item store never holds more than its cap, whatever mix of puts,
// deletes and puts again of the same targets.
func TestDHTItemsStoreBound(t *testing.T) {
	s := newDHTItems(8)
	for i := range 1000 {
		p := bep44.Put{V: fmt.Sprintf("item %d", i%50)}
		s.Put(p.ToItem())
		if i%3 == 0 {
			q := bep44.Put{V: fmt.Sprintf("item %d", (i+7)%50)}
			s.Del(q.Target())
		}
		if len(s.items) > 8 || len(s.order) > 16 {
			t.Fatalf("after %d puts: %d items, %d places", i+1, len(s.items), len(s.order))
		}
	}
	last := bep44.Put{V: "item 49"}
	if _, err := s.Get(last.Target()); err != nil {
		t.Errorf("the last item put: %v", err)
	}
}
