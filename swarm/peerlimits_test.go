package swarm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"mailswarm/internal/netlimit"
)

// btHandshake connects to the node's BitTorrent port from local address
// ip (127.0.0.x: another client) and sends a BitTorrent handshake (BEP 3,
// no extensions) for infohash ih; it reports whether the node answered
// with its own handshake for ih (within 10 s). The connection stays open.
func btHandshake(t testing.TB, tn *testNode, ip string, ih [20]byte) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", tn.node.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	hs := append([]byte("\x13BitTorrent protocol"), make([]byte, 8)...)
	hs = append(hs, ih[:]...)
	id := make([]byte, 20)
	rand.Read(id)
	hs = append(hs, id...)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(hs); err != nil {
		return c, false
	}
	reply := make([]byte, 68)
	if _, err := io.ReadFull(c, reply); err != nil {
		return c, false
	}
	return c, bytes.HasPrefix(reply, hs[:20]) && bytes.Equal(reply[28:48], ih[:])
}

// stillOpen reports whether the node still holds c: reading what it sends
// (bitfield, unchoke) runs into a deadline rather than the end.
func stillOpen(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	_, err := io.Copy(io.Discard, c)
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// held counts the connections of cs the node still holds (all at once:
// each takes its half second).
func held(cs []net.Conn) int {
	var n atomic.Int32
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			if stillOpen(c) {
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return int(n.Load())
}

// handshakes makes n handshakes from ip for the node's torrents in turn
// and returns the connections.
func handshakes(t testing.TB, tn *testNode, ip string, n int) (cs []net.Conn) {
	t.Helper()
	var ihs [][20]byte
	m := tn.manifest(t)
	for _, p := range m.Packs {
		ihs = append(ihs, p.InfoHash)
	}
	for _, b := range m.Bundles {
		ihs = append(ihs, b.InfoHash)
	}
	for i := range n {
		c, _ := btHandshake(t, tn, ip, ihs[i%len(ihs)])
		cs = append(cs, c)
	}
	return cs
}

// With the default limits, one client's 40 handshakes for the torrents
// the manifest names get at most DefaultPeerMaxConnsPerClient
// connections held (before: all 40; anacrolix caps only 50 established
// per torrent, and there is one torrent per pack and per bundle).
func TestPeerConnectionCapDefault(t *testing.T) {
	tn := startTestNode(t, 1)
	cs := handshakes(t, tn, "127.0.0.2", 40)
	if n := held(cs); n > DefaultPeerMaxConnsPerClient {
		t.Errorf("%d of 40 BitTorrent connections from one client held, want at most %d", n, DefaultPeerMaxConnsPerClient)
	}
	// Another client is still served.
	if _, ok := btHandshake(t, tn, "127.0.0.3", tn.manifest(t).Packs[0].InfoHash); !ok {
		t.Error("a second client's handshake is not answered")
	}
}

// With caps of 4 connections per client and 8 in all: a client's 5th and
// 6th connections are closed, a third client gets none while two hold 8,
// and a closed connection frees its place.
func TestPeerConnectionCap(t *testing.T) {
	tn := startTestNodeOpts(t, 1, Options{Peers: PeerLimits{MaxConns: 8, MaxConnsPerClient: 4}}, nil)
	a := handshakes(t, tn, "127.0.0.2", 6)
	b := handshakes(t, tn, "127.0.0.3", 6)
	if na, nb := held(a), held(b); na != 4 || nb != 4 {
		t.Fatalf("held %d and %d of 6 connections of two clients, want 4 and 4", na, nb)
	}
	if _, ok := btHandshake(t, tn, "127.0.0.4", tn.manifest(t).Packs[0].InfoHash); ok {
		t.Error("a third client is answered over the cap of 8 in all")
	}
	// Free a place: the node sees the close before a new accept (bounded wait).
	for _, c := range a {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for tn.node.peers.counts.Open() > 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok := btHandshake(t, tn, "127.0.0.4", tn.manifest(t).Packs[0].InfoHash); !ok {
		t.Errorf("no place after a client closed its connections (%d open)", tn.node.peers.counts.Open())
	}
}

// A handshake for an infohash the node does not seed (never added: the
// node adds only what its manifests name, never what peers ask for) is
// closed with nothing sent after the handshake (anacrolix echoes the
// handshake before it looks the infohash up), and adds no torrent.
func TestPeerUnknownInfohashDropped(t *testing.T) {
	tn := startTestNode(t, 1)
	var ih [20]byte
	rand.Read(ih[:])
	c, _ := btHandshake(t, tn, "127.0.0.2", ih)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := io.Copy(io.Discard, c); n != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("after a handshake for an unknown infohash: %d bytes more, then %v; want none and the end (FIN or RST)", n, err)
	}
	// The manifest's torrents and the list's rendezvous torrent (gossip.go).
	if n := len(tn.node.Client().Torrents()); n != len(tn.manifest(t).Packs)+len(tn.manifest(t).Bundles)+1 {
		t.Errorf("the client has %d torrents after a handshake for an unknown one", n)
	}
}

// A dial over the cap fails at once and takes no place; a failed dial
// gives its place back.
func TestPeerDialerCap(t *testing.T) {
	p := &peerConns{lim: PeerLimits{MaxConns: 1, MaxConnsPerClient: 1}, counts: netlimit.NewCounts()}
	d := &peerDialer{p: p, network: "tcp4", d: newFromDialer("", 5*time.Second)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := d.Dial(t.Context(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Dial(t.Context(), ln.Addr().String()); !errors.Is(err, errPeerCap) {
		t.Errorf("second dial with a cap of 1: %v, want errPeerCap", err)
	}
	c.Close()
	ln.Close()
	if _, err := d.Dial(t.Context(), ln.Addr().String()); err == nil || errors.Is(err, errPeerCap) {
		t.Errorf("dial to a closed port after the place was freed: %v", err)
	}
	if n := p.counts.Open(); n != 0 {
		t.Errorf("%d counted after a close and a failed dial", n)
	}
}

// countHandler counts the records it gets and keeps the last.
type countHandler struct {
	n    *atomic.Int32
	last *slog.Record
	mu   *sync.Mutex
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n.Add(1)
	*h.last = r
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// The BitTorrent client's log passes a burst, then about a line a second:
// 10,000 WARN lines (a peer's oversized requests, one line each in
// anacrolix) do not all reach the log, and the next line that passes says
// how many were dropped.
func TestPeerLogLimited(t *testing.T) {
	h := countHandler{n: new(atomic.Int32), last: new(slog.Record), mu: new(sync.Mutex)}
	lim := newLimitedLog(h)
	log := slog.New(lim).With("part", "bittorrent")
	start := time.Now()
	for i := range 10000 {
		log.Warn("peer request length exceeds MaxAllocPeerRequestDataPerConn", "i", i)
	}
	most := peerLogBurst + int(time.Since(start)/peerLogEvery) + 1
	if n := int(h.n.Load()); n > most {
		t.Errorf("%d of 10,000 lines logged, want at most %d", n, most)
	}
	lim.st.mu.Lock()
	lim.st.tokens = 1 // as if a second had passed
	lim.st.mu.Unlock()
	log.Warn("after")
	var dropped int64
	h.last.Attrs(func(a slog.Attr) bool {
		if a.Key == "log_lines_dropped" {
			dropped = a.Value.Int64()
		}
		return true
	})
	if passed := int64(h.n.Load()) - 1; dropped == 0 || passed+dropped != 10000 {
		t.Errorf("the next line says %d dropped, %d passed: want 10,000 in all", dropped, passed)
	}
}
