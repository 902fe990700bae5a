package swarm

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mailswarm/internal/durable"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/bep44"
	k_nearest_nodes "github.com/anacrolix/dht/v2/k-nearest-nodes"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/dht/v2/traversal"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/bencode"
)

// With the DHT on, a list's newest manifest is announced as a BEP 44
// mutable item under the list's own ed25519 key (no salt): target =
// SHA-1 of the public key, seq = the manifest's sequence, and the value a
// small dictionary pointing at the manifest (BEP 44 values are at most
// 1,000 bytes; a manifest is larger):
//
//	h  the manifest file's sha256 (32 bytes)
//	s  its sequence number
//	u  where to fetch it over HTTP (absent without a web seed base)
//
// A follower that knows only the key finds the newest sequence and hash
// there, fetches the manifest from the URL or its peers, and checks both
// (followdht.go).
//
// Only the origin can sign an item, but BEP 44 lets anyone put a signed
// item again (the signature covers seq and v, not who puts it), and
// stored items expire after two hours unless put again. So every node,
// origin and mirror, keeps the newest signed item it holds (a mirror
// learns it from the DHT and from its HTTP sources' /lists/NAME/dht, and
// keeps it in its swarm directory, file dhtItemFile) and puts it again
// every Options.DHTRePut: the item outlives the origin for as long as one
// node of the list runs.

// Defaults of the DHT item options.
const (
	// DefaultDHTRePut is how often every node puts a list's item again:
	// twice within an item's life (BEP 44: two hours).
	DefaultDHTRePut = time.Hour
	// DefaultDHTRead is how often a follower reads its list's item from
	// the DHT (and once at start): the item is a hint, the HTTP
	// long-poll and peer gossip bring new manifests in seconds.
	DefaultDHTRead = 5 * time.Minute
	// dhtItemFile is the signed item a node holds, in the list's swarm
	// directory (bencode, dhtItem): a restarted mirror puts it again.
	dhtItemFile = "dht"
	// maxDHTItem caps an encoded dhtItem read from a file or a source:
	// a value of at most 1,000 bytes (BEP 44), the 64-byte signature, a
	// sequence number and the keys come to about 1,100 bytes.
	maxDHTItem = 2048
	// maxItemURL caps the pointer's URL: an origin's base URL plus
	// /lists/NAME/manifest.
	maxItemURL = 512
	// dhtOpTimeout bounds a get or put traversal (a node that does not
	// answer costs 2 s, anacrolix/dht's resend delay, and is not asked
	// again).
	dhtOpTimeout = 2 * time.Minute
	// dhtPutTries and dhtPutRetry: a put that reached no node (a node
	// just started, its routing table empty) is tried again, 30 s
	// apart, rather than waiting an hour for the next re-put.
	dhtPutTries = 3
	dhtPutRetry = 30 * time.Second
)

// manifestPointer is the BEP 44 value for m.
type manifestPointer struct {
	Hash []byte `bencode:"h"`
	Seq  int64  `bencode:"s"`
	URL  string `bencode:"u,omitempty"`
}

// dhtItem is a list's BEP 44 item as its key signed it: what any node
// may put again unchanged. Its encoding (the file dhtItemFile, and
// GET /lists/NAME/dht) is the bencoded dictionary {seq, sig, v}, v being
// the value's own bencoding, as in a BEP 44 put.
type dhtItem struct {
	Seq int64         `bencode:"seq"`
	Sig []byte        `bencode:"sig"`
	V   bencode.Bytes `bencode:"v"`
}

// ManifestTarget is the DHT target under which a list's manifest pointer
// is stored: BEP 44's SHA-1 of the public key (no salt).
func ManifestTarget(key ed25519.PublicKey) [20]byte {
	var k [32]byte
	copy(k[:], key)
	p := bep44.Put{K: &k}
	return p.Target()
}

// signItem makes the item pointing at m, signed with priv; url is where m
// is served ("" for none).
func signItem(priv ed25519.PrivateKey, m *Manifest, url string) *dhtItem {
	h := m.Hash()
	v := bencode.MustMarshal(manifestPointer{Hash: h[:], Seq: m.Seq, URL: url})
	return &dhtItem{Seq: m.Seq, Sig: bep44.Sign(priv, nil, m.Seq, v), V: v}
}

// errItem is the class of an item refused: bad encoding, signature or
// value.
var errItem = errors.New("swarm: DHT item refused")

func itemRefused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errItem, fmt.Sprintf(format, args...))
}

// pointer checks it under key and returns the pointer it holds: the
// signature (BEP 44: over seq and v, no salt), a value of at most 1,000
// bytes that is exactly the canonical bencoding of a pointer with a
// 32-byte hash, the item's own sequence (s = seq) and an HTTP URL or
// none.
func (it *dhtItem) pointer(key ed25519.PublicKey) (manifestPointer, error) {
	var p manifestPointer
	if len(key) != ed25519.PublicKeySize {
		return p, itemRefused("no key")
	}
	if len(it.Sig) != ed25519.SignatureSize {
		return p, itemRefused("signature of %d bytes", len(it.Sig))
	}
	if len(it.V) == 0 || len(it.V) > 1000 {
		return p, itemRefused("value of %d bytes", len(it.V))
	}
	if it.Seq < 1 {
		return p, itemRefused("seq %d", it.Seq)
	}
	if !bep44.Verify(key, nil, it.Seq, it.V, it.Sig) {
		return p, itemRefused("seq %d: bad signature for key %x", it.Seq, []byte(key))
	}
	if err := bencode.Unmarshal(it.V, &p); err != nil {
		return p, itemRefused("seq %d: value: %v", it.Seq, err)
	}
	if b, err := bencode.Marshal(p); err != nil || !bytes.Equal(b, it.V) {
		return p, itemRefused("seq %d: value not a canonical pointer", it.Seq)
	}
	if len(p.Hash) != 32 || p.Seq != it.Seq {
		return p, itemRefused("seq %d: pointer with a %d-byte hash and seq %d", it.Seq, len(p.Hash), p.Seq)
	}
	if p.URL != "" && (len(p.URL) > maxItemURL ||
		!(strings.HasPrefix(p.URL, "http://") || strings.HasPrefix(p.URL, "https://"))) {
		return p, itemRefused("seq %d: URL %.60q is not http(s) or too long", it.Seq, p.URL)
	}
	return p, nil
}

// encodeItem is it's canonical bencoding (it has a value: it was made
// or verified here).
func encodeItem(it *dhtItem) []byte { return bencode.MustMarshal(it) }

// decodeItem reads an encoded item (at most maxDHTItem bytes, the one
// canonical encoding) and checks it under key.
func decodeItem(b []byte, key ed25519.PublicKey) (*dhtItem, manifestPointer, error) {
	if len(b) > maxDHTItem {
		return nil, manifestPointer{}, itemRefused("%d bytes, more than %d", len(b), maxDHTItem)
	}
	var it dhtItem
	if err := bencode.Unmarshal(b, &it); err != nil {
		return nil, manifestPointer{}, itemRefused("%v", err)
	}
	// bencode.Marshal, not encodeItem: an empty v does not encode
	// (MustMarshal panicked on "de" from a source: FuzzDecodeItem).
	if e, err := bencode.Marshal(&it); err != nil || !bytes.Equal(e, b) {
		return nil, manifestPointer{}, itemRefused("not the canonical encoding")
	}
	p, err := it.pointer(key)
	if err != nil {
		return nil, p, err
	}
	return &it, p, nil
}

// readItem reads the item held in dir (nil, nil when there is none).
func readItem(dir string, key ed25519.PublicKey) (*dhtItem, error) {
	b, err := os.ReadFile(filepath.Join(dir, dhtItemFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	it, _, err := decodeItem(b, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, dhtItemFile), err)
	}
	return it, nil
}

// manifestURL is where this node serves list's manifest ("" without a
// web seed base).
func (n *Node) manifestURL(list string) string {
	if n.opts.WebSeedBase == "" {
		return ""
	}
	return strings.TrimSuffix(n.opts.WebSeedBase, "/") + "/lists/" + list + "/manifest"
}

// keepItem makes it nl's item when it is newer than the one held, and
// writes it to the list's swarm directory when save is set (a mirror's:
// the origin signs its own again). It reports whether it was newer.
func (n *Node) keepItem(nl *nodeList, it *dhtItem, save bool) (bool, error) {
	n.mu.Lock()
	if nl.item != nil && nl.item.Seq >= it.Seq {
		n.mu.Unlock()
		return false, nil
	}
	nl.item = it
	n.mu.Unlock()
	// In the node's own DHT store at once (no traffic: the others' are
	// renewed by the hourly re-put): a mirror that learnt a newer item
	// over HTTP or from the DHT answers gets with it, so when the origin
	// dies right after a slice, a new mirror bootstrapped from this one
	// finds the newest item, not the one of its last put.
	n.storeItem(nl, it)
	if !save {
		return true, nil
	}
	if err := durable.WriteFile(filepath.Join(nl.dir, dhtItemFile), encodeItem(it), 0o644, !n.opts.NoSync); err != nil {
		return true, fmt.Errorf("swarm: %s: dht item: %w", nl.name, err)
	}
	return true, nil
}

// heldItem returns nl's item and when it was last put (nil before any).
func (n *Node) heldItem(nl *nodeList) (*dhtItem, time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return nl.item, nl.itemPut
}

// dhtServers returns the client's anacrolix DHT servers (none with the
// DHT off).
func (n *Node) dhtServers() []*dht.Server {
	var out []*dht.Server
	for _, s := range n.cl.DhtServers() {
		if w, ok := s.(torrent.AnacrolixDhtServerWrapper); ok {
			out = append(out, w.Server)
		}
	}
	return out
}

// storeItem keeps it, nl's item, in the node's own DHT store (with the
// DHT on), through a wrapper, which checks the item and dates it for
// the expiry.
func (n *Node) storeItem(nl *nodeList, it *dhtItem) {
	if n.dhtStore == nil || len(n.cl.DhtServers()) == 0 {
		return
	}
	var k [32]byte
	copy(k[:], nl.list.PublicKey())
	put := bep44.Put{V: it.V, K: &k, Seq: it.Seq}
	copy(put.Sig[:], it.Sig)
	if err := bep44.NewWrapper(n.dhtStore, n.opts.DHTItemLife).Put(put.ToItem()); err != nil {
		n.log.Debug("swarm: dht item kept", "list", nl.name, "seq", it.Seq, "err", err)
	}
}

// putItem puts nl's item into the DHT from every DHT server of the
// client, in the background (a traversal takes seconds), and notes when.
func (n *Node) putItem(nl *nodeList) {
	it, _ := n.heldItem(nl)
	servers := n.dhtServers()
	if it == nil || len(servers) == 0 {
		return
	}
	var k [32]byte
	copy(k[:], nl.list.PublicKey())
	put := bep44.Put{V: it.V, K: &k, Seq: it.Seq}
	copy(put.Sig[:], it.Sig)
	// In the node's own store first, as anacrolix's Server.Put does
	// before each remote put: a node that reached no other node (the
	// first of a swarm, its bootstrap nodes not up yet) still answers
	// gets with the item (and its expiry there is renewed).
	n.storeItem(nl, it)
	for _, s := range servers {
		n.bg.Go(func() {
			for try := 1; ; try++ {
				ctx, cancel := context.WithTimeout(n.ctx, dhtOpTimeout)
				stored, err := putToClosest(ctx, s, put)
				cancel()
				if err == nil {
					n.mu.Lock()
					nl.itemPut = time.Now().UTC()
					n.mu.Unlock()
					n.log.Debug("swarm: dht item put", "list", nl.name, "seq", it.Seq, "nodes", stored)
					return
				}
				if n.ctx.Err() != nil { // closing
					return
				}
				if try == dhtPutTries {
					n.log.Warn("swarm: dht item put", "list", nl.name, "seq", it.Seq, "tries", try, "err", err)
					return
				}
				sleep(n.ctx, dhtPutRetry)
			}
		})
	}
}

// itemReply is one node's answer to a BEP 44 get for a list's target.
type itemReply struct {
	from krpc.NodeAddr
	k    [32]byte
	it   *dhtItem
}

// itemTraversal walks the DHT from s toward target, asking each node for
// its item (BEP 44 get, no seq: the value always comes), until no closer
// node is left or ctx ends. Every reply carrying a value goes to got
// (called from several goroutines; unchecked: the caller verifies). It
// returns the closest nodes that answered, each with its write token.
//
// Not anacrolix's getput: its traversal dereferences a reply's seq
// without checking it is there, so any node answering with the list's
// key and no seq crashed the process.
func itemTraversal(ctx context.Context, s *dht.Server, target bep44.Target, got func(itemReply)) *k_nearest_nodes.Type {
	op := traversal.Start(traversal.OperationInput{
		Alpha:  15,
		Target: target,
		DoQuery: func(ctx context.Context, addr krpc.NodeAddr) traversal.QueryResult {
			res := s.Get(ctx, dht.NewAddr(addr.UDP()), target, nil, dht.QueryRateLimiting{})
			if r := res.Reply.R; r != nil && r.Seq != nil && len(r.V) > 0 {
				got(itemReply{from: addr, k: r.K, it: &dhtItem{Seq: *r.Seq, Sig: bytes.Clone(r.Sig[:]), V: bytes.Clone(r.V)}})
			}
			tqr := res.TraversalQueryResult(addr)
			// Only nodes that gave a token (a string, BEP 5) can be
			// put to.
			tqr.ClosestData, _ = tqr.ClosestData.(string)
			if tqr.ClosestData == nil {
				tqr.ResponseFrom = nil
			}
			return tqr
		},
		NodeFilter: s.TraversalNodeFilter,
	})
	added := 0
	if nodes, err := s.TraversalStartingNodes(); err == nil {
		added = op.AddNodes(nodes)
	}
	// traversal.Start runs its loop at once, which finds nothing to
	// query and offers "stalled" until the starting nodes come: a stall
	// before any node was asked is not the end. (Taking it was: on
	// loopback, most traversals asked no node at all, and a put after
	// the first went nowhere.)
	for {
		select {
		case <-op.Stalled():
		case <-ctx.Done():
		}
		if ctx.Err() != nil || added == 0 || atomic.LoadUint32(&op.Stats().NumAddrsTried) > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	op.Stop()
	return op.Closest()
}

// putToClosest puts put to the closest nodes to its target that answered a
// get traversal, and returns how many took it. A node holding a newer
// item refuses it (BEP 44: seq lower than current); that is no error.
func putToClosest(ctx context.Context, s *dht.Server, put bep44.Put) (int, error) {
	closest := itemTraversal(ctx, s, put.Target(), func(itemReply) {})
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		stored int
		errs   []error
	)
	closest.Range(func(e k_nearest_nodes.Elem) {
		wg.Go(func() {
			token := e.Data.(string) // only nodes with a token are kept
			res := s.Put(ctx, dht.NewAddr(e.Addr.UDP()), put, token, dht.QueryRateLimiting{})
			mu.Lock()
			defer mu.Unlock()
			if err := res.ToError(); err != nil {
				errs = append(errs, fmt.Errorf("%v: %w", e.Addr, err))
				return
			}
			stored++
		})
	})
	wg.Wait()
	if stored == 0 && len(errs) > 0 {
		return 0, errors.Join(errs...)
	}
	if stored == 0 {
		return 0, errors.New("no DHT node to put to")
	}
	return stored, nil
}

// getItem reads list key's item from the DHT through every DHT server of
// the client and returns the newest that verifies under key (nil when no
// node holds one), with how many replies were refused (another key, a
// bad signature or value).
func (n *Node) getItem(ctx context.Context, key ed25519.PublicKey) (*dhtItem, manifestPointer, int, error) {
	servers := n.dhtServers()
	if len(servers) == 0 {
		return nil, manifestPointer{}, 0, errors.New("the DHT is off")
	}
	target := ManifestTarget(key)
	var (
		mu      sync.Mutex
		best    *dhtItem
		bestP   manifestPointer
		refused int
	)
	for _, s := range servers {
		ctx, cancel := context.WithTimeout(ctx, dhtOpTimeout)
		itemTraversal(ctx, s, target, func(r itemReply) {
			// The node answered for our target: the item must be under
			// our key (the target is its SHA-1) and verify under it.
			var p manifestPointer
			err := itemRefused("from %v: under key %x, not the list's", r.from, r.k[:])
			if bytes.Equal(r.k[:], key) {
				p, err = r.it.pointer(key)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused++
				n.log.Debug("swarm: dht item refused", "from", r.from.String(), "err", err)
				return
			}
			if best == nil || r.it.Seq > best.Seq {
				best, bestP = r.it, p
			}
		})
		cancel()
	}
	mu.Lock()
	defer mu.Unlock()
	return best, bestP, refused, ctx.Err()
}
