package swarm

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mailswarm/archive"
	"mailswarm/internal/durable"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

// A mirror follows a list it does not hold the key of (docs/SWARM.md,
// "Mirrors"). Trust is the signed manifest chain and nothing else: a
// manifest is taken only when it is signed by the key the operator gave,
// names the list, and follows the last manifest this mirror verified
// (Follows: a higher sequence, the prev hash for the next one, nothing
// sealed dropped or changed); its packs chain along each epoch from the
// local tip. Every pack is checked before anything changes (its size and
// sha256 against the manifest, then the strict verifier and the chain
// rules when it is installed), and the manifest is written, served and
// seeded only once every pack it names is in place. So a source can
// waste this mirror's time, never change its archive.

// Mirror tuning.
const (
	// followWait is the long-poll a follower asks a source for: a new
	// manifest arrives as soon as it is signed.
	followWait = 60 * time.Second
	// maxFollowManifest caps a manifest read from a source (a torn or
	// endless answer): a century of day packs is about 15 MiB.
	maxFollowManifest = 32 << 20
	// stallTimeout is how long a download may make no progress before
	// the missing bytes are fetched over HTTP from the sources.
	stallTimeout = 5 * time.Second
	// downloadAhead is how many torrents download at once, ahead of
	// the installs (the files wait in the quarantine). A month bundle of
	// a busy list is a few MiB: with 3 at once, connection set-up per
	// torrent held alsa-devel's 78 bundles to 17.5 MiB/s.
	downloadAhead = 16
	// downloadFirst is the longest installs wait for the downloads to
	// end before they start beside them (apply).
	downloadFirst = 30 * time.Second
	// retryMin and retryMax bound the wait before a failed sync is
	// tried again.
	retryMin, retryMax = time.Second, time.Minute
	// penaltyBan is how many penalties (bad bytes, refused manifests)
	// make a source skipped for banTime.
	penaltyBan = 3
	banTime    = 10 * time.Minute
	// incomingDir is the quarantine: downloads not yet verified.
	incomingDir = "incoming"
	// followFile keeps the follower's figures across restarts.
	followFile = "follow.json"
)

// source is one HTTP source: a node serving the list.
type source struct {
	spec string // as given
	base string // the list's HTTP base: http://host:port/lists/NAME
	mu   sync.Mutex
	SourceStatus
	bannedUntil time.Time
	// ask serialises the reads of its status for its BitTorrent
	// address (askPeer), askedAt is when the last one failed.
	ask     sync.Mutex
	askedAt time.Time
}

// SourceStatus is what the follower knows of one source.
type SourceStatus struct {
	Source    string    `json:"source"`
	LastOK    time.Time `json:"last_ok,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	ErrorTime time.Time `json:"error_time,omitzero"`
	Penalties int       `json:"penalties"`
	BTPeer    string    `json:"bittorrent,omitempty"` // the BitTorrent address it reported
	// Gossip marks a peer met on the list's rendezvous torrent
	// (gossip.go); ManifestBytes counts the manifest bytes it sent.
	Gossip        bool  `json:"gossip,omitempty"`
	ManifestBytes int64 `json:"manifest_bytes,omitempty"`
}

func (s *source) ok() {
	s.mu.Lock()
	s.LastOK = time.Now().UTC()
	s.mu.Unlock()
}

func (s *source) failed(err error, penalty bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.LastError, s.ErrorTime = err.Error(), time.Now().UTC()
	if penalty {
		s.Penalties++
		if s.Penalties%penaltyBan == 0 {
			s.bannedUntil = time.Now().Add(banTime)
		}
	}
}

func (s *source) usable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().After(s.bannedUntil)
}

// banErr says why s is not used: its penalties and its last error.
func (s *source) banErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Errorf("%d penalties, not used until %s; last: %s", s.Penalties, s.bannedUntil.UTC().Format(time.RFC3339), s.LastError)
}

func (s *source) status() SourceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.SourceStatus
}

// FollowStatus is what `follow status` and `swarm status --json` print
// of a followed list. The JSON names are a contract: add, never rename.
type FollowStatus struct {
	List      string `json:"list"`  // the list's name in its manifests
	Local     string `json:"local"` // the local list directory's name
	Key       string `json:"key"`
	Seq       int64  `json:"seq"`                   // newest manifest verified and applied; 0 before
	Time      int64  `json:"manifest_time"`         // its time (Unix seconds)
	Lag       int64  `json:"lag_seconds"`           // seconds since that time
	Pending   int64  `json:"pending_seq,omitempty"` // a newer verified manifest being applied
	Missing   int    `json:"packs_missing"`         // packs of the pending manifest not yet installed
	BytesDown int64  `json:"bytes_down"`
	BytesUp   int64  `json:"bytes_up"`
	Peers     int    `json:"peers"`
	// TorrentsOpened counts the torrents downloaded through (bundles
	// count once); DaysRebuilt the day packs rebuilt from held slices,
	// DaysDownloaded those downloaded instead (a rebuild mismatched).
	TorrentsOpened int `json:"torrents_opened"`
	DaysRebuilt    int `json:"days_rebuilt"`
	DaysDownloaded int `json:"days_downloaded"`
	// DaysAdopted counts the day packs made the epoch's storage in place
	// of the slice packs they cover (one copy; this process).
	DaysAdopted int `json:"days_adopted"`
	Refused     int `json:"manifests_refused"`
	// ManifestBytes counts the bytes of manifests and patches read
	// from sources; ManifestsFetched the manifests taken from them,
	// ManifestPatches those that came as a patch.
	ManifestBytes    int64 `json:"manifest_bytes"`
	ManifestsFetched int   `json:"manifests_fetched"`
	ManifestPatches  int   `json:"manifest_patches"`
	// DHTSeq is the sequence of the newest BEP 44 item held for the
	// list (verified under the key: followdht.go), DHTSeen when an item
	// of that sequence was last seen and DHTFrom where ("dht" or a
	// source); DHTPut is when this node last put it into the DHT.
	// DHTReads counts the reads from the DHT, DHTRefused the items
	// refused (DHT replies and sources).
	DHTSeq     int64     `json:"dht_seq,omitempty"`
	DHTSeen    time.Time `json:"dht_seen,omitzero"`
	DHTFrom    string    `json:"dht_from,omitempty"`
	DHTPut     time.Time `json:"dht_put,omitzero"`
	DHTReads   int       `json:"dht_reads,omitempty"`
	DHTRefused int       `json:"dht_refused,omitempty"`
	// GossipBytes counts the manifest bytes of them read from peers
	// over ms_manifest (gossip.go), GossipManifests the manifests so
	// taken.
	GossipBytes     int64 `json:"gossip_manifest_bytes"`
	GossipManifests int   `json:"gossip_manifests"`
	// LastSync is the newest sync that downloaded anything.
	LastSync  *SyncFigures   `json:"last_sync,omitempty"`
	LastError string         `json:"last_error,omitempty"`
	Sources   []SourceStatus `json:"sources"`
}

// SyncFigures are one sync's figures: the bytes of the torrents it
// downloaded, the seconds from its start to the last download's end, the
// seconds spent installing (verify, link, index), and the whole.
type SyncFigures struct {
	Seq             int64   `json:"seq"`
	Torrents        int     `json:"torrents"`
	Bytes           int64   `json:"bytes"`
	DownloadSeconds float64 `json:"download_seconds"`
	InstallSeconds  float64 `json:"install_seconds"`
	Seconds         float64 `json:"seconds"`
}

// follower keeps one followed list current.
type follower struct {
	n     *Node
	spec  FollowSpec
	nl    *nodeList
	list  *archive.List
	dir   string
	log   *slog.Logger
	hc    *http.Client
	srcs  []*source
	peers []string // BitTorrent peers given as sources

	applyMu sync.Mutex // one apply at a time (Run's loop, SyncOnce)
	// What this process found in place, not looked for again at each
	// slice (under applyMu, or before Run): by name, the infohash of
	// each torrent file torrentFiles checked or wrote; by file, the
	// sha256 of each held pack seedable found in packs/; the day packs
	// adoptDays found or made git packs (nil until an adoptDays passed
	// every epoch); the manifest removeStale last ran for.
	torrentsOK  map[string][20]byte
	packsOK     map[string][32]byte
	installedOK map[epochTrailer]bool
	staleFrom   *Manifest

	mu      sync.Mutex
	cur     *Manifest // verified and applied: served and seeded
	best    *Manifest // newest verified, applying
	newer   chan struct{}
	applied chan struct{} // closed and replaced after each apply
	st      FollowStatus
	btPeers map[string]bool // peers the sources reported
	// urlSrcs are sources made from the URLs of BEP 44 items; wantSeq
	// and wantHash the newest manifest an item named (followdht.go).
	urlSrcs  map[string]*source
	wantSeq  int64
	wantHash [32]byte
	gsrcs    map[string]*source // gossip peers by address, for penalties
}

// gossipSource returns the source standing for the gossip peer at addr
// (its penalties and figures), at most gossipKnown of them: past that,
// the one of a peer not met before is not kept.
func (f *follower) gossipSource(addr string) *source {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s := f.gsrcs[addr]; s != nil {
		return s
	}
	s := &source{spec: "peer " + addr}
	s.Source, s.BTPeer, s.Gossip = addr, addr, true
	if len(f.gsrcs) < gossipKnown {
		f.gsrcs[addr] = s
	}
	return s
}

// addFollow opens (creating it when new) the local list of spec as a
// mirror and starts following it from Run.
func (n *Node) addFollow(spec FollowSpec) error {
	local := spec.LocalName()
	if len(spec.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("swarm: follow %s: no key: a list is followed by its ed25519 key, never by what a source says", local)
	}
	l, err := openMirror(n.a, local, spec)
	if err != nil {
		return fmt.Errorf("swarm: follow %s: %w", local, err)
	}
	dir := filepath.Join(l.Dir(), swarmDir)
	for _, d := range []string{dir, filepath.Join(dir, packsDir), filepath.Join(dir, torrentsDir), filepath.Join(dir, incomingDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("swarm: follow %s: %w", local, err)
		}
	}
	f := &follower{n: n, spec: spec, list: l, dir: dir, log: n.log.With("list", local),
		newer: make(chan struct{}, 1), applied: make(chan struct{}), btPeers: map[string]bool{},
		urlSrcs: map[string]*source{}, gsrcs: map[string]*source{}}
	dial := *n.dialFrom // from the node's listen address (dialfrom.go), in 10 s
	dial.d.Timeout = 10 * time.Second
	f.hc = &http.Client{Transport: &http.Transport{
		Proxy:                 nil, // sources are named by the operator; no proxy from the environment
		DialContext:           dial.DialContext,
		ResponseHeaderTimeout: followWait + 30*time.Second,
		MaxIdleConnsPerHost:   4,
	}}
	f.st = FollowStatus{List: spec.List, Local: local, Key: hex.EncodeToString(spec.Key)}
	f.loadState()
	for _, s := range spec.Sources {
		if base, ok := httpBase(s, spec.List); ok {
			src := &source{spec: s, base: base}
			src.Source = s
			for _, old := range f.st.Sources {
				if old.Source == s {
					src.SourceStatus = old
				}
			}
			f.srcs = append(f.srcs, src)
		} else {
			f.peers = append(f.peers, s)
		}
	}
	m, err := readManifest(dir, spec.Key)
	if err != nil {
		return fmt.Errorf("swarm: follow %s: %w", local, err)
	}
	if m != nil && m.List != spec.List {
		return fmt.Errorf("swarm: follow %s: the manifest held names list %q, not %q", local, m.List, spec.List)
	}
	f.cur = m
	if m != nil {
		// Torrent files are written without an fsync each: remake what
		// a crash damaged before seeding.
		if err := f.torrentFiles(m); err != nil {
			f.log.Error("swarm: follow: torrent files", "err", err)
		}
	}
	nl := &nodeList{name: local, list: l, dir: dir, follow: f, changed: make(chan struct{}),
		torrents: map[string]*torrent.Torrent{}, entries: map[string]metainfo.Hash{}}
	f.nl = nl
	// The BEP 44 item kept here: put again from Run (dhtput.go). A bad
	// file is logged and left for the next item to replace.
	if it, err := readItem(dir, spec.Key); err != nil {
		f.log.Warn("swarm: follow: dht item held", "err", err)
	} else if it != nil {
		nl.item = it
		f.st.DHTSeq = it.Seq
	}
	n.mu.Lock()
	n.lists[local] = nl
	n.mu.Unlock()
	n.gossip.add(nl, spec.Key, spec.List)
	if m != nil {
		return n.sync(nl, m)
	}
	return nil
}

// openMirror opens or creates the mirror list local with spec's key.
func openMirror(a *archive.Archive, local string, spec FollowSpec) (*archive.List, error) {
	return a.OpenOrCreateMirror(local, spec.Key, spec.Address)
}

// httpBase returns the list's HTTP base for an HTTP source: the node's
// base URL gets /lists/LIST; a URL with a path names the list's base.
func httpBase(s, list string) (string, bool) {
	if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", false
	}
	p := strings.TrimSuffix(u.Path, "/")
	if p == "" {
		p = "/lists/" + list
	}
	u.Path, u.RawQuery, u.Fragment = p, "", ""
	return u.String(), true
}

// run follows the list until ctx ends: one long-poll per HTTP source,
// and the newest verified manifest applied.
func (f *follower) run(ctx context.Context) {
	if len(f.srcs) == 0 && len(f.peers) == 0 && len(f.n.cl.DhtServers()) == 0 {
		f.setErr(errors.New("no source: no HTTP source, no BitTorrent peer, no DHT; seeding what is held"))
		f.log.Warn("swarm: follow: no source to read manifests from: give an HTTP source or a BitTorrent peer, or turn the DHT on")
	}
	// A swap a kill cut short ends before anything new is applied.
	f.applyMu.Lock()
	if cur := f.current(); cur != nil {
		f.adoptDays(cur)
	}
	f.applyMu.Unlock()
	var wg sync.WaitGroup
	defer wg.Wait()
	if f.n.opts.DHT {
		wg.Go(func() { f.dhtLoop(ctx) })
	}
	for _, s := range f.srcs {
		wg.Go(func() { f.poll(ctx, s) })
	}
	wait := retryMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.newer:
		}
		for ctx.Err() == nil {
			f.mu.Lock()
			m := f.best
			cur := f.cur
			f.mu.Unlock()
			if m == nil || (cur != nil && m.Seq <= cur.Seq) {
				break
			}
			if err := f.apply(ctx, m); err != nil {
				if ctx.Err() != nil {
					return
				}
				f.setErr(err)
				f.log.Error("swarm: follow: sync failed; trying again", "seq", m.Seq, "in", wait, "err", err)
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
				wait = min(2*wait, retryMax)
				continue
			}
			wait = retryMin
		}
	}
}

// poll long-polls one source for manifests newer than the newest seen.
func (f *follower) poll(ctx context.Context, s *source) {
	wait := retryMin
	for ctx.Err() == nil {
		if !s.usable() {
			sleep(ctx, time.Minute)
			continue
		}
		err := f.pollOnce(ctx, s, followWait)
		if err == nil {
			wait = retryMin
			continue
		}
		if ctx.Err() != nil {
			return
		}
		sleep(ctx, wait+time.Duration(rand.Int64N(int64(wait/2)+1)))
		wait = min(2*wait, retryMax)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sourceFailed records err against s: a refused manifest (ErrManifest)
// is a penalty, counted and logged at WARN; anything else (the network)
// is logged at debug level.
func (f *follower) sourceFailed(s *source, err error) {
	penalty := errors.Is(err, ErrManifest)
	s.failed(err, penalty)
	if !penalty {
		f.log.Debug("swarm: follow: source", "source", s.spec, "err", err)
		return
	}
	f.mu.Lock()
	f.st.Refused++
	f.mu.Unlock()
	f.log.Warn("swarm: follow: manifest refused", "source", s.spec, "err", err)
}

// pollOnce asks s for a manifest newer than the newest seen, waiting up
// to wait, and offers what it gets.
func (f *follower) pollOnce(ctx context.Context, s *source, wait time.Duration) error {
	base := f.newest()
	m, err := f.fetchManifest(ctx, s, base, wait)
	if err != nil {
		if ctx.Err() == nil {
			f.sourceFailed(s, err)
		}
		return err
	}
	s.ok()
	if m != nil {
		if err := f.offer(m); err != nil {
			s.failed(err, true)
			f.mu.Lock()
			f.st.Refused++
			f.mu.Unlock()
			f.log.Warn("swarm: follow: manifest refused", "source", s.spec, "seq", m.Seq, "err", err)
			return err
		}
		f.itemFrom(ctx, s, m.Seq)
	}
	return nil
}

// newest is the newest manifest verified (applied or not), nil before
// the first.
func (f *follower) newest() *Manifest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.best != nil {
		return f.best
	}
	return f.cur
}

// fetchManifest GETs a manifest newer than base from s (nil, nil when
// none came within wait) and parses it with the list's key. It tells s
// the hash of base: s may answer with a patch from it, which is applied
// to base and then parsed like a whole manifest. A manifest of another
// list or older than asked for is refused (ErrManifest).
func (f *follower) fetchManifest(ctx context.Context, s *source, base *Manifest, wait time.Duration) (*Manifest, error) {
	var after int64
	var have string
	if base != nil {
		h := base.Hash()
		after, have = base.Seq, "&have="+hex.EncodeToString(h[:])
	}
	u := s.base + "/manifest?after=" + strconv.FormatInt(after, 10) + have + "&wait=" + strconv.Itoa(int(wait/time.Second))
	ctx, cancel := context.WithTimeout(ctx, wait+30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, nil
	default:
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	patch := resp.Header.Get("Content-Type") == patchContentType
	if patch && base == nil {
		return nil, refused(fmt.Errorf("from %s: a patch, but no manifest was named to patch", s.spec))
	}
	if patch && resp.ContentLength > maxPatchSize {
		return nil, refused(fmt.Errorf("from %s: oversized patch: %d bytes, more than the %d a follower reads", s.spec, resp.ContentLength, maxPatchSize))
	}
	if resp.ContentLength > maxFollowManifest {
		return nil, refused(fmt.Errorf("from %s: oversized: %d bytes, more than the %d a follower reads", s.spec, resp.ContentLength, maxFollowManifest))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxFollowManifest+1))
	if errors.Is(err, io.ErrUnexpectedEOF) {
		// The answer ended before its Content-Length: a torn manifest
		// is refused like any other bad one (it was logged at debug
		// level, with no penalty).
		return nil, refused(fmt.Errorf("from %s: torn: %d of %d bytes", s.spec, len(b), resp.ContentLength))
	}
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(b) > maxFollowManifest {
		return nil, refused(fmt.Errorf("from %s: oversized: more than the %d bytes a follower reads", s.spec, maxFollowManifest))
	}
	if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
		return nil, refused(fmt.Errorf("from %s: torn: %d of %d bytes", s.spec, len(b), resp.ContentLength))
	}
	return f.takeManifest(s.spec, b, patch, base)
}

// takeManifest parses b, read from source from (a manifest, or with
// patch a patch from base), with the list's key: the checks every
// manifest passes, whether it came over HTTP or from a peer (gossip.go).
// A manifest of another list, or not newer than base, is refused
// (ErrManifest).
func (f *follower) takeManifest(from string, b []byte, patch bool, base *Manifest) (*Manifest, error) {
	var after int64
	if base != nil {
		after = base.Seq
	}
	if patch && base == nil {
		return nil, refused(fmt.Errorf("from %s: a patch, but no manifest was named to patch", from))
	}
	f.mu.Lock()
	f.st.ManifestBytes += int64(len(b))
	f.mu.Unlock()
	var m *Manifest
	var err error
	if patch {
		var p *ManifestPatch
		if p, err = DecodePatch(b); err != nil {
			return nil, fmt.Errorf("from %s: %w", from, err)
		}
		// Applied to the parsed manifest held, as ParseManifest would
		// take the file Apply rebuilds, at the cost of what changed.
		m, err = p.applyParsed(base, f.spec.Key)
	} else {
		m, err = ParseManifest(b, f.spec.Key)
	}
	if err != nil {
		if patch {
			return nil, fmt.Errorf("from %s: patch from seq %d: %w", from, base.Seq, err)
		}
		return nil, fmt.Errorf("from %s: %w", from, err)
	}
	f.mu.Lock()
	f.st.ManifestsFetched++
	if patch {
		f.st.ManifestPatches++
	}
	f.mu.Unlock()
	if m.List != f.spec.List {
		return nil, refused(fmt.Errorf("from %s: a manifest of list %q, not %q", from, m.List, f.spec.List))
	}
	if m.Seq <= after && after > 0 && f.forks(m) {
		return nil, refused(fmt.Errorf("from %s: forked chain: another manifest for seq %d than the one verified here", from, m.Seq))
	}
	if m.Seq <= after && after > 0 {
		return nil, refused(fmt.Errorf("from %s: seq %d is not newer than %d, which was asked for (a replay)", from, m.Seq, after))
	}
	return m, nil
}

// forks reports whether m has the sequence of a manifest verified here
// but other bytes.
func (f *follower) forks(m *Manifest) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, prev := range []*Manifest{f.cur, f.best} {
		if prev != nil && prev.Seq == m.Seq && prev.Hash() != m.Hash() {
			return true
		}
	}
	return false
}

// offer takes m as the newest manifest to apply when it follows the
// newest verified one.
func (f *follower) offer(m *Manifest) error {
	if err := checkChain(m); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, prev := range []*Manifest{f.cur, f.best} {
		if prev == nil {
			continue
		}
		if m.Seq == prev.Seq {
			if m.Hash() == prev.Hash() {
				return nil
			}
			return refused(fmt.Errorf("forked chain: another manifest for seq %d", m.Seq))
		}
		if m.Seq < prev.Seq {
			return nil // an older one while a newer is applied: nothing to do
		}
		if err := m.Follows(prev); err != nil {
			return err
		}
	}
	f.best = m
	f.st.Pending = m.Seq
	select {
	case f.newer <- struct{}{}:
	default:
	}
	return nil
}

// checkChain checks that m's packs chain along each epoch: the first from
// the root, each next from the one before, the last ending at the tip.
func checkChain(m *Manifest) error {
	last := map[int]*PackEntry{}
	for i := range m.Packs {
		p := &m.Packs[i]
		var want archive.Hash
		if q := last[p.Epoch]; q != nil {
			want = q.To
		}
		if p.From != want {
			return refused(fmt.Errorf("list %s seq %d: pack %q starts after %x, not after %x: the packs do not chain", m.List, m.Seq, p.File, p.From, want))
		}
		last[p.Epoch] = p
	}
	for _, e := range m.Epochs {
		if p := last[e.Epoch]; p != nil && p.To != e.Tip {
			return refused(fmt.Errorf("list %s seq %d: epoch %d tip %x is not its last pack's end %x", m.List, m.Seq, e.Epoch, e.Tip, p.To))
		}
	}
	return nil
}

func (f *follower) setErr(err error) {
	f.mu.Lock()
	f.st.LastError = err.Error()
	f.mu.Unlock()
}

// SyncOnce brings the followed list local up to the newest manifest its
// sources offer now and returns: `follow --once`.
func (n *Node) SyncOnce(ctx context.Context, local string) error {
	nl := n.list(local)
	if nl == nil || nl.follow == nil {
		return fmt.Errorf("swarm: %s is not followed here", local)
	}
	f := nl.follow
	if f.n.opts.DHT {
		f.readDHT(ctx)
	}
	if len(f.srcs) == 0 {
		f.mu.Lock()
		m, cur := f.best, f.cur
		f.mu.Unlock()
		if len(f.peers) == 0 && m != nil && (cur == nil || m.Seq > cur.Seq) {
			return f.apply(ctx, m) // named by the DHT item, fetched from its URL
		}
		return f.syncOnceGossip(ctx) // BitTorrent peers (gossip.go)
	}
	var errs []error
	for _, s := range f.srcs {
		if err := f.pollOnce(ctx, s, 0); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.spec, err))
		}
	}
	f.mu.Lock()
	m, cur := f.best, f.cur
	f.mu.Unlock()
	if m == nil || (cur != nil && m.Seq <= cur.Seq) {
		if cur == nil {
			return fmt.Errorf("swarm: follow %s: no manifest from any source: %w", local, errors.Join(errs...))
		}
		if len(errs) == len(f.srcs) && len(errs) > 0 {
			// Not one source answered (or every answer was refused):
			// nothing says the list is up to date.
			return fmt.Errorf("swarm: follow %s: no source answered: %w", local, errors.Join(errs...))
		}
		return nil // up to date
	}
	return f.apply(ctx, m)
}

// FollowStatus returns what the follower of local knows.
func (n *Node) FollowStatus(local string) (FollowStatus, error) {
	nl := n.list(local)
	if nl == nil || nl.follow == nil {
		return FollowStatus{}, fmt.Errorf("swarm: %s is not followed here", local)
	}
	return nl.follow.status(), nil
}

func (f *follower) status() FollowStatus {
	f.mu.Lock()
	st := f.st
	cur := f.cur
	f.mu.Unlock()
	if cur != nil {
		st.Seq, st.Time = cur.Seq, cur.Time
		st.Lag = max(0, f.n.opts.Now().Unix()-cur.Time)
	}
	if st.Pending <= st.Seq {
		st.Pending = 0
	}
	_, st.DHTPut = f.n.heldItem(f.nl)
	st.Sources = nil
	for _, s := range f.srcs {
		st.Sources = append(st.Sources, s.status())
	}
	for _, p := range f.peers {
		st.Sources = append(st.Sources, SourceStatus{Source: p, BTPeer: p})
	}
	f.mu.Lock()
	gs := make([]*source, 0, len(f.gsrcs))
	for _, s := range f.gsrcs {
		gs = append(gs, s)
	}
	f.mu.Unlock()
	slices.SortFunc(gs, func(a, b *source) int { return strings.Compare(a.spec, b.spec) })
	for _, s := range gs {
		st.Sources = append(st.Sources, s.status())
	}
	f.n.mu.Lock()
	ts := make([]*torrent.Torrent, 0, len(f.nl.torrents))
	for _, t := range f.nl.torrents {
		ts = append(ts, t)
	}
	f.n.mu.Unlock()
	for _, t := range ts {
		s := t.Stats()
		st.BytesUp += s.BytesWrittenData.Int64()
		st.Peers += s.ActivePeers
	}
	return st
}

// loadState reads follow.json (figures kept across restarts).
func (f *follower) loadState() {
	b, err := os.ReadFile(filepath.Join(f.dir, followFile))
	if err != nil {
		return
	}
	var st FollowStatus
	if json.Unmarshal(b, &st) == nil {
		f.st.BytesDown, f.st.TorrentsOpened, f.st.LastSync = st.BytesDown, st.TorrentsOpened, st.LastSync
		f.st.DaysRebuilt, f.st.DaysDownloaded, f.st.Refused = st.DaysRebuilt, st.DaysDownloaded, st.Refused
		f.st.ManifestBytes, f.st.ManifestsFetched, f.st.ManifestPatches = st.ManifestBytes, st.ManifestsFetched, st.ManifestPatches
		f.st.GossipBytes, f.st.GossipManifests = st.GossipBytes, st.GossipManifests
		f.st.Sources = st.Sources
	}
}

// saveState writes follow.json.
func (f *follower) saveState() {
	st := f.status()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return
	}
	if err := durable.WriteFile(filepath.Join(f.dir, followFile), append(b, '\n'), 0o644, false); err != nil {
		f.log.Warn("swarm: follow: state", "err", err)
	}
}

// ReadFollowStatus returns the figures a follower of the list directory
// listDir last saved (follow status without a running node).
func ReadFollowStatus(listDir string) (FollowStatus, error) {
	var st FollowStatus
	b, err := os.ReadFile(filepath.Join(listDir, swarmDir, followFile))
	if err != nil {
		return st, fmt.Errorf("swarm: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("swarm: %s: %w", followFile, err)
	}
	return st, nil
}
