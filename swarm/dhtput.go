package swarm

import (
	"context"
	"crypto/ed25519"
	"strings"
	"time"

	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/dht/v2/exts/getput"
	"github.com/anacrolix/torrent"
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
// there, fetches the manifest from the URL or its peers, and checks both.

// manifestPointer is the BEP 44 value for m.
type manifestPointer struct {
	Hash []byte `bencode:"h"`
	Seq  int64  `bencode:"s"`
	URL  string `bencode:"u,omitempty"`
}

// ManifestTarget is the DHT target under which a list's manifest pointer
// is stored: BEP 44's SHA-1 of the public key (no salt).
func ManifestTarget(key ed25519.PublicKey) [20]byte {
	var k [32]byte
	copy(k[:], key)
	p := bep44.Put{K: &k}
	return p.Target()
}

// putManifest stores the pointer to m in the DHT from every DHT server of
// the client, in the background (a traversal takes seconds).
func (n *Node) putManifest(nl *nodeList, m *Manifest) {
	servers := n.cl.DhtServers()
	if len(servers) == 0 {
		return
	}
	h := m.Hash()
	v := manifestPointer{Hash: h[:], Seq: m.Seq}
	if base := n.opts.WebSeedBase; base != "" {
		v.URL = strings.TrimSuffix(base, "/") + "/lists/" + nl.name + "/manifest"
	}
	var k [32]byte
	copy(k[:], m.Key)
	put := bep44.Put{V: v, K: &k, Seq: m.Seq}
	put.Sign(nl.origin.priv)
	for _, s := range servers {
		w, ok := s.(torrent.AnacrolixDhtServerWrapper)
		if !ok {
			continue
		}
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			_, err := getput.Put(ctx, put.Target(), w.Server, nil, func(int64) bep44.Put { return put })
			if err != nil {
				n.log.Warn("swarm: dht manifest put", "list", nl.name, "seq", m.Seq, "err", err)
			}
		}()
	}
}
