package swarm

import (
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/anacrolix/torrent/metainfo"

	"mailswarm/internal/netlimit"
)

// The HTTP side of a node (docs/DESIGN.md, "Packs, torrents and the manifest"):
//
//	GET /lists/                       the lists served, JSON
//	GET /lists/NAME/manifest          the signed manifest; ETag "SEQ-HASH";
//	                                  ?after=N&wait=S long-polls up to S s
//	                                  (≤ 300) for a manifest with seq > N;
//	                                  &have=HASH (hex sha256 of a manifest
//	                                  file the client holds): a patch from
//	                                  it when this node can make one
//	GET /lists/NAME/key               the list's public key, hex, one line
//	GET /lists/NAME/torrents/F.torrent  a pack's or bundle's torrent, with
//	                                  this node's web seed and trackers
//	GET /lists/NAME/packs/F           a pack (Range requests): the web seed
//	GET /lists/NAME/packs/BUNDLE/F    the same file as a bundle's member
//	GET /lists/NAME/status            what `mailswarm swarm status` shows,
//	                                  without server paths unless asked
//	                                  with the list's StatusToken
//	GET /lists/NAME/dht               the list's signed BEP 44 item this node
//	                                  holds and puts again (dhtput.go): bencode
//	                                  {seq, sig, v}; 404 when none
//	GET /announce                     the node's tracker (tracker.go)
//
// Only files the current manifest names are served: retired slices and
// leftovers are 404.

const maxLongPoll = 300 * time.Second

// longPollRetryAfter is the Retry-After, in seconds, of a long-poll
// refused over the cap.
const longPollRetryAfter = 10

// Handler returns the node's HTTP handler. Every write of an answer has a
// deadline HTTPLimits.WriteStall ahead (on a server whose connections
// take deadlines); serve it with HTTPServer for the other limits.
func (n *Node) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /lists/{$}", n.serveLists)
	mux.HandleFunc("GET /lists/{list}/manifest", n.serveManifest)
	mux.HandleFunc("GET /lists/{list}/key", n.serveKey)
	mux.HandleFunc("GET /lists/{list}/torrents/{file}", n.serveTorrent)
	mux.HandleFunc("GET /lists/{list}/packs/{file}", n.servePack)
	mux.HandleFunc("GET /lists/{list}/packs/{bundle}/{file}", n.servePack)
	mux.HandleFunc("GET /lists/{list}/status", n.serveStatus)
	mux.HandleFunc("GET /lists/{list}/dht", n.serveItem)
	mux.HandleFunc("GET /announce", n.serveAnnounce)
	mux.HandleFunc("GET /scrape", n.serveScrape)
	return withWriteStall(mux, n.opts.HTTP.WriteStall)
}

func (n *Node) serveLists(w http.ResponseWriter, r *http.Request) {
	type entry struct {
		Name string `json:"name"`
		Key  string `json:"key"`
		Seq  int64  `json:"seq"`
	}
	n.mu.Lock()
	out := []entry{}
	for name, nl := range n.lists {
		e := entry{Name: name, Key: hex.EncodeToString(nl.list.PublicKey())}
		if nl.manifest != nil {
			e.Seq = nl.manifest.Seq
		}
		out = append(out, e)
	}
	n.mu.Unlock()
	writeJSON(w, out)
}

// manifestETag is the manifest's entity tag: its sequence and hash.
func manifestETag(m *Manifest) string {
	h := m.Hash()
	return fmt.Sprintf(`"%d-%x"`, m.Seq, h[:8])
}

func (n *Node) serveManifest(w http.ResponseWriter, r *http.Request) {
	nl := n.list(r.PathValue("list"))
	if nl == nil {
		http.NotFound(w, r)
		return
	}
	after := int64(-1)
	if s := r.URL.Query().Get("after"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			http.Error(w, "after: want a sequence number", http.StatusBadRequest)
			return
		}
		after = v
	}
	var have [32]byte
	hasBase := false
	if s := r.URL.Query().Get("have"); s != "" {
		if len(s) != 2*len(have) {
			http.Error(w, "have: want the sha256 of a manifest file, hex", http.StatusBadRequest)
			return
		}
		if _, err := hex.Decode(have[:], []byte(s)); err != nil {
			http.Error(w, "have: want the sha256 of a manifest file, hex", http.StatusBadRequest)
			return
		}
		hasBase = true
	}
	var wait time.Duration
	if s := r.URL.Query().Get("wait"); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			http.Error(w, "wait: want a finite number of seconds, 0 to 300", http.StatusBadRequest)
			return
		}
		// Clamp before converting: 1e10 s is past what a Duration holds
		// (292 years) and converted to a negative one, an immediate 304.
		wait = time.Duration(min(v, maxLongPoll.Seconds()) * float64(time.Second))
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	polling := false
	for {
		n.mu.Lock()
		m, changed := nl.manifest, nl.changed
		n.mu.Unlock()
		if m != nil && m.Seq > after {
			etag := manifestETag(m)
			w.Header().Set("ETag", etag)
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("X-Mailswarm-Seq", strconv.FormatInt(m.Seq, 10))
			if match := r.Header.Get("If-None-Match"); match != "" && (match == etag || match == "*") {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			if hasBase {
				// The client holds an earlier manifest this node
				// served: the patch from it, when worth sending.
				if p := n.patchFor(nl, m, have); p != nil {
					w.Header().Set("Content-Type", patchContentType)
					w.Header().Set("Content-Length", strconv.Itoa(len(p)))
					w.Write(p)
					return
				}
			}
			w.Header().Set("Content-Type", "application/x-mailswarm-manifest")
			w.Header().Set("Content-Length", strconv.Itoa(len(m.Bytes())))
			w.Write(m.Bytes())
			return
		}
		if wait == 0 {
			if m == nil {
				http.Error(w, "no manifest published yet", http.StatusNotFound)
			} else {
				w.Header().Set("X-Mailswarm-Seq", strconv.FormatInt(m.Seq, 10))
				w.WriteHeader(http.StatusNotModified)
			}
			return
		}
		if !polling {
			// Each waiting poll holds a connection and a goroutine for
			// up to 300 s: capped in all and per client. Over the cap
			// the client is told when to come back (RFC 9110 §15.6.4,
			// §10.2.3) rather than answered at once, which a poller
			// would take as "poll again now".
			client := netlimit.ClientKey(r.RemoteAddr)
			lim := n.opts.HTTP
			if !n.polls.Acquire(client, lim.MaxLongPolls, lim.MaxLongPollsPerClient) {
				w.Header().Set("Retry-After", strconv.Itoa(longPollRetryAfter))
				http.Error(w, "too many long-polls waiting: retry later", http.StatusServiceUnavailable)
				return
			}
			defer n.polls.Release(client)
			polling = true
		}
		select {
		case <-changed:
		case <-deadline.C:
			wait = 0
		case <-r.Context().Done():
			return
		}
	}
}

func (n *Node) serveKey(w http.ResponseWriter, r *http.Request) {
	nl := n.list(r.PathValue("list"))
	if nl == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, hex.EncodeToString(nl.list.PublicKey()))
}

// WebSeed returns the web seed URL of list's packs ("" without a base).
func (n *Node) WebSeed(list string) string {
	if n.opts.WebSeedBase == "" {
		return ""
	}
	return strings.TrimSuffix(n.opts.WebSeedBase, "/") + "/lists/" + list + "/packs/"
}

func (n *Node) serveTorrent(w http.ResponseWriter, r *http.Request) {
	nl := n.list(r.PathValue("list"))
	name, ok := strings.CutSuffix(r.PathValue("file"), ".torrent")
	if nl == nil || !ok {
		http.NotFound(w, r)
		return
	}
	n.mu.Lock()
	_, named := nl.entries[name]
	n.mu.Unlock()
	if !named {
		http.NotFound(w, r)
		return
	}
	mi, err := readTorrent(nl.dir, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	out := metainfo.MetaInfo{InfoBytes: mi.InfoBytes}
	if ws := n.WebSeed(nl.name); ws != "" {
		out.UrlList = []string{ws}
	}
	// Trackers sit outside the info dictionary: the infohash stays the
	// manifest's. This node's own tracker comes first (BEP 12: the
	// first tier is tried first), the configured ones next.
	var tiers [][]string
	if tr := n.TrackerURL(); tr != "" {
		tiers = append(tiers, []string{tr})
	}
	// Its UDP side next (tracker_udp.go): the HTTP one, on the port the
	// .torrent was fetched from, is known reachable; UDP may be
	// filtered, and a client falls back to the next tier.
	if tr := n.UDPTrackerURL(); tr != "" {
		tiers = append(tiers, []string{tr})
	}
	if len(n.opts.Trackers) > 0 {
		tiers = append(tiers, n.opts.Trackers)
	}
	if len(tiers) > 0 {
		out.Announce = tiers[0][0]
		out.AnnounceList = tiers
	}
	b, err := bencode.Marshal(out)
	if err != nil {
		http.Error(w, "torrent", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-bittorrent")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

func (n *Node) servePack(w http.ResponseWriter, r *http.Request) {
	nl := n.list(r.PathValue("list"))
	if nl == nil {
		http.NotFound(w, r)
		return
	}
	file, bundle := r.PathValue("file"), r.PathValue("bundle")
	n.mu.Lock()
	m := nl.manifest
	n.mu.Unlock()
	if m == nil || !m.names(bundle, file) {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(filepath.Join(nl.dir, packsDir, file))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		http.Error(w, "pack", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-git-packed-objects")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	if tooManyRanges(r.Header.Get("Range")) {
		// ServeContent answers every range asked for, each a part with
		// its own headers: 250,000 one-byte ranges in a 1 MB request
		// made a 37.7 MB answer. A web seed (BEP 19) asks for one range
		// a request. RFC 9110 §14.2 lets a server ignore Range ("a set
		// of many small ranges ... indications of either a broken
		// client or a deliberate denial-of-service attack"): the whole
		// pack as a plain 200 is a correct answer any client handles
		// (a 416 would say the ranges miss the file, which is false),
		// and it is no more than anyone gets with a plain GET.
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, file, fi.ModTime(), f)
}

// maxRanges is the most ranges one request gets answered as asked; a web
// seed asks for one, a reader of a multipart answer a few.
const maxRanges = 4

// tooManyRanges reports whether a Range header asks for more than
// maxRanges ranges (it counts without parsing the rest).
func tooManyRanges(h string) bool {
	return strings.Count(h, ",") >= maxRanges
}

// names reports whether m names pack file (as a member of bundle when
// bundle is not empty).
func (m *Manifest) names(bundle, file string) bool {
	if bundle != "" {
		for _, b := range m.Bundles {
			if b.Name == bundle {
				for _, f := range b.Files {
					if f == file {
						return true
					}
				}
			}
		}
		return false
	}
	for _, p := range m.Packs {
		if p.File == file {
			return true
		}
	}
	return false
}

func (n *Node) serveStatus(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("list")
	nl := n.list(name)
	if nl == nil {
		http.NotFound(w, r)
		return
	}
	st, err := n.Status(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	// Absolute paths tell strangers the server's layout (home, user
	// names); the operator's `swarm status` proves it holds list.key.
	tok := r.Header.Get(StatusTokenHeader)
	// A followed list has no list.key here: its paths are never shown.
	if tok == "" || nl.origin == nil || !hmac.Equal([]byte(tok), []byte(statusToken(nl.origin.priv, nl.dir))) {
		st = st.withoutPaths()
	}
	writeJSON(w, st)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
