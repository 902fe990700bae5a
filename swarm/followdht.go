package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// A follower learns of new manifests from the list's BEP 44 item too
// (dhtput.go): with the DHT on it reads the item at start and every
// Options.DHTRead, and it asks its HTTP sources for theirs
// (GET /lists/NAME/dht) when they hand it a manifest newer than its
// item. An item is taken only when it verifies under the followed key
// (dhtItem.pointer), is kept in the list's swarm directory and put into
// the DHT again by the node (Options.DHTRePut). An item naming a newer
// manifest than the newest verified here is a hint: the follower fetches
// that manifest (hint), which must be the one the item names.

// maxHintSources caps the sources made from items' URLs (an item names
// its origin's manifest URL; another URL only when the origin moved).
const maxHintSources = 8

// dhtLoop reads the list's item from the DHT now and every DHTRead until
// ctx ends.
func (f *follower) dhtLoop(ctx context.Context) {
	for {
		f.readDHT(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.n.opts.DHTRead):
		}
	}
}

// readDHT reads the list's item from the DHT once and takes it.
func (f *follower) readDHT(ctx context.Context) {
	it, p, refused, err := f.n.getItem(ctx, f.spec.Key)
	f.mu.Lock()
	f.st.DHTReads++
	f.st.DHTRefused += refused
	f.mu.Unlock()
	if refused > 0 {
		f.log.Warn("swarm: follow: DHT items refused (another key, a bad signature or value)", "refused", refused)
	}
	if it == nil {
		if err != nil && ctx.Err() == nil {
			f.log.Debug("swarm: follow: dht item", "err", err)
		}
		return
	}
	f.takeItem(ctx, it, p, "dht")
}

// takeItem keeps it (verified: p is its pointer) when it is newer than
// the item held, and follows the hint when it names a manifest newer
// than the newest verified here.
func (f *follower) takeItem(ctx context.Context, it *dhtItem, p manifestPointer, from string) {
	newer, err := f.n.keepItem(f.nl, it, true)
	if err != nil {
		f.log.Error("swarm: follow: dht item", "err", err)
	}
	f.mu.Lock()
	if it.Seq >= f.st.DHTSeq {
		f.st.DHTSeq, f.st.DHTSeen, f.st.DHTFrom = it.Seq, time.Now().UTC(), from
	}
	f.mu.Unlock()
	if newer {
		f.log.Info("swarm: follow: dht item", "seq", it.Seq, "from", from)
	}
	var h [32]byte
	copy(h[:], p.Hash)
	if err := f.hint(ctx, it.Seq, h, p.URL); err != nil && ctx.Err() == nil {
		f.log.Info("swarm: follow: a newer manifest is named but no source gave it: waiting for peers",
			"seq", it.Seq, "err", err)
	}
}

// hint is told that the list's manifest seq exists and its file's sha256
// is hash (a verified BEP 44 item says so; peer gossip may say so too),
// and where it may be served (url: "" for nowhere known). When seq is
// newer than the newest verified here, the manifest is fetched from url,
// else from the HTTP sources, and offered: it must be that manifest (a
// manifest of that seq with another hash is refused with a penalty for
// whoever served it; a signed newer one is taken). With none to be had,
// the hint is kept (wanted) for peers to answer, and an error says why.
func (f *follower) hint(ctx context.Context, seq int64, hash [32]byte, url string) error {
	if m := f.newest(); m != nil && m.Seq >= seq {
		return nil
	}
	f.mu.Lock()
	if seq > f.wantSeq {
		f.wantSeq, f.wantHash = seq, hash
	}
	f.mu.Unlock()
	var errs []error
	for _, s := range f.hintSources(url) {
		if !s.usable() {
			continue
		}
		m, err := f.fetchHinted(ctx, s, seq, hash)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs = append(errs, fmt.Errorf("%s: %w", s.spec, err))
			continue
		}
		if m != nil && m.Seq >= seq {
			return nil
		}
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no HTTP source has it"))
	}
	return errors.Join(errs...)
}

// wanted returns the newest manifest a hint named that is not verified
// here yet (seq 0 when none): what peer gossip should ask peers for.
func (f *follower) wanted() (int64, [32]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if (f.cur != nil && f.cur.Seq >= f.wantSeq) || (f.best != nil && f.best.Seq >= f.wantSeq) {
		return 0, [32]byte{}
	}
	return f.wantSeq, f.wantHash
}

// fetchHinted fetches from s the manifest after the newest verified and
// offers it: one of seq must hash to hash. A manifest older than seq (a
// source behind) is offered too, as progress, and returned.
func (f *follower) fetchHinted(ctx context.Context, s *source, seq int64, hash [32]byte) (*Manifest, error) {
	m, err := f.fetchManifest(ctx, s, f.newest(), 0)
	if err == nil && m != nil && m.Seq == seq && m.Hash() != hash {
		err = refused(fmt.Errorf("from %s: seq %d has sha256 %x, not the %x the DHT item names", s.spec, seq, m.Hash(), hash))
	}
	if err == nil && m != nil {
		err = f.offer(m)
	}
	if err != nil {
		if ctx.Err() == nil {
			f.sourceFailed(s, err)
		}
		return nil, err
	}
	s.ok()
	if m != nil {
		f.log.Info("swarm: follow: manifest fetched on a DHT hint", "source", s.spec, "seq", m.Seq)
	}
	return m, nil
}

// hintSources are the sources to ask for a hinted manifest: the one at
// url first (a configured source when it is one), then the HTTP sources.
func (f *follower) hintSources(url string) []*source {
	out := make([]*source, 0, len(f.srcs)+1)
	base, ok := strings.CutSuffix(url, "/manifest")
	if ok && (strings.HasPrefix(base, "http://") || strings.HasPrefix(base, "https://")) {
		var s *source
		for _, c := range f.srcs {
			if c.base == base {
				s = c
			}
		}
		if s == nil {
			f.mu.Lock()
			if s = f.urlSrcs[base]; s == nil {
				if len(f.urlSrcs) >= maxHintSources {
					clear(f.urlSrcs)
				}
				s = &source{spec: url, base: base}
				s.Source = url
				f.urlSrcs[base] = s
			}
			f.mu.Unlock()
		}
		out = append(out, s)
	}
	for _, c := range f.srcs {
		if len(out) == 0 || c != out[0] {
			out = append(out, c)
		}
	}
	return out
}

// fetchSources are the sources to download from: the HTTP sources, then
// those made from items' URLs that served a verified manifest.
func (f *follower) fetchSources() []*source {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.urlSrcs) == 0 {
		return f.srcs
	}
	out := slices.Clone(f.srcs)
	var extra []*source
	for _, s := range f.urlSrcs {
		if !s.status().LastOK.IsZero() {
			extra = append(extra, s)
		}
	}
	slices.SortFunc(extra, func(a, b *source) int { return strings.Compare(a.base, b.base) })
	return append(out, extra...)
}

// itemFrom asks s for its item when s gave a manifest newer than the
// item held (a source that serves none, an older node, is not an error).
// An item that fails its check is refused with a penalty.
func (f *follower) itemFrom(ctx context.Context, s *source, seq int64) {
	if held, _ := f.n.heldItem(f.nl); held != nil && held.Seq >= seq {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/dht", nil)
	if err != nil {
		return
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		f.log.Debug("swarm: follow: dht item", "source", s.spec, "err", err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDHTItem+1))
	if err != nil {
		f.log.Debug("swarm: follow: dht item", "source", s.spec, "err", err)
		return
	}
	it, p, err := decodeItem(b, f.spec.Key)
	if err != nil {
		err = fmt.Errorf("from %s: %w", s.spec, err)
		s.failed(err, true)
		f.mu.Lock()
		f.st.DHTRefused++
		f.mu.Unlock()
		f.log.Warn("swarm: follow: dht item refused", "source", s.spec, "err", err)
		return
	}
	f.takeItem(ctx, it, p, s.spec)
}

// serveItem answers GET /lists/NAME/dht: the signed BEP 44 item this
// node holds for the list (dhtItem's encoding), 404 when none.
func (n *Node) serveItem(w http.ResponseWriter, r *http.Request) {
	nl := n.list(r.PathValue("list"))
	if nl == nil {
		http.NotFound(w, r)
		return
	}
	it, _ := n.heldItem(nl)
	if it == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-bittorrent-bep44")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(encodeItem(it))
}
