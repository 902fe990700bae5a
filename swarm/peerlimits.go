package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"mailswarm/internal/netlimit"
)

// PeerLimits cap the BitTorrent side of a node, whose port a public
// mirror opens to anyone. A zero field means its default (there is no
// "unlimited"). A client is an IP address (IPv6: its /64), as for
// HTTPLimits.
type PeerLimits struct {
	// MaxConns caps open BitTorrent connections in all, those peers made
	// to us and those we dial (a dial over it fails at once, an accepted
	// connection over it is closed as soon as it is accepted). 0 means
	// DefaultPeerMaxConns, lowered to a quarter of the process's
	// descriptor limit (RLIMIT_NOFILE), as HTTP's: anacrolix/torrent
	// caps only established connections per torrent (50) and the
	// half-open ones it dials itself, so with one torrent per pack and
	// per bundle a stranger's handshakes for the infohashes the manifest
	// names were held without bound (under a limit of 256 descriptors,
	// 300 handshakes over 10 torrents were all held and SMTP and IMAP
	// stopped accepting); connections that send nothing are held for
	// the 4 s handshake timeout each, one per accept.
	MaxConns int
	// MaxConnsPerClient caps one client address's open connections; 0
	// means DefaultPeerMaxConnsPerClient.
	MaxConnsPerClient int
}

// The defaults of PeerLimits.
const (
	DefaultPeerMaxConns = 512
	// DefaultPeerMaxConnsPerClient: a peer needs one connection per
	// torrent it fetches at once; a mirror catching up on many packs
	// gets the rest from the web seed or once one finishes.
	DefaultPeerMaxConnsPerClient = 16
	// peerRequestBuffer bounds the piece data read from disk for one
	// peer's requests and not yet sent (anacrolix's
	// MaxAllocPeerRequestDataPerConn, 1 MiB by default): with the
	// connection cap, the memory strangers can make us hold. Requests
	// are 16 KiB (BEP 3).
	peerRequestBuffer = 256 << 10
	// peerHandshakeTimeout is how long a connection may take to finish
	// its handshakes before it is closed (anacrolix's default).
	peerHandshakeTimeout = 4 * time.Second
)

// withDefaults returns l with every zero field at its default.
func (l PeerLimits) withDefaults() PeerLimits {
	if l.MaxConns <= 0 {
		l.MaxConns = netlimit.DefaultCap(DefaultPeerMaxConns)
	}
	if l.MaxConnsPerClient <= 0 {
		l.MaxConnsPerClient = DefaultPeerMaxConnsPerClient
	}
	return l
}

// errPeerCap is a dial refused because the node holds its most
// BitTorrent connections (in all or to that address).
var errPeerCap = errors.New("swarm: bittorrent connection cap reached")

// peerConns counts a node's BitTorrent connections, accepted and dialed,
// against its PeerLimits.
type peerConns struct {
	lim    PeerLimits
	counts *netlimit.Counts
}

// listener returns ln capped at the limits (accept errors such as
// EMFILE are retried after a pause: anacrolix's accept loop retries at
// once, a busy loop).
func (p *peerConns) listener(ln net.Listener, log *slog.Logger) net.Listener {
	return &peerListener{capListener{Listener: ln, total: p.lim.MaxConns, perClient: p.lim.MaxConnsPerClient,
		counts: p.counts, log: log, name: "bittorrent"}}
}

// peerDialer is a torrent.Dialer that counts the connection against the
// limits, and refuses it over them.
type peerDialer struct {
	p       *peerConns
	network string
	d       *fromDialer
}

func (d *peerDialer) DialerNetwork() string { return d.network }

func (d *peerDialer) Dial(ctx context.Context, addr string) (net.Conn, error) {
	key := netlimit.ClientKey(addr)
	if !d.p.counts.Acquire(key, d.p.lim.MaxConns, d.p.lim.MaxConnsPerClient) {
		return nil, fmt.Errorf("dial %s: %w", addr, errPeerCap)
	}
	c, err := d.d.DialContext(ctx, d.network, addr)
	if err != nil {
		d.p.counts.Release(key)
		return nil, err
	}
	return &capConn{Conn: c, release: func() { d.p.counts.Release(key) }}, nil
}

// peerListener is the BitTorrent listener: capListener, with a pause
// after an accept error.
type peerListener struct{ capListener }

func (l *peerListener) Accept() (net.Conn, error) {
	var pause time.Duration
	for {
		c, err := l.capListener.Accept()
		if err == nil || errors.Is(err, net.ErrClosed) {
			return c, err
		}
		// As net/http's Serve: 5 ms, doubling, at most 1 s.
		pause = min(max(2*pause, 5*time.Millisecond), time.Second)
		l.acceptFailed(err)
		time.Sleep(pause)
	}
}

// acceptFailed logs accept errors, one line a minute at most.
func (l *peerListener) acceptFailed(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.errLoggedAt) < time.Minute {
		return
	}
	l.log.Warn("bittorrent: accept", "err", err, "open", l.counts.Open())
	l.errLoggedAt = time.Now()
}

// The BitTorrent client's log is rate limited: anacrolix logs some peer
// misbehaviour once per message (a request longer than
// peerRequestBuffer is a WARN line each time, and a peer may send
// thousands a second), so a stranger could otherwise fill the disk.
const (
	peerLogBurst = 100             // lines at once
	peerLogEvery = 1 * time.Second // then one line per this
)

// limitedLog is a slog.Handler passing at most peerLogBurst records at
// once and one per peerLogEvery after that; it counts what it drops and
// says so in the next record it passes.
type limitedLog struct {
	slog.Handler
	st *limitedLogState // shared by the handlers WithAttrs and WithGroup make
}

type limitedLogState struct {
	mu      sync.Mutex
	tokens  float64
	last    time.Time
	dropped int
}

func newLimitedLog(h slog.Handler) *limitedLog {
	return &limitedLog{Handler: h, st: &limitedLogState{tokens: peerLogBurst}}
}

func (l *limitedLog) Handle(ctx context.Context, r slog.Record) error {
	st := l.st
	st.mu.Lock()
	now := time.Now()
	if !st.last.IsZero() {
		st.tokens = min(peerLogBurst, st.tokens+float64(now.Sub(st.last))/float64(peerLogEvery))
	}
	st.last = now
	if st.tokens < 1 {
		st.dropped++
		st.mu.Unlock()
		return nil
	}
	st.tokens--
	dropped := st.dropped
	st.dropped = 0
	st.mu.Unlock()
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("log_lines_dropped", dropped))
	}
	return l.Handler.Handle(ctx, r)
}

func (l *limitedLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &limitedLog{Handler: l.Handler.WithAttrs(as), st: l.st}
}

func (l *limitedLog) WithGroup(name string) slog.Handler {
	return &limitedLog{Handler: l.Handler.WithGroup(name), st: l.st}
}
