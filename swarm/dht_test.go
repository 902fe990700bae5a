package swarm

import (
	"bytes"
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
	}
	ih := map[metainfo.Hash]string{}
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
