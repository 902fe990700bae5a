package swarm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"mailswarm/archive"
	"mailswarm/internal/netlimit"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
	"github.com/anacrolix/torrent/storage"
	"golang.org/x/time/rate"
)

// sliceLinger is how long new mail of a list that has not been published
// for a whole slice interval waits before it is cut: a burst lands in one
// slice.
const sliceLinger = time.Second

// dhtRefresh is how often DHT announces are renewed (the BEP 44 item is
// put again every Options.DHTRePut, dhtput.go).
const dhtRefresh = 25 * time.Minute

// dhtSendRate and dhtSendBurst limit what a node's DHT sends: anacrolix's
// rate, with room for a publish's burst of announces and put.
const (
	dhtSendRate  = 250
	dhtSendBurst = 100
)

// DefaultSliceInterval is how often an open day's new mail is cut into a
// slice.
const DefaultSliceInterval = time.Minute

// Options configures a Node. The zero value seeds on 127.0.0.1 at a free
// port with no DHT, no trackers and no web seed.
type Options struct {
	// Listen is the BitTorrent TCP address, host:port; port 0 picks a free
	// one. Empty means "127.0.0.1:0".
	Listen string
	// DHT joins the mainline DHT (off by default); DHTBootstrap are
	// host:port nodes to start from (empty: anacrolix's defaults).
	DHT          bool
	DHTBootstrap []string
	// DHTRePut is how often every list's newest signed BEP 44 item (an
	// origin's own, the one a mirror holds) is put into the DHT again;
	// zero means DefaultDHTRePut. DHTItemLife is how long this node
	// keeps the items others put here; zero means two hours (BEP 44).
	// DHTRead is how often a follower reads its list's item from the
	// DHT, and once at start; zero means DefaultDHTRead. For tests: the
	// configuration file does not set them.
	DHTRePut, DHTItemLife, DHTRead time.Duration
	// Trackers are announce URLs added to every torrent.
	Trackers []string
	// WebSeedBase is the origin's HTTP base URL (for example
	// "http://127.0.0.1:8080"): every torrent served carries
	// WebSeedBase/lists/NAME/packs/ as its BEP 19 web seed. Empty: none.
	WebSeedBase string
	// UploadRate limits upload in bytes per second; 0 means unlimited.
	UploadRate int64
	// SliceInterval is how often new mail of an open day is cut into a
	// slice; zero means DefaultSliceInterval.
	SliceInterval time.Duration
	// Lists restricts the node to these lists; empty means all lists.
	Lists []string
	// Follow are the lists this node mirrors (follow.go): each is kept
	// current from its sources, verified against its key, and seeded.
	Follow []FollowSpec
	// Now is the clock (tests); nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// NoSync skips fsync (benchmarks and tests only).
	NoSync bool
	// HTTP are the limits of the HTTP listener (HTTPServer,
	// HTTPListener, and the long-polls of Handler); zero fields mean
	// their defaults.
	HTTP HTTPLimits
	// Peers are the limits of the BitTorrent connections, accepted and
	// dialed; zero fields mean their defaults.
	Peers PeerLimits
	// Tracker configures the node's HTTP tracker (tracker.go); the zero
	// value runs it with its defaults.
	Tracker TrackerOptions
}

// Node publishes and seeds every list of an archive it is the origin of,
// over one BitTorrent client, and serves them over HTTP (Handler).
type Node struct {
	a    *archive.Archive
	opts Options
	log  *slog.Logger
	cl   *torrent.Client
	comp *completion
	// polls counts the manifest long-polls waiting, in all and per
	// client (HTTPLimits.MaxLongPolls).
	polls *netlimit.Counts
	// peers counts the BitTorrent connections (Options.Peers) and ln
	// is the BitTorrent listener, ours: anacrolix's own has no cap.
	peers *peerConns
	ln    net.Listener
	// tracker is the peer store of the node's tracker (tracker.go);
	// udpTracker its UDP side (tracker_udp.go), nil when the tracker is
	// off, and udpConn the UDP socket it opened itself (the DHT off).
	tracker    *peerStore
	udpTracker *udpTracker
	udpConn    net.PacketConn
	// udpURL and udpSelfAddr are UDPTrackerURL and udpSelf, set once
	// the listener is open (udpAddrs).
	udpURL      string
	udpSelfAddr netip.AddrPort
	// dhtStore holds the BEP 44 items of the node's DHT servers: others'
	// and, put there first, the node's own (dhtput.go).
	dhtStore *dhtItems
	// dhtPeers holds the peers announced to the node's DHT servers
	// (dhtpeers.go), and the node itself for what it announces.
	dhtPeers *dhtPeers
	// dialFrom dials peers, trackers and HTTP from the listen address
	// (dialfrom.go).
	dialFrom *fromDialer
	// ctx ends at Close, which waits for bg: the DHT puts running in
	// the background.
	ctx  context.Context
	stop context.CancelFunc
	bg   sync.WaitGroup
	// gossip passes manifests between peers (gossip.go).
	gossip *gossiper

	mu      sync.Mutex
	lists   map[string]*nodeList
	skipped map[string]bool          // lists without list.key: not ours to publish
	dirs    map[metainfo.Hash]string // infohash → packs directory
}

// nodeList is one list's state in the node.
type nodeList struct {
	name string
	list *archive.List
	dir  string // the list's swarm directory
	// origin publishes the list (this node holds list.key); follow keeps
	// a followed list current (follow.go). At most one is set: neither
	// for a mirror not followed now, which is served as it is.
	origin    *Origin
	follow    *follower
	manifest  *Manifest
	changed   chan struct{} // closed and replaced when manifest changes
	torrents  map[string]*torrent.Torrent
	entries   map[string]metainfo.Hash // pack file or bundle name → infohash
	dirty     bool                     // new mail since the last publish
	day       string                   // the UTC day of the last publish
	published time.Time                // when it was last published

	// patches are the manifests served before (manifest_patch.go).
	patches patchCache

	// item is the newest signed BEP 44 item the node holds for the
	// list (dhtput.go): an origin's signs its newest manifest, a
	// mirror's is the origin's as learnt; itemPut is when it was last
	// put into the DHT.
	item    *dhtItem
	itemPut time.Time
}

// NewNode starts the BitTorrent client and loads every list's manifest and
// torrents; Run publishes and keeps them current.
func NewNode(a *archive.Archive, opts *Options) (*Node, error) {
	n := &Node{a: a, lists: map[string]*nodeList{}, skipped: map[string]bool{}, dirs: map[metainfo.Hash]string{},
		comp: newCompletion(), polls: netlimit.NewCounts()}
	if opts != nil {
		n.opts = *opts
	}
	n.opts.HTTP = n.opts.HTTP.withDefaults()
	n.opts.Peers = n.opts.Peers.withDefaults()
	n.opts.Tracker = n.opts.Tracker.withDefaults()
	n.tracker = newPeerStore(n.opts.Tracker)
	n.ctx, n.stop = context.WithCancel(context.Background())
	if n.opts.DHTRePut <= 0 {
		n.opts.DHTRePut = DefaultDHTRePut
	}
	if n.opts.DHTItemLife <= 0 {
		n.opts.DHTItemLife = dhtItemLife
	}
	if n.opts.DHTRead <= 0 {
		n.opts.DHTRead = DefaultDHTRead
	}
	n.peers = &peerConns{lim: n.opts.Peers, counts: netlimit.NewCounts()}
	n.gossip = newGossiper(n)
	if n.opts.Now == nil {
		n.opts.Now = time.Now
	}
	if n.opts.SliceInterval <= 0 {
		n.opts.SliceInterval = DefaultSliceInterval
	}
	if n.opts.Listen == "" {
		n.opts.Listen = "127.0.0.1:0"
	}
	n.log = n.opts.Logger
	if n.log == nil {
		n.log = slog.Default()
	}
	cfg, err := n.clientConfig()
	if err != nil {
		return nil, err
	}
	n.cl, err = torrent.NewClient(cfg)
	if err != nil {
		n.ln.Close()
		if n.udpConn != nil {
			n.udpConn.Close()
		}
		return nil, fmt.Errorf("swarm: bittorrent client: %w", err)
	}
	if n.udpConn != nil {
		n.bg.Add(1)
		go func() {
			defer n.bg.Done()
			n.udpTracker.run(n.udpConn)
		}()
	}
	// Peers reach the client through our capped listener, and it dials
	// through our counting dialer (clientConfig turned its own TCP off).
	n.cl.AddListener(n.peers.listener(n.ln, n.log))
	network := "tcp"
	if cfg.DisableIPv6 {
		network = "tcp4"
	}
	// Peers are dialed from the listen address (dialfrom.go), as
	// announces are: a peer then learns where we listen.
	n.cl.AddDialer(&peerDialer{p: n.peers, network: network, d: n.dialFrom})
	for _, spec := range n.opts.Follow {
		if err := n.addFollow(spec); err != nil {
			n.Close()
			return nil, err
		}
	}
	names := n.opts.Lists
	if len(names) == 0 {
		if names, err = a.Names(); err != nil {
			n.Close()
			return nil, fmt.Errorf("swarm: %w", err)
		}
	}
	for _, name := range names {
		if n.list(name) != nil {
			continue // followed
		}
		if err := n.addList(name); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

func (n *Node) clientConfig() (*torrent.ClientConfig, error) {
	host, port, err := net.SplitHostPort(n.opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("swarm: listen %q: %w", n.opts.Listen, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, fmt.Errorf("swarm: listen %q: bad port", n.opts.Listen)
	}
	// The TCP listener is ours, capped (PeerLimits, peerlimits.go):
	// anacrolix's accepts without a cap. The client listens on no TCP
	// port of its own; the DHT's UDP socket, when on, takes the same
	// port (its announces give the UDP port as the peer port).
	if !n.opts.Tracker.Off {
		n.udpTracker = newUDPTracker(n)
	}
	// The UDP tracker shares the port number (tracker_udp.go): with the
	// DHT off it opens it itself, and a port picked free for TCP may be
	// taken for UDP; a few other ports are tried then. A port given and
	// taken for UDP alone (by another program) leaves the node without
	// its UDP tracker, said in a WARN and by the status's empty
	// tracker_udp: the HTTP tracker and everything else still work.
	for attempt := 1; ; attempt++ {
		n.ln, err = net.Listen("tcp", n.opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("swarm: listen: %w", err)
		}
		if n.udpTracker == nil || n.opts.DHT {
			break
		}
		n.udpConn, err = net.ListenPacket("udp", n.ln.Addr().String())
		if err == nil {
			break
		}
		if p != 0 {
			n.log.Warn("swarm: the UDP tracker is off: its port is taken", "addr", n.ln.Addr().String(), "err", err)
			n.udpTracker = nil
			break
		}
		n.ln.Close()
		if attempt == 10 {
			return nil, fmt.Errorf("swarm: listen (udp tracker): %w", err)
		}
	}
	n.udpURL, n.udpSelfAddr = n.udpAddrs()
	cfg := torrent.NewDefaultClientConfig()
	cfg.DisableTCP = true
	cfg.DisableUTP = true // TCP only: see third_party/go-utp
	cfg.ListenHost = func(string) string { return host }
	cfg.ListenPort = n.ln.Addr().(*net.TCPAddr).Port
	cfg.DisableIPv6 = net.ParseIP(host) != nil && net.ParseIP(host).To4() != nil
	// Bounds for strangers (docs/SECURITY.md, "BitTorrent"): at most
	// MaxConns connections in all however many torrents (one per pack
	// and bundle) and the per-torrent caps, anacrolix's defaults,
	// within it; a handshake in 4 s; the piece data read ahead for one
	// peer's requests at most peerRequestBuffer.
	cfg.EstablishedConnsPerTorrent = min(50, n.opts.Peers.MaxConns)
	cfg.HalfOpenConnsPerTorrent = min(25, max(1, n.opts.Peers.MaxConns/4))
	cfg.TotalHalfOpenConns = min(100, max(1, n.opts.Peers.MaxConns/2))
	cfg.HandshakesTimeout = peerHandshakeTimeout
	// Dials: as many at once as may be half-open, and that many a
	// second. anacrolix's default limiter (10 a second, burst 10) made
	// a late joiner's 19 torrents × 3 peers wait up to 5 s for their
	// first connection (bench mirror -years 5).
	cfg.DialRateLimiter = rate.NewLimiter(rate.Limit(cfg.TotalHalfOpenConns), cfg.TotalHalfOpenConns)
	cfg.MaxAllocPeerRequestDataPerConn = peerRequestBuffer
	// Announces (HTTP and UDP), web seeds and metainfo fetches leave from the
	// BitTorrent listen address (dialfrom.go): a tracker stores a peer
	// under the address its announce came from, and a node on 127.0.0.3
	// announcing from the system's choice (127.0.0.1) was listed where
	// nobody listens.
	n.dialFrom = newFromDialer(host, 30*time.Second)
	cfg.TrackerDialContext = n.dialFrom.DialContext
	cfg.TrackerListenPacket = n.dialFrom.ListenPacket
	cfg.HTTPDialContext = n.dialFrom.DialContext
	cfg.Seed = true
	cfg.NoDefaultPortForwarding = true
	cfg.DisablePEX = !n.opts.DHT
	cfg.NoDHT = !n.opts.DHT
	if n.opts.DHT && n.udpTracker != nil {
		// The DHT's socket, which the UDP tracker shares (tracker_udp.go).
		cfg.ListenPacket = func(network, addr string) (net.PacketConn, error) {
			pc, err := net.ListenPacket(network, addr)
			if err != nil {
				return nil, err
			}
			return &udpTrackerConn{PacketConn: pc, t: n.udpTracker}, nil
		}
	}
	cfg.PeriodicallyAnnounceTorrentsToDht = false
	// BEP 44 items others put here: kept two hours (anacrolix/dht's
	// default; anacrolix/torrent leaves it at 0, so every item was
	// expired when read), at most dhtMaxItems of them (dhtitems.go).
	n.dhtStore = newDHTItems(dhtMaxItems)
	n.dhtPeers = newDHTPeers(n.opts.Now)
	cfg.ConfigureAnacrolixDhtServer = func(c *dht.ServerConfig) {
		c.Store = n.dhtStore
		// Peers others announce here, for get_peers (dhtpeers.go).
		c.PeerStore = n.dhtPeers
		c.Exp = n.opts.DHTItemLife
		// Its own send limiter: anacrolix/dht's default is one for
		// the whole process (250 a second, burst 25), and a reply over
		// it is dropped. A publish sends the announces of up to three
		// torrents and the item's put at once; with nodes sharing the
		// process's limiter (tests, a bench), the replies to a put
		// were dropped and the put reached no node.
		c.SendLimiter = rate.NewLimiter(dhtSendRate, dhtSendBurst)
		// A node ID secure for the listen address (BEP 42) when it is
		// one address: anacrolix/dht gives a random one, which nodes
		// that check drop from their traversals. It does not exempt
		// loopback, so nodes on 127.x found each other once (by
		// bootstrap address, with no ID yet) and never again.
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			id := krpc.RandomNodeID()
			dht.SecureNodeId(&id, ip)
			c.NodeId = id
		}
	}
	if len(n.opts.DHTBootstrap) > 0 {
		boot := slices.Clone(n.opts.DHTBootstrap)
		cfg.DhtStartingNodes = func(network string) dht.StartingNodesGetter {
			return func() ([]dht.Addr, error) {
				var out []dht.Addr
				for _, hp := range boot {
					ua, err := net.ResolveUDPAddr(network, hp)
					if err != nil {
						continue
					}
					out = append(out, dht.NewAddr(ua))
				}
				return out, nil
			}
		}
	}
	if n.opts.UploadRate > 0 {
		cfg.UploadRateLimiter = rate.NewLimiter(rate.Limit(n.opts.UploadRate), int(max(n.opts.UploadRate, 256<<10)))
	}
	n.gossip.callbacks(cfg)
	cfg.Slogger = slog.New(newLimitedLog(n.log.Handler())).With("part", "bittorrent")
	cfg.DefaultStorage = storage.NewFileOpts(storage.NewFileClientOpts{
		ClientBaseDir:   filepath.Join(n.a.Dir(), "lists"),
		TorrentDirMaker: n.torrentDir,
		FilePathMaker:   filePath,
		PieceCompletion: n.comp,
		UsePartFiles:    falseOption,
		Logger:          n.log,
	})
	return cfg, nil
}

// torrentDir maps a torrent to its list's packs directory: a day pack's
// file and a bundle's files are the same files there.
func (n *Node) torrentDir(base string, _ *metainfo.Info, ih metainfo.Hash) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if d, ok := n.dirs[ih]; ok {
		return d
	}
	return filepath.Join(base, ".unknown", ih.HexString())
}

// filePath puts every file of a torrent directly in its directory under
// its own name: a single-file torrent's name, a bundle file's last path
// element.
func filePath(o storage.FilePathMakerOpts) string {
	if len(o.Info.Files) == 0 || o.File == nil || len(o.File.Path) == 0 {
		return filepath.Base(o.Info.Name)
	}
	return filepath.Base(o.File.Path[len(o.File.Path)-1])
}

// addList loads a list the node is origin of.
func (n *Node) addList(name string) error {
	l, err := n.a.List(name)
	if err != nil {
		return fmt.Errorf("swarm: %w", err)
	}
	if _, err := os.Stat(filepath.Join(l.Dir(), "list.key")); errors.Is(err, fs.ErrNotExist) {
		dir := filepath.Join(l.Dir(), swarmDir)
		if m, err := readManifest(dir, l.PublicKey()); err == nil && m != nil {
			// A mirror this node does not follow now (no [[follow]] for
			// it): it still serves and seeds what it holds.
			n.log.Info("swarm: a mirror not followed here: serving what it holds", "list", name, "seq", m.Seq)
			nl := &nodeList{name: name, list: l, dir: dir, changed: make(chan struct{}),
				torrents: map[string]*torrent.Torrent{}, entries: map[string]metainfo.Hash{}}
			n.mu.Lock()
			n.lists[name] = nl
			n.mu.Unlock()
			n.gossip.add(nl, l.PublicKey(), m.List)
			return n.sync(nl, m)
		}
		n.log.Info("swarm: not the origin of this list (no list.key): not publishing it", "list", name)
		n.mu.Lock()
		n.skipped[name] = true
		n.mu.Unlock()
		return nil
	}
	o, err := NewOrigin(l, &OriginOptions{Logger: n.log, NoSync: n.opts.NoSync})
	if err != nil {
		return err
	}
	nl := &nodeList{name: name, list: l, dir: o.Dir(), origin: o, changed: make(chan struct{}),
		torrents: map[string]*torrent.Torrent{}, entries: map[string]metainfo.Hash{}}
	n.mu.Lock()
	n.lists[name] = nl
	n.mu.Unlock()
	n.gossip.add(nl, l.PublicKey(), l.Name())
	if m := o.Manifest(); m != nil {
		return n.sync(nl, m)
	}
	return nil
}

// Client returns the BitTorrent client (tests, status).
func (n *Node) Client() *torrent.Client { return n.cl }

// Addr returns the BitTorrent listen address.
func (n *Node) Addr() net.Addr {
	for _, a := range n.cl.ListenAddrs() {
		return a
	}
	return nil
}

// Run publishes every list now and then every slice interval, and keeps
// the seeded torrents in step with the manifests, until ctx ends.
func (n *Node) Run(ctx context.Context) error {
	events, cancel := n.a.Subscribe()
	defer cancel()
	tick := time.NewTicker(n.opts.SliceInterval)
	defer tick.Stop()
	// DHT announces and BEP 44 items expire (peers after about 30
	// minutes, items after two hours): renew them.
	refresh := time.NewTicker(dhtRefresh)
	defer refresh.Stop()
	reput := time.NewTicker(n.opts.DHTRePut)
	defer reput.Stop()
	var followers sync.WaitGroup
	defer followers.Wait()
	followers.Go(func() { n.gossip.run(ctx) })
	n.mu.Lock()
	var held []*nodeList
	for _, nl := range n.lists {
		if f := nl.follow; f != nil {
			followers.Go(func() { f.run(ctx) })
			if nl.item != nil {
				held = append(held, nl)
			}
		}
	}
	n.mu.Unlock()
	// A mirror restarted puts the item it kept at once: the origin may
	// be gone, and the item expires two hours after the last put.
	for _, nl := range held {
		n.putItem(nl)
	}
	n.publishDue(ctx, true)
	var soon <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			// New mail is cut once per interval, not per message: at the
			// next tick, or after a short linger when the list has not
			// been published for a whole interval (a quiet list's first
			// post reaches mirrors in about a second, not a minute).
			if !ok {
				return nil
			}
			now := n.opts.Now()
			n.mu.Lock()
			for name, nl := range n.lists {
				if ev.Overflow || name == ev.List {
					nl.dirty = true
					if soon == nil && now.Sub(nl.published) >= n.opts.SliceInterval {
						soon = time.After(min(sliceLinger, n.opts.SliceInterval))
					}
				}
			}
			n.mu.Unlock()
		case <-soon:
			soon = nil
			n.publishDue(ctx, false)
		case <-tick.C:
			n.publishDue(ctx, false)
		case <-refresh.C:
			for _, nl := range n.allLists() {
				if m := n.manifest(nl); m != nil {
					n.announceNewest(nl, m)
				}
			}
		case <-reput.C:
			for _, nl := range n.allLists() {
				n.putItem(nl)
			}
		}
	}
}

// allLists returns the node's lists, taken under n.mu, to work on
// outside it.
func (n *Node) allLists() []*nodeList {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Collect(maps.Values(n.lists))
}

// publishDue publishes the lists that have new mail, whose day (UTC) has
// changed since they were last published (a day to seal, a month to
// bundle), or whose manifest another process replaced; all of them when
// all is set.
func (n *Node) publishDue(ctx context.Context, all bool) {
	n.adoptNew()
	today := dayOf(n.opts.Now())
	var due []*nodeList
	for _, nl := range n.allLists() {
		if nl.origin == nil {
			continue // followed: follow.go keeps it current
		}
		// Stat outside n.mu: the origin's lock may be held by a publish.
		changed := stampOf(filepath.Join(nl.origin.Dir(), manifestFile)) != nl.origin.stamp()
		n.mu.Lock()
		if all || nl.dirty || nl.day != today || changed {
			nl.dirty = false
			due = append(due, nl)
		}
		n.mu.Unlock()
	}
	for _, nl := range due {
		if ctx.Err() != nil {
			return
		}
		if _, err := n.PublishContext(ctx, nl.name); err != nil {
			if ctx.Err() == nil {
				n.log.Error("swarm: publish", "list", nl.name, "err", err)
			}
			n.mu.Lock()
			nl.dirty = true // try again next tick
			n.mu.Unlock()
			continue
		}
		n.mu.Lock()
		nl.day = today
		nl.published = n.opts.Now()
		n.mu.Unlock()
	}
}

// adoptNew adds the lists created since the node started (by import,
// keygen, a delivery to a new list) when the node serves every list.
func (n *Node) adoptNew() {
	if len(n.opts.Lists) > 0 {
		return
	}
	names, err := n.a.Names()
	if err != nil {
		n.log.Warn("swarm: lists", "err", err)
		return
	}
	for _, name := range names {
		n.mu.Lock()
		_, have := n.lists[name]
		known := have || n.skipped[name]
		n.mu.Unlock()
		if known {
			continue
		}
		if err := n.addList(name); err != nil {
			n.log.Error("swarm: new list", "list", name, "err", err)
			n.mu.Lock()
			n.skipped[name] = true // not every tick: it is retried at the next start
			n.mu.Unlock()
		}
	}
}

// PublishAll publishes every list now and seeds the result.
func (n *Node) PublishAll() { n.publishDue(context.Background(), true) }

// Publish cuts and seals what is due in list now, seeds it and wakes
// long-polling manifest readers.
func (n *Node) Publish(list string) (PublishResult, error) {
	return n.PublishContext(context.Background(), list)
}

// PublishContext is Publish that stops after the step under way when
// ctx ends. Each step's manifest is served and its packs seeded as soon
// as it is signed: a long imported history becomes available a few
// hundred days at a time.
func (n *Node) PublishContext(ctx context.Context, list string) (PublishResult, error) {
	nl := n.list(list)
	if nl == nil {
		return PublishResult{}, fmt.Errorf("swarm: no list %q", list)
	}
	if nl.origin == nil {
		return PublishResult{}, fmt.Errorf("swarm: %s is followed, not published here", list)
	}
	return nl.origin.PublishContext(ctx, n.opts.Now(), func(res PublishResult, more bool) error {
		var err error
		if res.Manifest != nil && res.Manifest != n.manifest(nl) {
			err = n.sync(nl, res.Manifest)
		}
		if res.Changed {
			n.log.Info("swarm: published", "list", list, "seq", res.Manifest.Seq, "slices", len(res.Slices),
				"days", len(res.Days), "bundles", len(res.Bundles), "retired", len(res.Retired), "more", more)
		}
		return err
	})
}

func (n *Node) list(name string) *nodeList {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.lists[name]
}

func (n *Node) manifest(nl *nodeList) *Manifest {
	n.mu.Lock()
	defer n.mu.Unlock()
	return nl.manifest
}

// sync makes the client seed exactly m's packs and bundles, and makes m
// the list's served manifest.
func (n *Node) sync(nl *nodeList, m *Manifest) error {
	dir := filepath.Join(nl.dir, packsDir)
	want := map[string]metainfo.Hash{}
	for _, p := range m.Packs {
		want[p.File] = p.InfoHash
	}
	for _, b := range m.Bundles {
		want[b.Name] = b.InfoHash
	}
	n.mu.Lock()
	var drop []*torrent.Torrent
	for name, t := range nl.torrents {
		if _, ok := want[name]; !ok {
			drop = append(drop, t)
			delete(nl.torrents, name)
			n.unserve(nl.entries[name])
			delete(nl.entries, name)
		}
	}
	var add []string
	for name, ih := range want {
		if _, ok := nl.torrents[name]; !ok {
			add = append(add, name)
			n.dirs[ih] = dir
			nl.entries[name] = ih
			n.comp.markComplete(ih)
		}
	}
	n.mu.Unlock()
	for _, t := range drop {
		t.Drop()
	}
	slices.Sort(add)
	var errs []error
	for _, name := range add {
		mi, err := readTorrent(nl.dir, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t, _ := n.cl.AddTorrentOpt(torrent.AddTorrentOpts{
			InfoHash:                 mi.HashInfoBytes(),
			InfoBytes:                mi.InfoBytes,
			DisableInitialPieceCheck: true,
		})
		if trackers := n.clientTrackers(nl); len(trackers) > 0 {
			t.AddTrackers([][]string{trackers})
		}
		n.mu.Lock()
		nl.torrents[name] = t
		n.mu.Unlock()
	}
	n.mu.Lock()
	prev := nl.manifest
	nl.patches.served(prev, m)
	nl.manifest = m
	// The origin signs the new manifest's item before the long-polls
	// wake: a mirror that asks for it (GET /lists/NAME/dht) right after
	// the manifest gets this one.
	newItem := nl.origin != nil && (nl.item == nil || nl.item.Seq < m.Seq)
	if newItem {
		nl.item = signItem(nl.origin.priv, m, n.manifestURL(nl.name))
	}
	close(nl.changed)
	nl.changed = make(chan struct{})
	n.mu.Unlock()
	n.announceNewest(nl, m)
	if prev == nil || prev.Seq != m.Seq {
		n.gossip.announce(nl, m)
	}
	if newItem {
		n.putItem(nl)
	}
	return errors.Join(errs...)
}

// announceNewest announces the list's newest torrents to the DHT (when it
// is on): the open day's slices, the newest day pack and bundle. Older
// torrents are found through the manifest, not the DHT.
func (n *Node) announceNewest(nl *nodeList, m *Manifest) {
	servers := n.cl.DhtServers()
	if len(servers) == 0 {
		return
	}
	if gl := n.gossip.listOf(nl); gl != nil {
		n.gossip.announceDHT(gl)
	}
	var names []string
	for i := len(m.Packs) - 1; i >= 0; i-- {
		names = append(names, m.Packs[i].File)
		if m.Packs[i].Kind == KindDay {
			break
		}
	}
	if len(m.Bundles) > 0 {
		names = append(names, m.Bundles[len(m.Bundles)-1].Name)
	}
	for _, name := range names {
		n.mu.Lock()
		t := nl.torrents[name]
		n.mu.Unlock()
		if t == nil {
			continue
		}
		n.announceSelf(t.InfoHash())
		for _, s := range servers {
			if _, stop, err := t.AnnounceToDht(s); err == nil {
				time.AfterFunc(5*time.Minute, stop)
			} else {
				n.log.Warn("swarm: dht announce", "list", nl.name, "torrent", name, "err", err)
			}
		}
	}
}

// announceSelf keeps the node in its own DHT peer store as a peer of ih,
// as the announces it sends keep it in others': a DHT announce reaches
// the nodes nearest ih that are up, never the announcing node, so once
// the nodes that held a mirror's announces had gone (the origin killed),
// a new mirror bootstrapped from that mirror asked it for the list's
// peers and was told of the dead origin only: it synced 2.2 s after
// start (when the mirror, told of its announce, dialed it back) instead
// of 0.25 s (TestServeDHTOnly). Only for a listen address
// that is one address: with 0.0.0.0 the node cannot know the address
// others reach it by (their own announces to it carry that).
func (n *Node) announceSelf(ih metainfo.Hash) {
	if n.dhtPeers == nil {
		return
	}
	a, ok := n.ln.Addr().(*net.TCPAddr)
	if !ok || a.IP.IsUnspecified() {
		return
	}
	n.dhtPeers.AddPeer(ih, krpc.NodeAddr{IP: a.IP, Port: a.Port})
}

// Torrent returns the seeded torrent of a pack file or bundle name.
func (n *Node) Torrent(list, name string) *torrent.Torrent {
	n.mu.Lock()
	defer n.mu.Unlock()
	if nl := n.lists[list]; nl != nil {
		return nl.torrents[name]
	}
	return nil
}

// Close stops the BitTorrent client and closes its listener.
func (n *Node) Close() error {
	n.stop()
	if n.udpConn != nil {
		n.udpConn.Close() // ends udpTracker.run
	}
	n.bg.Wait()
	n.cl.Close()
	<-n.cl.Closed()
	// After the client: its accept loop, woken by the close, sees the
	// client closed and ends (before, it would retry at once, forever).
	n.ln.Close()
	return nil
}

// Dial asks the node to connect to a peer for list's torrent name (a pack
// file or bundle): for clients that take no connections from peers they
// learn of on their own (transmission drops 127.x peers from trackers).
func (n *Node) Dial(list, name string, addr string) error {
	t := n.Torrent(list, name)
	if t == nil {
		return fmt.Errorf("swarm: %s has no torrent %q", list, name)
	}
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return fmt.Errorf("swarm: dial %s: %w", addr, err)
	}
	t.AddPeers([]torrent.PeerInfo{{Addr: ta, Trusted: true}})
	return nil
}

// unserve forgets all the node keeps of ih when it no longer serves it:
// where its files are, its tracker peers, its piece states. Called with
// n.mu held.
func (n *Node) unserve(ih metainfo.Hash) {
	delete(n.dirs, ih)
	n.tracker.forget(ih)
	n.comp.forget(ih)
}
