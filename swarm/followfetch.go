package swarm

import (
	"context"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/anacrolix/torrent"
	"github.com/anacrolix/torrent/metainfo"
)

// maxTorrentFile caps a .torrent read from a source: a 4 GiB bundle at
// 4 MiB pieces has 1,024 piece hashes (20 KiB).
const maxTorrentFile = 4 << 20

// btInfoTimeout bounds the wait for a torrent's info from the peers
// (ut_metadata) when no HTTP source gives it; btOnlyStall the time a
// download with no HTTP source to fill from may make no progress.
const (
	btInfoTimeout = 30 * time.Second
	btOnlyStall   = time.Minute
)

// fetch downloads j's files into the quarantine (incoming/) and checks
// each against the manifest (size and sha256). BitTorrent first, from
// the sources' peers and the peers they report, with every source's HTTP
// pack URL as web seed; when the download makes no progress for
// stallTimeout the torrent is dropped and the missing pieces are
// range-fetched over HTTP from the sources, each checked against the
// torrent's piece hash. Files already complete (a restart) are kept.
func (f *follower) fetch(ctx context.Context, m *Manifest, j *job) error {
	inc := filepath.Join(f.dir, incomingDir)
	todo := false
	for _, p := range j.packs {
		if checkFile(filepath.Join(inc, p.File), p) != nil {
			todo = true
		}
	}
	if !todo {
		return nil
	}
	mi, err := f.torrentMeta(ctx, j)
	if err != nil {
		return err
	}
	info, err := mi.UnmarshalInfo()
	if err != nil {
		return fmt.Errorf("torrent %s: %w", j.name, err)
	}
	ih := metainfo.Hash(j.ih)
	if err := checkInfo(&info, j); err != nil {
		if t, ok := f.n.cl.Torrent(ih); ok {
			t.Drop() // added by torrentMetaBT
		}
		return err
	}
	f.n.mu.Lock()
	f.n.dirs[ih] = inc
	f.n.mu.Unlock()
	t, _ := f.n.cl.AddTorrentOpt(torrent.AddTorrentOpts{InfoHash: ih, InfoBytes: mi.InfoBytes})
	dropped := false
	drop := func() {
		if dropped {
			return
		}
		dropped = true
		f.blameWebSeeds(t, j)
		s := t.Stats()
		f.mu.Lock()
		f.st.BytesDown += s.BytesReadUsefulData.Int64()
		f.mu.Unlock()
		t.Drop()
		f.logBanned()
		f.n.mu.Lock()
		if f.n.dirs[ih] == inc {
			f.n.unserve(ih)
		}
		f.n.mu.Unlock()
	}
	defer drop()
	f.mu.Lock()
	f.st.TorrentsOpened++
	f.mu.Unlock()
	var seeds []string
	for _, s := range f.fetchSources() {
		if s.usable() {
			seeds = append(seeds, s.base+"/packs/")
		}
	}
	t.AddWebSeeds(seeds)
	peers := f.peerInfos(ctx)
	t.AddPeers(peers)
	t.DownloadAll()
	// The watchdog: progress is bytes completed (verified pieces).
	last, lastAt := t.BytesCompleted(), time.Now()
	// With no HTTP source to fill from, a stall only re-adds the peers
	// (the gossip peers met since), up to btOnlyStall in all.
	httpOK := f.usableHTTP()
	stalled := time.Duration(0)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.Complete().On():
			break wait
		case <-tick.C:
		}
		if b := t.BytesCompleted(); b != last {
			last, lastAt = b, time.Now()
			continue
		}
		if time.Since(lastAt) < stallTimeout {
			continue
		}
		if !httpOK {
			stalled += time.Since(lastAt)
			if stalled >= btOnlyStall {
				return fmt.Errorf("torrent %s: no progress from %d BitTorrent peers for %s, and no HTTP source", j.name, len(peers), btOnlyStall)
			}
			f.log.Warn("swarm: follow: download stalled; no HTTP source: asking the peers again", "torrent", j.name, "after", stallTimeout)
			peers = f.peerInfos(ctx)
			t.AddPeers(peers)
			lastAt = time.Now()
			continue
		}
		var missing []int
		for i := range t.NumPieces() {
			if !t.PieceState(i).Complete {
				missing = append(missing, i)
			}
		}
		f.log.Warn("swarm: follow: download stalled; fetching the missing pieces over HTTP",
			"torrent", j.name, "after", stallTimeout, "pieces", len(missing), "of", t.NumPieces())
		drop()
		if err := f.httpFill(ctx, &info, j, missing); err != nil {
			return err
		}
		break
	}
	drop()
	for _, p := range j.packs {
		path := filepath.Join(inc, p.File)
		if err := checkFile(path, p); err != nil {
			os.Remove(path)
			return err
		}
	}
	return nil
}

// logBanned logs the peers anacrolix banned since the last look: a peer
// whose blocks made a piece fail its hash is banned by address (its
// connections dropped, no new ones), and the download goes on from the
// others.
func (f *follower) logBanned() {
	for _, ip := range f.n.cl.BadPeerIPs() {
		f.mu.Lock()
		known := f.btPeers["banned "+ip]
		f.btPeers["banned "+ip] = true
		f.mu.Unlock()
		if !known {
			f.log.Warn("swarm: follow: peer banned: it sent data that failed a piece hash", "peer", ip)
		}
	}
}

// blameWebSeeds gives a penalty to each source whose web seed sent t
// more pieces that failed their hash than pieces that passed, and logs
// every one that sent a bad piece. anacrolix drops such a web seed for a
// minute and tells no one: a source sending bad bytes over the web seed
// while an honest one completed the download was neither counted nor
// logged. A piece that more than one peer wrote to counts for each, so
// one bad piece beside good ones is logged, not penalised; two sources on
// the same host:port (anacrolix names a web seed by its host) are not
// told apart and get no penalty.
func (f *follower) blameWebSeeds(t *torrent.Torrent, j *job) {
	for _, p := range t.WebseedPeerConns() {
		st := p.Stats()
		bad, good := st.PiecesDirtiedBad.Int64(), st.PiecesDirtiedGood.Int64()
		if bad == 0 || p.RemoteAddr == nil {
			continue
		}
		host := p.RemoteAddr.String()
		var match []*source
		for _, s := range f.fetchSources() {
			if u, err := url.Parse(s.base); err == nil && u.Host == host {
				match = append(match, s)
			}
		}
		penalty := bad > good && len(match) == 1
		for _, s := range match {
			err := fmt.Errorf("torrent %s: web seed %s: %d pieces failed their hash, %d passed: %w", j.name, s.spec, bad, good, errBadBytes)
			s.failed(err, penalty)
			f.log.Warn("swarm: follow: source sent bad bytes", "source", s.spec, "penalty", penalty, "err", err)
		}
	}
}

// checkInfo checks that a torrent's info describes exactly j's files.
func checkInfo(info *metainfo.Info, j *job) error {
	if info.Name != j.name {
		return fmt.Errorf("torrent %s: named %q", j.name, info.Name)
	}
	files := info.UpvertedFiles()
	if len(files) != len(j.packs) || (j.bundle == nil && len(info.Files) != 0) {
		return fmt.Errorf("torrent %s: %d files, want %d", j.name, len(files), len(j.packs))
	}
	// The fixed recipe's piece length and one hash per piece: the
	// infohash check lets only the origin's info through, but an info
	// with no piece hashes or a piece length of 0 passed here, and the
	// range fill then had no piece to fetch (FuzzTorrentInfo).
	if pl := PieceLength(j.size()); info.PieceLength != pl {
		return fmt.Errorf("torrent %s: piece length %d, the recipe's is %d", j.name, info.PieceLength, pl)
	}
	if n := (j.size() + info.PieceLength - 1) / info.PieceLength; int64(len(info.Pieces)) != n*sha1.Size {
		return fmt.Errorf("torrent %s: %d bytes of piece hashes, want %d for %d pieces", j.name, len(info.Pieces), n*sha1.Size, n)
	}
	for i, fi := range files {
		name := info.Name
		if j.bundle != nil {
			if len(fi.Path) != 1 {
				return fmt.Errorf("torrent %s: file path %q", j.name, fi.Path)
			}
			name = fi.Path[0]
		}
		if name != j.packs[i].File || fi.Length != j.packs[i].Size {
			return fmt.Errorf("torrent %s: file %d is %q (%d bytes), want %q (%d bytes)", j.name, i, name, fi.Length, j.packs[i].File, j.packs[i].Size)
		}
	}
	return nil
}

// torrentMeta fetches j's .torrent from a source: its info dictionary
// must hash to the manifest's infohash.
//
// Every source is tried up to three rounds, 0.2 then 1 s apart: a GET
// on a keep-alive connection the server closed at that moment fails
// with "server closed idle connection" (seen once under -race with 16
// torrents fetched at once from one source), and one such error failed
// the whole sync.
func (f *follower) torrentMeta(ctx context.Context, j *job) (*metainfo.MetaInfo, error) {
	if !f.usableHTTP() {
		return f.torrentMetaBT(ctx, j)
	}
	var errs []error
	bad := map[*source]bool{} // sent a bad .torrent: not asked again
	for round, wait := range []time.Duration{0, 200 * time.Millisecond, time.Second} {
		if round > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil, errors.Join(append(errs, ctx.Err())...)
			}
		}
		for _, s := range f.fetchSources() {
			if !s.usable() || bad[s] {
				continue
			}
			mi, isBad, err := f.getTorrent(ctx, s, j)
			if err == nil {
				return mi, nil
			}
			bad[s] = isBad
			errs = append(errs, err)
		}
		if len(errs) == 0 {
			break
		}
	}
	// No HTTP source gave it: the peers may.
	mi, err := f.torrentMetaBT(ctx, j)
	if err != nil {
		return nil, errors.Join(append(errs, err)...)
	}
	return mi, nil
}

// torrentMetaBT gets j's info from the BitTorrent peers (ut_metadata,
// BEP 9): anacrolix checks that it hashes to the manifest's infohash,
// and fetch then checks it with checkInfo, as one read over HTTP. The
// torrent is left added (fetch takes it over) with its files in the
// quarantine.
func (f *follower) torrentMetaBT(ctx context.Context, j *job) (*metainfo.MetaInfo, error) {
	peers := f.peerInfos(ctx)
	if len(peers) == 0 {
		return nil, fmt.Errorf("torrent %s: no usable HTTP source and no BitTorrent peer", j.name)
	}
	ih := metainfo.Hash(j.ih)
	f.n.mu.Lock()
	f.n.dirs[ih] = filepath.Join(f.dir, incomingDir)
	f.n.mu.Unlock()
	t, _ := f.n.cl.AddTorrentOpt(torrent.AddTorrentOpts{InfoHash: ih})
	t.AddPeers(peers)
	timer := time.NewTimer(btInfoTimeout)
	defer timer.Stop()
	select {
	case <-t.GotInfo():
	case <-ctx.Done():
		t.Drop()
		return nil, ctx.Err()
	case <-timer.C:
		t.Drop()
		return nil, fmt.Errorf("torrent %s: no info from %d BitTorrent peers in %s", j.name, len(peers), btInfoTimeout)
	}
	mi := t.Metainfo()
	return &mi, nil
}

// getTorrent GETs j's .torrent from s; bad reports that s answered with
// a file that is not j's torrent (penalised), not a transport error.
func (f *follower) getTorrent(ctx context.Context, s *source, j *job) (mi *metainfo.MetaInfo, bad bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	u := s.base + "/torrents/" + url.PathEscape(j.name) + ".torrent"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, err
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		s.failed(err, false)
		return nil, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("GET %s: %s", u, resp.Status)
		s.failed(err, false)
		return nil, false, err
	}
	mi, err = metainfo.Load(io.LimitReader(resp.Body, maxTorrentFile))
	if err == nil && mi.HashInfoBytes() != metainfo.Hash(j.ih) {
		err = fmt.Errorf("infohash %s, the manifest says %x", mi.HashInfoBytes(), j.ih)
	}
	if err != nil {
		err = fmt.Errorf("torrent %s from %s: %w", j.name, s.spec, err)
		s.failed(err, true)
		f.log.Warn("swarm: follow: bad torrent file", "source", s.spec, "err", err)
		return nil, true, err
	}
	return mi, false, nil
}

// peerInfos is peerAddrs as anacrolix's peers.
func (f *follower) peerInfos(ctx context.Context) []torrent.PeerInfo {
	var peers []torrent.PeerInfo
	for _, a := range f.peerAddrs(ctx) {
		if ta, err := net.ResolveTCPAddr("tcp", a); err == nil {
			peers = append(peers, torrent.PeerInfo{Addr: ta, Trusted: true})
		}
	}
	return peers
}

// usableHTTP reports whether any HTTP source is usable now.
func (f *follower) usableHTTP() bool {
	for _, s := range f.srcs {
		if s.usable() {
			return true
		}
	}
	return false
}

// peerAddrs returns the BitTorrent peers to try: the sources given as
// host:port, the peers met on the list's rendezvous torrent (gossip.go)
// and the BitTorrent address each HTTP source reports in its status,
// the sources asked at once.
func (f *follower) peerAddrs(ctx context.Context) []string {
	out := append([]string(nil), f.peers...)
	for _, p := range f.n.gossip.peers(f.nl) {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	srcs := f.fetchSources()
	asked := make([]string, len(srcs))
	var wg sync.WaitGroup
	for i, s := range srcs {
		wg.Go(func() { asked[i] = f.askPeer(ctx, s) })
	}
	wg.Wait()
	for _, p := range asked {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// askPeer returns the BitTorrent address a source reports in its status,
// read once and kept. The torrents downloading at once ask together: one
// read goes out per source, the others wait for it, and a failed read is
// not tried again for stallTimeout. Each torrent of a late joiner read
// every source's whole status (1.4 MB for a 5-year list, a line per
// pack) and, over the 1 MiB it was cut at, failed to parse it, so asked
// again: 48 reads for 16 torrents, 1 to 4 s of every torrent's start
// (bench mirror -years 5). The address is read from the status's
// first keys; the rest is not read.
func (f *follower) askPeer(ctx context.Context, s *source) string {
	s.mu.Lock()
	p := s.BTPeer
	s.mu.Unlock()
	if p != "" || !s.usable() {
		return p
	}
	s.ask.Lock()
	defer s.ask.Unlock()
	s.mu.Lock()
	p, at := s.BTPeer, s.askedAt
	s.mu.Unlock()
	if p != "" || time.Since(at) < stallTimeout {
		return p
	}
	p = f.readPeer(ctx, s)
	s.mu.Lock()
	if p != "" {
		s.BTPeer = p
	} else if ctx.Err() == nil { // a read cut short by its caller is no answer
		s.askedAt = time.Now()
	}
	s.mu.Unlock()
	return p
}

// readPeer reads a source's BitTorrent address from its status: the
// "listen" key among the object's first, before its packs.
func (f *follower) readPeer(ctx context.Context, s *source) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/status", nil)
	if err != nil {
		return ""
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	listen, err := statusListen(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return ""
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		u, err := url.Parse(s.base)
		if err != nil {
			return ""
		}
		host = u.Hostname()
	}
	return net.JoinHostPort(host, port)
}

// statusListen reads a status object's "listen" value, skipping the
// values before it, and stops there.
func statusListen(r io.Reader) (string, error) {
	dec := json.NewDecoder(r)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", fmt.Errorf("status: not an object")
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", err
		}
		key, _ := t.(string)
		if key == "listen" {
			var v string
			err := dec.Decode(&v)
			return v, err
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("status: no listen address")
}

// httpFill fetches the pieces of j's torrent that are missing, each from
// the first source that gives bytes hashing to the piece's hash, and
// writes them into the quarantined files. A source that sends bad bytes
// gets a penalty and is skipped after a few.
func (f *follower) httpFill(ctx context.Context, info *metainfo.Info, j *job, missing []int) error {
	inc := filepath.Join(f.dir, incomingDir)
	type span struct {
		file       string
		off, n     int64 // in the file
		globalFrom int64
	}
	var offs []int64 // start of each file in the torrent's byte stream
	var o int64
	for _, p := range j.packs {
		offs = append(offs, o)
		o += p.Size
	}
	files := make([]*os.File, len(j.packs))
	defer func() {
		for _, fh := range files {
			if fh != nil {
				fh.Close()
			}
		}
	}()
	for i, p := range j.packs {
		fh, err := os.OpenFile(filepath.Join(inc, p.File), os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		files[i] = fh
	}
	sizes := map[string]int64{}
	for _, p := range j.packs {
		sizes[p.File] = p.Size
	}
	srcs := f.fetchSources()
	failed := map[*source]bool{}
	var mu sync.Mutex
	next := 0
	for _, pi := range missing {
		piece := info.Piece(pi)
		start, n := piece.Offset(), piece.Length()
		var spans []span
		for i, p := range j.packs {
			a, b := max(start, offs[i]), min(start+n, offs[i]+p.Size)
			if a < b {
				spans = append(spans, span{file: p.File, off: a - offs[i], n: b - a, globalFrom: a - start})
				_ = i
			}
		}
		got := false
		var errs []error
		for k := 0; k < len(srcs) && !got; k++ {
			mu.Lock()
			s := srcs[(next+k)%len(srcs)]
			mu.Unlock()
			if !s.usable() {
				errs = append(errs, fmt.Errorf("%s: skipped: %w", s.spec, s.banErr()))
				continue
			}
			if failed[s] && len(failed) < len(srcs) {
				continue
			}
			buf := make([]byte, n)
			var err error
			for _, sp := range spans {
				if err = f.getRange(ctx, s, sp.file, sizes[sp.file], sp.off, buf[sp.globalFrom:sp.globalFrom+sp.n]); err != nil {
					break
				}
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				// A source that failed one piece is tried last for the
				// rest: one that stalls cost stallTimeout per piece,
				// not once.
				failed[s] = true
				err = fmt.Errorf("piece %d of %s from %s: %w", pi, j.name, s.spec, err)
				errs = append(errs, err)
				bad := errors.Is(err, errBadBytes)
				s.failed(err, bad)
				if bad {
					f.log.Warn("swarm: follow: source sent bad bytes", "source", s.spec, "err", err)
				} else {
					f.log.Warn("swarm: follow: range fetch failed", "source", s.spec, "err", err)
				}
				continue
			}
			if sha1.Sum(buf) != [20]byte(piece.V1Hash().Unwrap()) {
				err := fmt.Errorf("piece %d of %s from %s: %w (hash mismatch)", pi, j.name, s.spec, errBadBytes)
				failed[s] = true
				errs = append(errs, err)
				s.failed(err, true)
				f.log.Warn("swarm: follow: source sent bad bytes", "source", s.spec, "err", err)
				continue
			}
			for _, sp := range spans {
				idx := 0
				for i, p := range j.packs {
					if p.File == sp.file {
						idx = i
					}
				}
				if _, err := files[idx].WriteAt(buf[sp.globalFrom:sp.globalFrom+sp.n], sp.off); err != nil {
					return err
				}
			}
			f.mu.Lock()
			f.st.BytesDown += n
			f.mu.Unlock()
			s.ok()
			got = true
		}
		if !got {
			return fmt.Errorf("piece %d of %s: no source gave it: %w", pi, j.name, errors.Join(errs...))
		}
		next++
	}
	for _, fh := range files {
		if err := fh.Sync(); err != nil {
			return err
		}
	}
	return nil
}

// errBadBytes marks a source's answer that cannot be the manifest's
// file: bytes that fail their hash, or a file of another size.
var errBadBytes = errors.New("bad bytes")

// getRange reads len(buf) bytes at off of a pack of size bytes from s.
// The answer must be a 206 for a file of exactly size bytes (a source
// that has the file truncated, or with bytes after it, serves another
// file: errBadBytes). No deadline bounds the whole read: a slow but
// moving answer goes on, but one that brings no byte for stallTimeout
// (the header included) is cut off.
func (f *follower) getRange(ctx context.Context, s *source, file string, size, off int64, buf []byte) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errStalled := fmt.Errorf("stalled: no byte for %s", stallTimeout)
	stall := time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()
	u := s.base + "/packs/" + url.PathEscape(file)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+int64(len(buf))-1))
	resp, err := f.hc.Do(req)
	if err != nil {
		if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
			err = c
		}
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		return fmt.Errorf("GET %s: %s: its file is shorter than the manifest's %d bytes: %w", u, resp.Status, size, errBadBytes)
	}
	if resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("GET %s: %s, want 206", u, resp.Status)
	}
	var from, to, total int64
	if _, err := fmt.Sscanf(resp.Header.Get("Content-Range"), "bytes %d-%d/%d", &from, &to, &total); err != nil {
		return fmt.Errorf("GET %s: Content-Range %q: %w", u, resp.Header.Get("Content-Range"), errBadBytes)
	}
	if total != size || from != off || to != off+int64(len(buf))-1 {
		return fmt.Errorf("GET %s: Content-Range %q for bytes %d-%d of %d: %w", u, resp.Header.Get("Content-Range"), off, off+int64(len(buf))-1, size, errBadBytes)
	}
	for n := 0; n < len(buf); {
		k, err := resp.Body.Read(buf[n:])
		n += k
		if k > 0 {
			stall.Reset(stallTimeout)
		}
		if n == len(buf) {
			break
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err != nil {
			if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
				err = c
			}
			return fmt.Errorf("GET %s: %d of %d bytes: %w", u, n, len(buf), err)
		}
	}
	return nil
}

// progress logs a long sync's progress every few seconds: packs, bytes,
// rate and the time left.
type progress struct {
	f            *follower
	total        int64
	packs, done  int
	bytes        int64
	start        time.Time
	stopC        chan struct{}
	mu           sync.Mutex
	once         sync.Once
	progressTick time.Duration
}

func newProgress(f *follower, total int64, packs int) *progress {
	p := &progress{f: f, total: total, packs: packs, start: time.Now(), stopC: make(chan struct{}), progressTick: 5 * time.Second}
	if packs > 0 {
		go p.loop()
	}
	return p
}

func (p *progress) packDone(n int64) {
	p.mu.Lock()
	p.done++
	p.bytes += n
	p.mu.Unlock()
}

func (p *progress) stop() { p.once.Do(func() { close(p.stopC) }) }

func (p *progress) loop() {
	t := time.NewTicker(p.progressTick)
	defer t.Stop()
	for {
		select {
		case <-p.stopC:
			return
		case <-t.C:
		}
		p.mu.Lock()
		done, b := p.done, p.bytes
		p.mu.Unlock()
		el := time.Since(p.start)
		rate := float64(b) / el.Seconds()
		eta := "?"
		if rate > 0 {
			eta = time.Duration(float64(p.total-b) / rate * float64(time.Second)).Round(time.Second).String()
		}
		p.f.saveState() // the figures survive a kill
		p.f.log.Info("swarm: follow: progress", "packs", fmt.Sprintf("%d/%d", done, p.packs),
			"MiB", fmt.Sprintf("%.1f/%.1f", float64(b)/(1<<20), float64(p.total)/(1<<20)),
			"MiB/s", fmt.Sprintf("%.1f", rate/(1<<20)), "eta", eta)
	}
}
