package swarm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailswarm/archive"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
	"github.com/anacrolix/torrent/bencode"
	"golang.org/x/time/rate"
)

// dhtBoot starts a DHT node on 127.0.0.1 keeping BEP 44 items for life in
// store (nil: a plain memory store): the node every node of a test
// bootstraps from.
func dhtBoot(t testing.TB, life time.Duration, store bep44.Store) string {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if store == nil {
		store = bep44.NewMemory()
	}
	s, err := dht.NewServer(&dht.ServerConfig{Conn: conn, NoSecurity: true, PeerStore: &peer_store.InMemory{},
		Store: store, Exp: life, NodeId: loopbackID(), SendLimiter: rate.NewLimiter(dhtSendRate, dhtSendBurst), StartingNodes: func() ([]dht.Addr, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return conn.LocalAddr().String()
}

// loopbackID is a DHT node ID secure (BEP 42) for 127.0.0.1: our nodes
// drop others from their traversals otherwise.
func loopbackID() krpc.ID {
	id := krpc.RandomNodeID()
	dht.SecureNodeId(&id, net.IPv4(127, 0, 0, 1))
	return id
}

// dhtClient is a new DHT node on 127.0.0.1 that knows only boot.
func dhtClient(t testing.TB, boot string) *dht.Server {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ua, err := net.ResolveUDPAddr("udp4", boot)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dht.NewServer(&dht.ServerConfig{Conn: conn, NoSecurity: true, NodeId: loopbackID(),
		SendLimiter:   rate.NewLimiter(dhtSendRate, dhtSendBurst),
		StartingNodes: func() ([]dht.Addr, error) { return []dht.Addr{dht.NewAddr(ua)}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// findItem looks key's item up as a new node would, by a traversal from a
// new DHT node that knows only boot, and returns the newest that verifies
// under key (nil: none found).
func findItem(t testing.TB, boot string, key ed25519.PublicKey) *dhtItem {
	t.Helper()
	s := dhtClient(t, boot)
	defer s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var best *dhtItem
	itemTraversal(ctx, s, ManifestTarget(key), func(r itemReply) {
		if !bytes.Equal(r.k[:], key) {
			return
		}
		if _, err := r.it.pointer(key); err != nil {
			return
		}
		mu.Lock()
		if best == nil || r.it.Seq > best.Seq {
			best = r.it
		}
		mu.Unlock()
	})
	return best
}

// deadURL is an HTTP base on 127.0.0.1 where nothing listens.
func deadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	ln.Close()
	return u
}

// textLog is a logger into w (debug lines too), which the test prints
// when it fails.
func textLog(t testing.TB, w *syncBuffer) *slog.Logger {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", w)
		}
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// The list's BEP 44 item outlives its origin: the origin puts it once,
// a mirror learns it (over HTTP, beside the manifest) and puts it again
// every DHTRePut; the origin is stopped, and after every copy the origin
// put has expired (items live 5 s here, the DHT's two hours made short) a
// new DHT node still finds it. The same run with nobody putting it again
// (DHTRePut an hour) finds nothing: the item found is the mirror's doing.
func TestDHTItemOutlivesOrigin(t *testing.T) {
	const life = 5 * time.Second
	for _, tc := range []struct {
		name  string
		reput time.Duration
		found bool
	}{
		{"mirror puts it again", 500 * time.Millisecond, true},
		{"nobody puts it again", time.Hour, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			boot := dhtBoot(t, life, nil)
			dhtOpts := Options{DHT: true, DHTBootstrap: []string{boot}, DHTItemLife: life, DHTRePut: tc.reput, DHTRead: time.Hour}
			tn := startTestNodeOpts(t, 2, dhtOpts, nil)
			key := tn.l.PublicKey()
			m := tn.manifest(t)
			mo := dhtOpts
			mo.Now = func() time.Time { return tn.now }
			m1 := startMirrorOpts(t, mo, key, tn.url)
			runNode(t, m1.node)
			waitFor(t, 30*time.Second, "the mirror to hold the manifest and its item", func() bool {
				st := mustFollowStatus(t, m1)
				return st.Seq == m.Seq && st.DHTSeq == m.Seq
			})
			waitFor(t, 20*time.Second, "the item in the DHT with the origin up", func() bool {
				it := findItem(t, boot, key)
				return it != nil && it.Seq == m.Seq
			})
			tn.node.Close()
			stopped := time.Now()
			// Every copy the origin put (at its publish, before the
			// mirror started) has expired by now.
			time.Sleep(life + 2*time.Second)
			it := findItem(t, boot, key)
			st := mustFollowStatus(t, m1)
			t.Logf("%.1f s after the origin stopped: item found %v; the mirror's last put %s", time.Since(stopped).Seconds(),
				it != nil, st.DHTPut.Format(time.StampMilli))
			if tc.found {
				if it == nil || it.Seq != m.Seq {
					t.Fatalf("item after the origin's expired: %+v, want seq %d", it, m.Seq)
				}
				if !st.DHTPut.After(stopped) {
					t.Errorf("mirror's last put %v, before the origin stopped %v", st.DHTPut, stopped)
				}
			} else if it != nil {
				t.Fatalf("item seq %d found with nobody putting it again: the test shows nothing", it.Seq)
			}
		})
	}
}

// A follower whose only HTTP source is unreachable learns of the list's
// manifests from the BEP 44 item: it reads the item, fetches the manifest
// from the item's URL (the origin), syncs, and takes the next slice the
// same way. Its status shows the item's seq and where it came from. The
// same with no source at all: the key and a DHT bootstrap node.
func TestDHTFollowerLearnsFromItem(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sources func() []string
	}{
		{"dead source", func() []string { return []string{deadURL(t)} }},
		{"no source", func() []string { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			boot := dhtBoot(t, time.Hour, nil)
			tn := startTestNodeOpts(t, 2, Options{DHT: true, DHTBootstrap: []string{boot}}, nil)
			key := tn.l.PublicKey()
			logs := &syncBuffer{}
			m1 := startMirrorOpts(t, Options{DHT: true, DHTBootstrap: []string{boot}, DHTRead: 300 * time.Millisecond,
				Now: func() time.Time { return tn.now }, Logger: textLog(t, logs)}, key, tc.sources()...)
			runNode(t, m1.node)
			for round := range 2 {
				if round > 0 {
					addAt(t, tn.l, 100, tn.now)
					if _, err := tn.node.Publish("demo"); err != nil {
						t.Fatal(err)
					}
				}
				m := tn.manifest(t)
				waitFor(t, 30*time.Second, "the mirror to take the manifest the item names", func() bool {
					return mustFollowStatus(t, m1).Seq == m.Seq
				})
				st := mustFollowStatus(t, m1)
				if st.DHTSeq != m.Seq || st.DHTFrom != "dht" || st.DHTSeen.IsZero() {
					t.Errorf("round %d: dht_seq %d from %q seen %v; want %d from the DHT", round, st.DHTSeq, st.DHTFrom, st.DHTSeen, m.Seq)
				}
				if !bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m1.a, "demo")) {
					t.Fatalf("round %d: the mirror's export differs from the origin's", round)
				}
			}
			if n := strings.Count(logs.String(), "manifest fetched on a DHT hint"); n < 2 {
				t.Errorf("%d manifests fetched on a DHT hint logged, want 2", n)
			}
		})
	}
}

// With neither its HTTP source nor the item's URL reachable, a follower
// still learns that the manifest exists: its status shows the item's seq
// (its manifest seq stays 0), it logs that it waits for peers, and
// wanted() names the seq and hash for peer gossip to ask for.
func TestDHTHintWithoutSource(t *testing.T) {
	boot := dhtBoot(t, time.Hour, nil)
	a, l := testList(t)
	addAt(t, l, 1, day("2026-11-23", 1))
	now := func() time.Time { return day("2026-11-23", 12) }
	origin, err := NewNode(a, &Options{DHT: true, DHTBootstrap: []string{boot}, WebSeedBase: deadURL(t), NoSync: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer origin.Close()
	if _, err := origin.Publish("demo"); err != nil {
		t.Fatal(err)
	}
	m := origin.manifest(origin.list("demo"))
	logs := &syncBuffer{}
	m1 := startMirrorOpts(t, Options{DHT: true, DHTBootstrap: []string{boot}, DHTRead: 300 * time.Millisecond,
		Now: now, Logger: textLog(t, logs)}, l.PublicKey(), deadURL(t))
	runNode(t, m1.node)
	waitFor(t, 30*time.Second, "the item at the mirror", func() bool { return mustFollowStatus(t, m1).DHTSeq == m.Seq })
	if st := mustFollowStatus(t, m1); st.Seq != 0 {
		t.Errorf("manifest seq %d with no source reachable", st.Seq)
	}
	seq, h := m1.node.list("demo").follow.wanted()
	if seq != m.Seq || h != m.Hash() {
		t.Errorf("wanted() = %d %x, want %d %x", seq, h, m.Seq, m.Hash())
	}
	waitFor(t, 10*time.Second, "the log line", func() bool { return strings.Contains(logs.String(), "waiting for peers") })
}

// forgeStore is a DHT node's item store that answers every get with the
// item it holds altered by forge (when set): a hostile DHT node.
type forgeStore struct {
	bep44.Store
	mu    sync.Mutex
	forge func(*bep44.Item)
}

func (s *forgeStore) Get(t bep44.Target) (*bep44.Item, error) {
	i, err := s.Store.Get(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil || s.forge == nil {
		return i, err
	}
	cp := *i // keeps the time it was stored: the wrapper's expiry
	s.forge(&cp)
	return &cp, nil
}

func (s *forgeStore) set(f func(*bep44.Item)) {
	s.mu.Lock()
	s.forge = f
	s.mu.Unlock()
}

// Forged items are refused. From the DHT (the only DHT node a hostile one
// altering the origin's item): a value signed by another key under the
// list's key, an item under another key, and an item signed by the list's
// key whose hash is not the manifest's at its URL (refused with a penalty
// for that URL's source; nothing synced). Then the honest item: the
// mirror syncs. Over HTTP: a source's /dht signed by another key is
// refused with a penalty.
func TestDHTItemForged(t *testing.T) {
	store := &forgeStore{Store: bep44.NewMemory()}
	boot := dhtBoot(t, time.Hour, store)
	tn := startTestNodeOpts(t, 2, Options{}, nil) // the DHT off: its item is only where the test puts it
	key := tn.l.PublicKey()
	priv := tn.node.list("demo").origin.priv
	m := tn.manifest(t)
	url := tn.url + "/lists/demo/manifest"
	honest := signItem(priv, m, url)
	var k [32]byte
	copy(k[:], key)
	put := bep44.Put{V: honest.V, K: &k, Seq: honest.Seq}
	copy(put.Sig[:], honest.Sig)
	putter := dhtClient(t, boot)
	if n, err := putToClosest(t.Context(), putter, put); err != nil || n == 0 {
		t.Fatalf("put the honest item: %d nodes, %v", n, err)
	}
	putter.Close()

	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub := otherPriv.Public().(ed25519.PublicKey)
	lying := signItem(priv, m, url)
	lying.V = bencode.MustMarshal(manifestPointer{Hash: bytes.Repeat([]byte{7}, 32), Seq: m.Seq, URL: url})
	lying.Sig = bep44.Sign(priv, nil, m.Seq, lying.V)
	forges := []struct {
		name  string
		forge func(*bep44.Item)
	}{
		{"signed by another key", func(i *bep44.Item) {
			copy(i.Sig[:], bep44.Sign(otherPriv, nil, i.Seq, bencode.MustMarshal(i.V)))
		}},
		{"under another key", func(i *bep44.Item) {
			copy(i.K[:], otherPub)
			copy(i.Sig[:], bep44.Sign(otherPriv, nil, i.Seq, bencode.MustMarshal(i.V)))
		}},
	}
	store.set(forges[0].forge)
	logs := &syncBuffer{}
	m1 := startMirrorOpts(t, Options{DHT: true, DHTBootstrap: []string{boot}, DHTRead: 200 * time.Millisecond,
		Now: func() time.Time { return tn.now }, Logger: textLog(t, logs)}, key, deadURL(t))
	runNode(t, m1.node)
	refused := 0
	for _, f := range forges {
		store.set(f.forge)
		waitFor(t, 20*time.Second, f.name+": refused", func() bool { return mustFollowStatus(t, m1).DHTRefused > refused })
		st := mustFollowStatus(t, m1)
		refused = st.DHTRefused
		if st.DHTSeq != 0 || st.Seq != 0 {
			t.Errorf("%s: dht_seq %d, seq %d after a forged item", f.name, st.DHTSeq, st.Seq)
		}
	}

	// Signed by the list's key, but its hash is not the manifest's.
	store.set(func(i *bep44.Item) { i.V, i.Sig = lying.V, [64]byte(lying.Sig) })
	waitFor(t, 20*time.Second, "the manifest at the lying item's URL refused", func() bool {
		return mustFollowStatus(t, m1).Refused > 0
	})
	if w := logs.warned("not the", "the DHT item names", tn.url); len(w) == 0 {
		t.Errorf("no WARN naming the source of the manifest the item lied about:\n%s", logs)
	}
	if st := mustFollowStatus(t, m1); st.Seq != 0 {
		t.Errorf("seq %d taken on a lying item", st.Seq)
	}

	// The honest item: a mirror syncs from its URL (a new one: the
	// first has banned that URL's source for its penalties).
	store.set(nil)
	m3 := startMirrorOpts(t, Options{DHT: true, DHTBootstrap: []string{boot}, DHTRead: 200 * time.Millisecond,
		Now: func() time.Time { return tn.now }}, key, deadURL(t))
	runNode(t, m3.node)
	waitFor(t, 30*time.Second, "the sync on the honest item", func() bool { return mustFollowStatus(t, m3).Seq == m.Seq })

	// Over HTTP: a source whose /dht is signed by another key.
	h := newHostile(t, tn.url)
	h.set(func(h *hostile) {
		h.files = map[string][]byte{"/lists/demo/dht": encodeItem(signItem(otherPriv, m, url))}
	})
	logs2 := &syncBuffer{}
	m2 := startMirrorOpts(t, Options{Now: func() time.Time { return tn.now }, Logger: textLog(t, logs2)}, key, h.url)
	runNode(t, m2.node)
	waitFor(t, 30*time.Second, "the HTTP item refused", func() bool { return mustFollowStatus(t, m2).DHTRefused > 0 })
	st := mustFollowStatus(t, m2)
	if st.DHTSeq != 0 || len(st.Sources) != 1 || st.Sources[0].Penalties == 0 {
		t.Errorf("after a forged /dht: dht_seq %d, sources %+v", st.DHTSeq, st.Sources)
	}
	if w := logs2.warned("dht item refused", h.url, "bad signature"); len(w) == 0 {
		t.Errorf("no WARN naming the source of the forged item:\n%s", logs2)
	}
}

// A mirror learns the item from its HTTP source beside the manifest,
// keeps it in its swarm directory and serves it (GET /lists/NAME/dht)
// exactly as the origin signed it; restarted, it holds it still.
func TestDHTItemOverHTTP(t *testing.T) {
	tn := startTestNodeOpts(t, 2, Options{}, nil)
	key := tn.l.PublicKey()
	m := tn.manifest(t)
	m1 := startTestMirror(t, key, func() time.Time { return tn.now }, tn.url)
	if err := m1.node.SyncOnce(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	_, fromOrigin := httpGet(t, tn.url+"/lists/demo/dht")
	_, fromMirror := httpGet(t, m1.url+"/lists/demo/dht")
	if it, _, err := decodeItem(fromOrigin, key); err != nil || it.Seq != m.Seq {
		t.Fatalf("origin's item: %v", err)
	}
	t.Logf("GET /lists/demo/dht: %d bytes", len(fromOrigin))
	if !bytes.Equal(fromOrigin, fromMirror) {
		t.Errorf("the mirror serves another item than the origin's")
	}
	if st := mustFollowStatus(t, m1); st.DHTSeq != m.Seq {
		t.Errorf("dht_seq %d, want %d", st.DHTSeq, m.Seq)
	}
	it, err := readItem(m1.node.list("demo").dir, key)
	if err != nil || it == nil || !bytes.Equal(encodeItem(it), fromOrigin) {
		t.Errorf("item kept on disk: %v %v", it, err)
	}
}

// decodeItem refuses every item but one the list's key signed, in its one
// encoding, pointing at a manifest of its own seq.
func TestDecodeItem(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key := priv.Public().(ed25519.PublicKey)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	sign := func(seq int64, v any, k ed25519.PrivateKey) []byte {
		vb := bencode.MustMarshal(v)
		return encodeItem(&dhtItem{Seq: seq, V: vb, Sig: bep44.Sign(k, nil, seq, vb)})
	}
	h := bytes.Repeat([]byte{1}, 32)
	good := sign(3, manifestPointer{Hash: h, Seq: 3, URL: "http://127.0.0.1:1/lists/demo/manifest"}, priv)
	if _, p, err := decodeItem(good, key); err != nil || p.Seq != 3 {
		t.Fatalf("decodeItem(good) = %+v, %v", p, err)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"another key", sign(3, manifestPointer{Hash: h, Seq: 3}, other), "bad signature"},
		{"seq differs from the pointer's", sign(3, manifestPointer{Hash: h, Seq: 4}, priv), "seq 4"},
		{"short hash", sign(3, manifestPointer{Hash: h[:20], Seq: 3}, priv), "20-byte hash"},
		{"not a pointer", sign(3, "a string", priv), "value"},
		{"extra key", sign(3, map[string]any{"h": h, "s": 3, "x": 1}, priv), "canonical pointer"},
		{"file URL", sign(3, manifestPointer{Hash: h, Seq: 3, URL: "file:///etc/passwd"}, priv), "not http"},
		{"seq 0", sign(0, manifestPointer{Hash: h, Seq: 0}, priv), "seq 0"},
		{"trailing bytes", append(bytes.Clone(good), 'x'), "refused"},
		{"oversized", append(bytes.Clone(good), make([]byte, maxDHTItem)...), "more than"},
		{"value over 1,000 bytes", sign(3, manifestPointer{Hash: h, Seq: 3, URL: "http://" + strings.Repeat("a", 1000)}, priv), "value of"},
		{"empty", nil, "refused"},
		{"empty dictionary", []byte("de"), "refused"}, // encoding it again panicked
	} {
		if _, _, err := decodeItem(tc.b, key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("decodeItem(%s) = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

func FuzzDecodeItem(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	key := priv.Public().(ed25519.PublicKey)
	m := &Manifest{Seq: 2}
	f.Add(encodeItem(signItem(priv, m, "http://127.0.0.1:1/lists/demo/manifest")))
	f.Add([]byte("d3:seqi1e3:sig0:1:vi0ee"))
	f.Fuzz(func(t *testing.T, b []byte) {
		it, p, err := decodeItem(b, key)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeItem(it), b) || p.Seq != it.Seq || len(p.Hash) != 32 {
			t.Fatalf("decodeItem(%q) took %+v %+v", b, it, p)
		}
	})
}

// seqlessNode is a DHT node on 127.0.0.1 that answers every query, and a
// BEP 44 get with the list's key and a value but no seq: what crashed a
// process through anacrolix's getput (it reads the seq through a nil
// pointer). It counts the gets answered.
func seqlessNode(t testing.TB, key ed25519.PublicKey) (string, *atomic.Int64) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	id := loopbackID()
	var gets atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for range 10000 { // bounded: a test sends far fewer
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			var q krpc.Msg
			if bencode.Unmarshal(buf[:n], &q) != nil || q.Y != "q" {
				continue
			}
			tok := "token"
			r := krpc.Return{ID: id, Token: &tok}
			if q.Q == "get" {
				gets.Add(1)
				copy(r.K[:], key)
				r.V = bencode.MustMarshal(manifestPointer{Hash: make([]byte, 32), Seq: 9})
			}
			b, err := bencode.Marshal(krpc.Msg{T: q.T, Y: "r", R: &r})
			if err == nil {
				conn.WriteTo(b, from)
			}
		}
	}()
	return conn.LocalAddr().String(), &gets
}

// A DHT node answering a get with the list's key and no seq is ignored:
// the follower reads on, and takes nothing.
func TestDHTReplyWithoutSeq(t *testing.T) {
	tn := startTestNodeOpts(t, 1, Options{}, nil)
	key := tn.l.PublicKey()
	boot, gets := seqlessNode(t, key)
	m1 := startMirrorOpts(t, Options{DHT: true, DHTBootstrap: []string{boot}, DHTRead: 100 * time.Millisecond,
		Now: func() time.Time { return tn.now }}, key, deadURL(t))
	runNode(t, m1.node)
	waitFor(t, 20*time.Second, "three gets answered without a seq", func() bool { return gets.Load() >= 3 })
	waitFor(t, 20*time.Second, "three reads", func() bool { return mustFollowStatus(t, m1).DHTReads >= 3 })
	if st := mustFollowStatus(t, m1); st.DHTSeq != 0 || st.Seq != 0 {
		t.Errorf("dht_seq %d, seq %d from a reply without a seq", st.DHTSeq, st.Seq)
	}
}

// A mirror keeps the item it learnt over HTTP (the origin's DHT off: the
// item reaches the DHT only through the mirror) and, restarted with the
// DHT on and its source gone, puts it at once: a new DHT node finds it.
func TestDHTItemPutAfterRestart(t *testing.T) {
	tn := startTestNodeOpts(t, 2, Options{}, nil)
	key := tn.l.PublicKey()
	m := tn.manifest(t)
	dir := t.TempDir()
	spec := []FollowSpec{{List: "demo", Key: key, Sources: []string{tn.url}}}
	now := func() time.Time { return tn.now }
	open := func(opts Options) (*archive.Archive, *Node) {
		a, err := archive.Open(&archive.Options{Dir: dir, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		opts.Follow, opts.NoSync, opts.Now = spec, true, now
		n, err := NewNode(a, &opts)
		if err != nil {
			a.Close()
			t.Fatal(err)
		}
		return a, n
	}
	a, n := open(Options{})
	if err := n.SyncOnce(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	n.Close()
	a.Close()

	boot := dhtBoot(t, time.Hour, nil)
	if it := findItem(t, boot, key); it != nil {
		t.Fatalf("item seq %d in the DHT before the mirror put it", it.Seq)
	}
	spec[0].Sources = []string{deadURL(t)}
	a, n = open(Options{DHT: true, DHTBootstrap: []string{boot}, DHTRead: time.Hour})
	t.Cleanup(func() { a.Close() })
	t.Cleanup(func() { n.Close() })
	runNode(t, n)
	waitFor(t, 20*time.Second, "the kept item in the DHT", func() bool {
		it := findItem(t, boot, key)
		return it != nil && it.Seq == m.Seq
	})
	if st, _ := n.FollowStatus("demo"); st.DHTPut.IsZero() || st.DHTSeq != m.Seq {
		t.Errorf("dht_seq %d, dht_put %v after the restart's put", st.DHTSeq, st.DHTPut)
	}
}
