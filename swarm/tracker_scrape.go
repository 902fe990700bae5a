package swarm

import (
	"bytes"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/anacrolix/torrent/metainfo"
)

// Scrape, over HTTP (GET /scrape, BEP 48) and UDP (BEP 15): for each
// infohash asked, its seeders ("complete", the node included when it
// seeds it), leechers ("incomplete") and the stored leechers that
// announced as seeders ("downloaded"; a peer repeating "completed"
// counts once). Only for infohashes of manifests this node
// verified, as announce: a request naming any other is refused whole
// ("unknown infohash"), and one naming none (BEP 48's scrape of every
// torrent) is refused too: the tracker lists nothing to strangers.

// maxScrapeQuery bounds a scrape's query string: udpMaxScrape
// infohashes, each "info_hash=" and 20 bytes escaped (at most 60), 71
// bytes with its '&'.
const maxScrapeQuery = udpMaxScrape * 71

// scrapeCounts is one infohash's scrape.
type scrapeCounts struct {
	complete, incomplete, downloaded int64
}

// scrapeOne returns ih's counts, false when ih is not known to the node.
func (n *Node) scrapeOne(ih metainfo.Hash) (scrapeCounts, bool) {
	known, seeding := n.trackerTorrent(ih)
	if !known {
		return scrapeCounts{}, false
	}
	return n.tracker.scrape(time.Now(), ih, seeding), true
}

// scrape counts ih's live peers, and the node when self.
func (s *peerStore) scrape(now time.Time, ih metainfo.Hash, self bool) scrapeCounts {
	s.mu.Lock()
	defer s.mu.Unlock()
	var c scrapeCounts
	if self {
		c.complete++
	}
	c.downloaded = s.done[ih]
	if sw := s.torrents[ih]; sw != nil {
		for _, p := range sw.peers {
			if now.Sub(p.seen) > s.ttl {
				continue
			}
			if p.seed {
				c.complete++
			} else {
				c.incomplete++
			}
		}
	}
	return c
}

// forget drops what the store keeps of ih: the node no longer knows it.
func (s *peerStore) forget(ih metainfo.Hash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.done, ih)
	if sw := s.torrents[ih]; sw != nil {
		s.total -= len(sw.peers)
		delete(s.torrents, ih)
	}
}

// serveScrape answers GET /scrape?info_hash=...[&info_hash=...] (BEP 48):
// 200 with a bencoded dictionary, a refusal a "failure reason" as for
// announce.
func (n *Node) serveScrape(w http.ResponseWriter, r *http.Request) {
	if n.opts.Tracker.Off {
		http.NotFound(w, r)
		return
	}
	if len(r.URL.RawQuery) > maxScrapeQuery {
		trackerFailure(w, "request too long")
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		trackerFailure(w, "bad query")
		return
	}
	ihs := q["info_hash"]
	if len(ihs) == 0 {
		trackerFailure(w, "scrape: name the infohashes")
		return
	}
	if len(ihs) > udpMaxScrape {
		trackerFailure(w, "scrape: at most 74 infohashes")
		return
	}
	// Keys of a bencoded dictionary are sorted (BEP 3); infohashes
	// asked twice are given once.
	counts := map[metainfo.Hash]scrapeCounts{}
	var order []metainfo.Hash
	for _, s := range ihs {
		if len(s) != 20 {
			trackerFailure(w, "info_hash: want 20 bytes")
			return
		}
		ih := metainfo.Hash([]byte(s))
		c, ok := n.scrapeOne(ih)
		if !ok {
			trackerFailure(w, "unknown infohash")
			return
		}
		if _, dup := counts[ih]; !dup {
			order = append(order, ih)
		}
		counts[ih] = c
	}
	slices.SortFunc(order, func(a, b metainfo.Hash) int { return bytes.Compare(a[:], b[:]) })
	var b bytes.Buffer
	b.WriteString("d5:filesd")
	for _, ih := range order {
		c := counts[ih]
		bencodeString(&b, string(ih[:]))
		b.WriteByte('d')
		bencodeInt(&b, "complete", c.complete)
		bencodeInt(&b, "downloaded", c.downloaded)
		bencodeInt(&b, "incomplete", c.incomplete)
		b.WriteByte('e')
	}
	b.WriteString("ee")
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b.Bytes())
}
