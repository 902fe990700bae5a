package swarm

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	pp "github.com/anacrolix/torrent/peer_protocol"
	"golang.org/x/time/rate"
)

// Manifest gossip (docs/SWARM.md, "Gossip"): nodes connected on a list's
// rendezvous torrent (gossip_rendezvous.go) tell each other the newest
// manifest they hold (have, after the extended handshake and whenever
// they apply or publish one), and a follower that hears of a newer one
// fetches it from that peer in pieces (request/data, gossip_msg.go),
// then takes it through the same checks as a manifest read over HTTP
// (takeManifest, offer). A peer is trusted with nothing: what it sends
// is verified against the list's key, and a peer that sends a manifest
// or message refused gets a penalty, as an HTTP source does.

// Gossip tuning.
const (
	// gossipQueue bounds the messages received and not yet handled
	// (the callbacks run under anacrolix's lock and only queue); more
	// are dropped, as a congested peer's would be.
	gossipQueue = 256

	// gossipRedial is how often the peers given as sources are dialed
	// again on the rendezvous torrent when not connected.
	gossipRedial = 10 * time.Second
	// gossipPerList caps the transfers of one list at once (each holds
	// up to maxFollowManifest).
	gossipPerList = 2
	// gossipServeRate bounds the requests answered per peer address:
	// 64 a second of 16 KiB, 1 MiB/s (a 2.3 MiB manifest in about 2 s).
	gossipServeRate  = 64
	gossipServeBurst = 256
	// gossipKnown caps the peer addresses remembered per list (for
	// downloads) and the rate limiters kept.
	gossipKnown = 256
	// gossipUnread bounds the data written to one connection that has
	// not left for the wire: anacrolix queues what we write without a
	// bound of its own, so a peer that requested at the allowed rate and
	// never read made us hold 1 MiB more every second until its 150 s
	// silence timeout. Past it, the peer's requests are dropped (its
	// transfer times out) until it reads. 16 pieces: an honest peer
	// drains them in well under a second.
	gossipUnread = 16 * (gossipPiece + 64)
)

// gossipTimeout is how long a peer may take to answer one request: a
// transfer that stalls longer is torn (a penalty). A variable: tests
// shorten it.
var gossipTimeout = 10 * time.Second

// gossiper runs ms_manifest for a node.
type gossiper struct {
	n  *Node
	in chan gossipIn
	// ltep is the extension map every connection uses: anacrolix's
	// builtin ones and ms_manifest, built from the first connection's.
	ltepOnce sync.Once
	ltep     torrent.LocalLtepProtocolMap
	wg       sync.WaitGroup // transfers
	running  atomic.Bool    // run is running (Node.Run's, or SyncOnce's)

	mu      sync.Mutex
	lists   map[metainfo.Hash]*gossipList
	byNL    map[*nodeList]*gossipList
	limits  map[string]*rate.Limiter // per peer address
	dropped int64                    // messages dropped: queue full
	// out is what was written to each open connection answering
	// requests (gossipUnread): an entry from the connection's
	// PeerConnAdded to its PeerConnClosed, so bounded by the open
	// connections, and a request served after its connection closed
	// finds none and writes nothing. unread counts the requests dropped.
	out    map[*torrent.PeerConn]*gossipOut
	unread int64
}

// gossipOut is the data written to a connection: queued bytes of data
// messages, and the connection's bytes written to the wire when the
// first was queued. queued - (written now - first) is at most what
// waits in anacrolix's queue (other messages written since count as
// drained: keep-alives and haves, a few bytes).
type gossipOut struct {
	first, queued int64
	warned        bool
}

// gossipList is one list's rendezvous torrent and gossip state, guarded
// by gossiper.mu.
type gossipList struct {
	nl   *nodeList
	list string // the list's name in its manifests
	ih   metainfo.Hash
	t    *torrent.Torrent
	// known are the BitTorrent addresses of peers met on the rendezvous
	// torrent (their listen address); heard the newest seq each
	// announced and its connection; xfers the transfers under way, by
	// peer address.
	known   map[string]bool
	spoke   int // haves received
	heard   map[string]heardHave
	xfers   map[string]chan *gossipMsg
	lastDHT time.Time
}

type heardHave struct {
	seq int64
	pc  *torrent.PeerConn
}

// gossipIn is a received message (or hello: the peer's extended
// handshake named ms_manifest) and the peer's address.
type gossipIn struct {
	pc    *torrent.PeerConn
	ih    metainfo.Hash
	peer  string
	hello bool
	msg   []byte
}

func newGossiper(n *Node) *gossiper {
	return &gossiper{n: n, in: make(chan gossipIn, gossipQueue), lists: map[metainfo.Hash]*gossipList{},
		byNL: map[*nodeList]*gossipList{}, limits: map[string]*rate.Limiter{}, out: map[*torrent.PeerConn]*gossipOut{}}
}

// callbacks hooks ms_manifest into the client's connections. They run
// under the client's lock: they only read the connection and queue.
func (g *gossiper) callbacks(cfg *torrent.ClientConfig) {
	cfg.Callbacks.PeerConnAdded = append(cfg.Callbacks.PeerConnAdded, func(pc *torrent.PeerConn) {
		g.ltepOnce.Do(func() {
			g.ltep = torrent.LocalLtepProtocolMap{Index: slices.Clone(pc.LocalLtepProtocolMap.Index), NumBuiltin: pc.LocalLtepProtocolMap.NumBuiltin}
			g.ltep.AddUserProtocol(gossipExt)
		})
		pc.LocalLtepProtocolMap = &g.ltep
		g.connAdded(pc)
	})
	prevClosed := cfg.Callbacks.PeerConnClosed
	cfg.Callbacks.PeerConnClosed = func(pc *torrent.PeerConn) {
		if prevClosed != nil {
			prevClosed(pc)
		}
		g.connClosed(pc)
	}
	cfg.Callbacks.ReadExtendedHandshake = func(pc *torrent.PeerConn, d *pp.ExtendedHandshakeMessage) {
		if _, ok := d.M[gossipExt]; !ok {
			return
		}
		ih := pc.Torrent().InfoHash()
		if g.rendezvous(ih) {
			g.enqueue(gossipIn{pc: pc, ih: ih, peer: peerAddr(pc, d.Port), hello: true})
		}
	}
	cfg.Callbacks.PeerConnReadExtensionMessage = append(cfg.Callbacks.PeerConnReadExtensionMessage, func(ev torrent.PeerConnReadExtensionMessageEvent) {
		if ev.ExtensionNumber == pp.HandshakeExtendedID {
			return
		}
		name, builtin, err := ev.PeerConn.LocalLtepProtocolMap.LookupId(ev.ExtensionNumber)
		if err != nil || builtin || name != gossipExt {
			return
		}
		ih := ev.PeerConn.Torrent().InfoHash()
		if !g.rendezvous(ih) {
			return // not a list of ours: a stranger's message is ignored
		}
		msg := ev.Payload[:min(len(ev.Payload), maxGossipMsg+1)]
		g.enqueue(gossipIn{pc: ev.PeerConn, ih: ih, peer: peerAddr(ev.PeerConn, ev.PeerConn.PeerListenPort), msg: bytes.Clone(msg)})
	})
}

// peerAddr is a connection's peer as an address to dial: the address
// dialed, or for a connection the peer made, its host and the listen
// port its extended handshake gave.
func peerAddr(pc *torrent.PeerConn, port int) string {
	a := pc.RemoteAddr.String()
	if pc.Discovery != torrent.PeerSourceIncoming || port <= 0 || port > 65535 {
		return a
	}
	host, _, err := net.SplitHostPort(a)
	if err != nil {
		return a
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

func (g *gossiper) rendezvous(ih metainfo.Hash) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lists[ih] != nil
}

func (g *gossiper) enqueue(in gossipIn) {
	select {
	case g.in <- in:
	default:
		g.mu.Lock()
		g.dropped++
		g.mu.Unlock()
	}
}

// add adds nl's rendezvous torrent, of the list named list in its
// manifests under key.
func (g *gossiper) add(nl *nodeList, key ed25519.PublicKey, list string) {
	info := rendezvousInfo(key, list)
	ih := metainfo.HashBytes(info)
	t, _ := g.n.cl.AddTorrentOpt(torrent.AddTorrentOpts{InfoHash: ih, InfoBytes: info,
		Storage: newRendezvousStorage(key, list), DisableInitialPieceCheck: true})
	gl := &gossipList{nl: nl, list: list, ih: ih, t: t, known: map[string]bool{},
		heard: map[string]heardHave{}, xfers: map[string]chan *gossipMsg{}}
	g.mu.Lock()
	g.lists[ih] = gl
	g.byNL[nl] = gl
	g.mu.Unlock()
	g.dialGiven(gl)
	g.announceDHT(gl)
}

// dialGiven adds the peers given as sources of a followed list to its
// rendezvous torrent.
func (g *gossiper) dialGiven(gl *gossipList) {
	f := gl.nl.follow
	if f == nil || len(f.peers) == 0 {
		return
	}
	var ps []torrent.PeerInfo
	for _, a := range f.peers {
		if ta, err := net.ResolveTCPAddr("tcp", a); err == nil {
			ps = append(ps, torrent.PeerInfo{Addr: ta, Trusted: true})
		}
	}
	gl.t.AddPeers(ps)
}

// announceDHT announces the rendezvous torrent to the DHT (when on),
// which also finds the list's peers there, at most once per gossipRedial
// (it is called at every sync, and by a follower with no peer at every
// tick: the first, at start, may find the routing table empty).
func (g *gossiper) announceDHT(gl *gossipList) {
	servers := g.n.cl.DhtServers()
	if len(servers) == 0 {
		return
	}
	g.mu.Lock()
	if time.Since(gl.lastDHT) < gossipRedial {
		g.mu.Unlock()
		return
	}
	gl.lastDHT = time.Now()
	g.mu.Unlock()
	g.n.announceSelf(gl.ih)
	for _, s := range servers {
		if _, stop, err := gl.t.AnnounceToDht(s); err == nil {
			time.AfterFunc(5*time.Minute, stop)
		} else {
			g.n.log.Warn("swarm: dht announce", "list", gl.nl.name, "torrent", "rendezvous", "err", err)
		}
	}
}

func (g *gossiper) listOf(nl *nodeList) *gossipList {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.byNL[nl]
}

// peers returns the addresses of the peers met on nl's rendezvous
// torrent.
func (g *gossiper) peers(nl *nodeList) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	gl := g.byNL[nl]
	if gl == nil {
		return nil
	}
	var out []string
	for a := range gl.known {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// announce tells every peer connected on nl's rendezvous torrent that m
// is the newest manifest held here.
func (g *gossiper) announce(nl *nodeList, m *Manifest) {
	gl := g.listOf(nl)
	if gl == nil || m == nil {
		return
	}
	h := m.Hash()
	msg := (&gossipMsg{Type: gossipHave, List: gl.list, Seq: m.Seq, Hash: h[:]}).Encode()
	for _, pc := range gl.t.PeerConns() {
		pc.WriteExtendedMessage(gossipExt, msg) // a peer without ms_manifest: an error, nothing sent
	}
}

// run handles the received messages until ctx ends, then waits for the
// transfers.
func (g *gossiper) run(ctx context.Context) {
	if !g.running.CompareAndSwap(false, true) {
		return // SyncOnce's and Run's: one at a time
	}
	defer g.running.Store(false)
	defer g.wg.Wait()
	tick := time.NewTicker(gossipRedial)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case in := <-g.in:
			g.handle(ctx, in)
		case <-tick.C:
			g.mu.Lock()
			lists := make([]*gossipList, 0, len(g.lists))
			for _, gl := range g.lists {
				lists = append(lists, gl)
			}
			g.mu.Unlock()
			for _, gl := range lists {
				if gl.nl.follow == nil {
					continue
				}
				if gl.t.Stats().ActivePeers == 0 {
					g.dialGiven(gl)
					g.announceDHT(gl)
				}
				g.next(ctx, gl)
			}
		}
	}
}

// handle acts on one received message.
func (g *gossiper) handle(ctx context.Context, in gossipIn) {
	g.mu.Lock()
	gl := g.lists[in.ih]
	if gl != nil && len(gl.known) < gossipKnown {
		gl.known[in.peer] = true
	}
	g.mu.Unlock()
	if gl == nil {
		return
	}
	if in.hello {
		if m := g.n.manifest(gl.nl); m != nil {
			h := m.Hash()
			in.pc.WriteExtendedMessage(gossipExt, (&gossipMsg{Type: gossipHave, List: gl.list, Seq: m.Seq, Hash: h[:]}).Encode())
		}
		return
	}
	m, err := decodeGossip(in.msg)
	if err == nil && m.List != gl.list {
		err = fmt.Errorf("%w: a message for list %q on the rendezvous of %q", errGossipMsg, m.List, gl.list)
	}
	if err != nil {
		g.blame(gl, in.peer, err)
		g.mu.Lock()
		ch := gl.xfers[in.peer]
		g.mu.Unlock()
		if ch != nil {
			select {
			case ch <- nil: // its transfer ends: blamed once, here
			default:
			}
		}
		return
	}
	switch m.Type {
	case gossipHave:
		g.heardHave(ctx, gl, in, m)
	case gossipRequest:
		g.serve(gl, in, m)
	case gossipData, gossipReject:
		g.mu.Lock()
		ch := gl.xfers[in.peer]
		g.mu.Unlock()
		if ch == nil {
			return // not asked for (a transfer that ended): ignored
		}
		select {
		case ch <- m:
		default: // more answers than requests: the transfer refuses the peer
		}
	}
}

// blame gives a follower's gossip source a penalty for err and logs it
// with the peer's address; at a node that follows nothing here, a bad
// message is only logged at debug level.
func (g *gossiper) blame(gl *gossipList, peer string, err error) {
	f := gl.nl.follow
	if f == nil {
		g.n.log.Debug("swarm: gossip: bad message", "list", gl.nl.name, "peer", peer, "err", err)
		return
	}
	f.gossipSource(peer).failed(err, true)
	f.mu.Lock()
	f.st.Refused++
	f.mu.Unlock()
	f.log.Warn("swarm: follow: gossip peer refused", "peer", peer, "err", err)
}

// heardHave records a peer's newest seq and fetches it when newer than
// the newest verified here.
func (g *gossiper) heardHave(ctx context.Context, gl *gossipList, in gossipIn, m *gossipMsg) {
	if gl.nl.follow == nil {
		return // the origin, or a mirror not followed here: nothing to take
	}
	g.mu.Lock()
	gl.spoke++
	if len(gl.heard) < gossipKnown || gl.heard[in.peer].pc != nil {
		gl.heard[in.peer] = heardHave{seq: m.Seq, pc: in.pc}
	}
	g.mu.Unlock()
	g.next(ctx, gl)
}

// next starts transfers from the peers that announced a manifest newer
// than the newest verified here, at most gossipPerList at once and one
// per peer, the highest seq first.
func (g *gossiper) next(ctx context.Context, gl *gossipList) {
	f := gl.nl.follow
	var after int64
	if base := f.newest(); base != nil {
		after = base.Seq
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	type cand struct {
		peer string
		h    heardHave
	}
	var cs []cand
	for p, h := range gl.heard {
		if h.seq > after && gl.xfers[p] == nil && f.gossipSource(p).usable() {
			cs = append(cs, cand{p, h})
		}
	}
	slices.SortFunc(cs, func(a, b cand) int { return cmp.Compare(b.h.seq, a.h.seq) })
	for _, c := range cs {
		if len(gl.xfers) >= gossipPerList || ctx.Err() != nil {
			return
		}
		ch := make(chan *gossipMsg, 2)
		gl.xfers[c.peer] = ch
		delete(gl.heard, c.peer) // asked again only after its next have
		g.wg.Go(func() {
			g.transfer(ctx, gl, c.h.pc, c.peer, c.h.seq, ch)
			g.mu.Lock()
			delete(gl.xfers, c.peer)
			g.mu.Unlock()
			g.next(ctx, gl)
		})
	}
}

// transfer fetches manifest seq from peer piece by piece, takes it
// through the checks every manifest passes and offers it.
func (g *gossiper) transfer(ctx context.Context, gl *gossipList, pc *torrent.PeerConn, peer string, seq int64, ch chan *gossipMsg) {
	f := gl.nl.follow
	src := f.gossipSource(peer)
	base := f.newest()
	if base != nil && base.Seq >= seq {
		return
	}
	var have []byte
	if base != nil {
		h := base.Hash()
		have = h[:]
	}
	fail := func(err error) {
		if ctx.Err() != nil {
			return
		}
		penalty := errors.Is(err, ErrManifest) || errors.Is(err, errGossipMsg)
		src.failed(err, penalty)
		if penalty {
			f.mu.Lock()
			f.st.Refused++
			f.mu.Unlock()
			f.log.Warn("swarm: follow: manifest refused", "peer", peer, "via", "gossip", "seq", seq, "err", err)
		} else {
			f.log.Debug("swarm: follow: gossip transfer", "peer", peer, "seq", seq, "err", err)
		}
	}
	var body []byte
	total, patch := -1, 0
	timer := time.NewTimer(gossipTimeout)
	defer timer.Stop()
	for piece := 0; total < 0 || len(body) < total; piece++ {
		req := &gossipMsg{Type: gossipRequest, List: gl.list, Seq: seq, Piece: piece, Have: have}
		if err := pc.WriteExtendedMessage(gossipExt, req.Encode()); err != nil {
			fail(err)
			return
		}
		timer.Reset(gossipTimeout)
		var m *gossipMsg
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			err := fmt.Errorf("from peer %s: torn: %d of %d bytes, then nothing for %s", peer, len(body), max(total, 0), gossipTimeout)
			if !slices.Contains(gl.t.PeerConns(), pc) {
				fail(fmt.Errorf("%w: the connection closed", err)) // no penalty: the network's doing, maybe
				return
			}
			fail(refused(err))
			return
		case m = <-ch:
		}
		if m == nil {
			return // a bad message from the peer: blamed by handle
		}
		if m.Type == gossipReject {
			return // replaced there meanwhile: its next have names the newer one
		}
		if m.Seq != seq || m.Piece != piece || (total >= 0 && (m.Total != total || m.Patch != patch)) {
			fail(refused(fmt.Errorf("from peer %s: data for seq %d piece %d (total %d), asked for seq %d piece %d", peer, m.Seq, m.Piece, m.Total, seq, piece)))
			return
		}
		if total < 0 {
			total, patch = m.Total, m.Patch
			if patch == 1 && have == nil {
				fail(refused(fmt.Errorf("from peer %s: a patch, but no manifest was named to patch", peer)))
				return
			}
			body = make([]byte, 0, total)
		}
		body = append(body, m.Data...)
	}
	f.mu.Lock()
	f.st.GossipBytes += int64(len(body))
	f.mu.Unlock()
	src.mu.Lock()
	src.ManifestBytes += int64(len(body))
	src.mu.Unlock()
	mf, err := f.takeManifest("peer "+peer, body, patch == 1, base)
	if err == nil {
		if err = f.offer(mf); err == nil {
			src.ok()
			f.mu.Lock()
			f.st.GossipManifests++
			f.mu.Unlock()
			return
		}
	}
	fail(err)
}

// serve answers a request for a piece of the manifest held (or the
// patch to it from the one the requester holds).
func (g *gossiper) serve(gl *gossipList, in gossipIn, req *gossipMsg) {
	g.mu.Lock()
	lim := g.limits[in.peer]
	if lim == nil {
		if len(g.limits) >= gossipKnown {
			clear(g.limits)
		}
		lim = rate.NewLimiter(gossipServeRate, gossipServeBurst)
		g.limits[in.peer] = lim
	}
	g.mu.Unlock()
	if !lim.Allow() {
		return // over its rate: its transfer times out
	}
	reject := func() {
		in.pc.WriteExtendedMessage(gossipExt, (&gossipMsg{Type: gossipReject, List: gl.list, Seq: req.Seq}).Encode())
	}
	m := g.n.manifest(gl.nl)
	if m == nil || m.Seq != req.Seq {
		reject()
		return
	}
	body, patch := m.Bytes(), 0
	if req.Have != nil {
		if p := g.n.patchFor(gl.nl, m, [32]byte(req.Have)); p != nil {
			body, patch = p, 1
		}
	}
	off := req.Piece * gossipPiece
	if off >= len(body) {
		reject()
		return
	}
	data := body[off:min(len(body), off+gossipPiece)]
	msg := (&gossipMsg{Type: gossipData, List: gl.list, Seq: m.Seq, Piece: req.Piece,
		Total: len(body), Patch: patch, Data: data}).Encode()
	if !g.mayWrite(in, len(msg)) {
		return
	}
	in.pc.WriteExtendedMessage(gossipExt, msg)
}

// connAdded and connClosed keep out's entry of pc (callbacks).
func (g *gossiper) connAdded(pc *torrent.PeerConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.out[pc] = &gossipOut{}
}

func (g *gossiper) connClosed(pc *torrent.PeerConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.out, pc)
}

// mayWrite reports whether n more bytes of data may be written to in's
// connection (gossipUnread), and counts them when so; never for a
// closed connection.
func (g *gossiper) mayWrite(in gossipIn, n int) bool {
	g.mu.Lock()
	_, open := g.out[in.pc]
	g.mu.Unlock()
	if !open {
		return false
	}
	st := in.pc.Stats()
	written := st.BytesWritten.Int64()
	g.mu.Lock()
	defer g.mu.Unlock()
	o := g.out[in.pc]
	if o == nil {
		return false // closed meanwhile
	}
	if o.queued == 0 {
		o.first = written
	}
	if o.queued-(written-o.first)+int64(n) > gossipUnread {
		g.unread++
		if !o.warned {
			o.warned = true
			g.n.log.Warn("swarm: gossip: a peer does not read what it requested: its requests are dropped until it does",
				"peer", in.peer, "unread_bytes", o.queued-(written-o.first))
		}
		return false
	}
	o.queued += int64(n)
	return true
}

// onceGossipWait bounds how long SyncOnce waits for the peers of a
// follower with no HTTP source to name their newest manifest.
const onceGossipWait = 15 * time.Second

// syncOnceGossip is SyncOnce for a follower with no HTTP source: it runs
// the gossip until a peer has named its newest manifest and no newer one
// is being fetched (or onceGossipWait passes), then applies the newest
// verified.
func (f *follower) syncOnceGossip(ctx context.Context) error {
	g := f.n.gossip
	gl := g.listOf(f.nl)
	if gl == nil || (len(f.peers) == 0 && len(f.n.cl.DhtServers()) == 0) {
		return fmt.Errorf("swarm: follow %s: no source: no HTTP source, no BitTorrent peer, no DHT", f.nl.name)
	}
	gctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { g.run(gctx); close(done) }()
	defer func() { cancel(); <-done }()
	g.dialGiven(gl)
	g.announceDHT(gl)
	deadline := time.Now().Add(onceGossipWait)
	for {
		var after int64
		if m := f.newest(); m != nil {
			after = m.Seq
		}
		g.mu.Lock()
		settled := gl.spoke > 0 && len(gl.xfers) == 0
		for _, h := range gl.heard {
			settled = settled && h.seq <= after
		}
		g.mu.Unlock()
		if settled {
			break
		}
		if time.Now().After(deadline) {
			if after == 0 {
				return fmt.Errorf("swarm: follow %s: no manifest from the BitTorrent peers %v in %s", f.nl.name, f.peers, onceGossipWait)
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	m, cur := f.newest(), f.current()
	if m == nil || (cur != nil && m.Seq <= cur.Seq) {
		return nil // up to date
	}
	return f.apply(ctx, m)
}
