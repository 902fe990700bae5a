package swarm

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"mailswarm/internal/netlimit"
)

// HTTPLimits are the limits of a node's HTTP listener, which a public
// mirror puts in front of anyone. A zero field means its default (there
// is no "unlimited"). The per-client caps count a client address (IPv6:
// its /64); behind a reverse proxy every client has the proxy's address,
// so raise them there (or let the proxy limit).
type HTTPLimits struct {
	// MaxConns caps open connections in all; one over it is closed as
	// soon as it is accepted. 0 means DefaultHTTPMaxConns, lowered to a
	// quarter of the process's descriptor limit (RLIMIT_NOFILE) so that
	// HTTP never takes the descriptors SMTP, IMAP, BitTorrent and the
	// archive's files need: under a limit of 1,024, 1,002 idle HTTP
	// connections made SMTP and IMAP fail accept4 with "too many open
	// files"; with the default cap HTTP holds at most 256 of 1,024 and
	// leaves 768 for the rest.
	MaxConns int
	// MaxConnsPerClient caps one client address's open connections; 0
	// means DefaultHTTPMaxConnsPerClient.
	MaxConnsPerClient int
	// MaxLongPolls caps manifest long-polls waiting at once, and
	// MaxLongPollsPerClient one client address's; a poll over either is
	// answered 503 with Retry-After. 0 means DefaultHTTPMaxLongPolls
	// (and never more than MaxConns) and DefaultHTTPMaxLongPollsPerClient.
	MaxLongPolls, MaxLongPollsPerClient int
	// ReadHeaderTimeout bounds reading a request's header (0: 10 s) and
	// ReadTimeout the whole request with its body (0: 30 s): we serve
	// GETs, a body that never comes is cut off.
	ReadHeaderTimeout, ReadTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request for
	// this long (0: 60 s; idle connections stayed open 130 s+).
	IdleTimeout time.Duration
	// WriteStall closes a connection whose client took no bytes for this
	// long (0: 60 s). It is a deadline on each write, moved on as bytes
	// flow (every 64 KiB of a pack): a slow but moving download of a
	// 500 MiB bundle goes on, a stalled one ends. Long-polls are not
	// writing while they wait.
	WriteStall time.Duration
}

// The defaults of HTTPLimits.
const (
	DefaultHTTPMaxConns              = 512
	DefaultHTTPMaxConnsPerClient     = 16 // aria2's most connections per server (-x 16)
	DefaultHTTPMaxLongPolls          = 128
	DefaultHTTPMaxLongPollsPerClient = 8 // a mirror polls one manifest per list it follows
	DefaultHTTPReadHeaderTimeout     = 10 * time.Second
	DefaultHTTPReadTimeout           = 30 * time.Second
	DefaultHTTPIdleTimeout           = 60 * time.Second
	DefaultHTTPWriteStall            = 60 * time.Second
	// httpMaxHeaderBytes bounds a request's header (Go's default is
	// 1 MiB: the 250,000-range request was one).
	httpMaxHeaderBytes = 64 << 10
	// stallChunk is how much of a pack goes out under one write
	// deadline: at the default stall, a client slower than 64 KiB a
	// minute (about 1 KiB/s) is cut off.
	stallChunk = 64 << 10
)

// withDefaults returns l with every zero field at its default.
func (l HTTPLimits) withDefaults() HTTPLimits {
	if l.MaxConns <= 0 {
		l.MaxConns = netlimit.DefaultCap(DefaultHTTPMaxConns)
	}
	if l.MaxConnsPerClient <= 0 {
		l.MaxConnsPerClient = DefaultHTTPMaxConnsPerClient
	}
	if l.MaxLongPolls <= 0 {
		l.MaxLongPolls = min(DefaultHTTPMaxLongPolls, l.MaxConns)
	}
	if l.MaxLongPollsPerClient <= 0 {
		l.MaxLongPollsPerClient = DefaultHTTPMaxLongPollsPerClient
	}
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&l.ReadHeaderTimeout, DefaultHTTPReadHeaderTimeout}, {&l.ReadTimeout, DefaultHTTPReadTimeout},
		{&l.IdleTimeout, DefaultHTTPIdleTimeout}, {&l.WriteStall, DefaultHTTPWriteStall}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	return l
}

// HTTPServer returns the server of n's Handler with n's HTTPLimits'
// timeouts; requests run under ctx (cancelling it ends the long-polls).
// Serve it on HTTPListener(ln), which applies the connection caps.
func (n *Node) HTTPServer(ctx context.Context) *http.Server {
	l := n.opts.HTTP
	return &http.Server{
		Handler:           n.Handler(),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		IdleTimeout:       l.IdleTimeout,
		// No WriteTimeout: it would bound the whole answer, and a 500
		// MiB bundle or a 300 s long-poll takes longer. Handler sets a
		// deadline on each write instead (WriteStall).
		MaxHeaderBytes: httpMaxHeaderBytes,
		BaseContext:    func(net.Listener) context.Context { return ctx },
		ErrorLog:       slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
}

// HTTPListener returns ln capped at n's HTTPLimits' MaxConns connections
// in all and MaxConnsPerClient per client address: a connection over
// either is closed as soon as it is accepted, so the process holds at
// most one descriptor more than the cap.
func (n *Node) HTTPListener(ln net.Listener) net.Listener {
	return &capListener{Listener: ln, total: n.opts.HTTP.MaxConns, perClient: n.opts.HTTP.MaxConnsPerClient,
		counts: netlimit.NewCounts(), log: n.log, name: "http"}
}

// capListener is a listener with a cap on open connections, in all and
// per client.
type capListener struct {
	net.Listener
	total, perClient int
	counts           *netlimit.Counts
	log              *slog.Logger
	name             string // of the listener, in log lines

	mu          sync.Mutex
	refused     int       // since the last log line
	loggedAt    time.Time // of the last log line
	errLoggedAt time.Time // of the last accept error logged
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := netlimit.ClientKey(c.RemoteAddr().String())
		if l.counts.Acquire(key, l.total, l.perClient) {
			return &capConn{Conn: c, release: func() { l.counts.Release(key) }}, nil
		}
		c.Close()
		l.refusedOne(key)
	}
}

// refusedOne logs refused connections, one line a minute at most.
func (l *capListener) refusedOne(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.refused++
	if time.Since(l.loggedAt) < time.Minute {
		return
	}
	l.log.Warn(l.name+": connections refused over the cap", "refused", l.refused, "open", l.counts.Open(),
		"max", l.total, "max_per_client", l.perClient, "client", client)
	l.refused, l.loggedAt = 0, time.Now()
}

// capConn is a counted connection; closing it frees its place.
type capConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// ReadFrom keeps the TCP connection's sendfile for packs: net/http uses
// it only when the connection is an io.ReaderFrom.
func (c *capConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite lets net/http half-close, as on a TCP connection.
func (c *capConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// stallWriter sets a write deadline WriteStall ahead before every write
// of a response, so a client that takes no bytes for that long is cut off
// however long the whole answer takes.
type stallWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
}

// withWriteStall runs h with a write deadline on each write.
func withWriteStall(h http.Handler, stall time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &stallWriter{ResponseWriter: w, rc: http.NewResponseController(w), stall: stall}
		sw.extend()
		h.ServeHTTP(sw, r)
		sw.extend() // for what net/http flushes after the handler
	})
}

// extend moves the write deadline; a server that cannot (not a net.Conn)
// has none.
func (w *stallWriter) extend() { w.rc.SetWriteDeadline(time.Now().Add(w.stall)) }

func (w *stallWriter) WriteHeader(code int) {
	w.extend()
	w.ResponseWriter.WriteHeader(code)
}

func (w *stallWriter) Write(b []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *stallWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom sends r (http.ServeContent's pack: an io.LimitedReader of an
// *os.File) stallChunk at a time, each under a fresh deadline, through
// the server's ReadFrom: still sendfile, not a copy through a buffer.
func (w *stallWriter) ReadFrom(r io.Reader) (int64, error) {
	rf, ok := w.ResponseWriter.(io.ReaderFrom)
	if !ok {
		return io.Copy(struct{ io.Writer }{w}, r)
	}
	lr, limited := r.(*io.LimitedReader)
	var total int64
	for {
		step := int64(stallChunk)
		chunk := io.LimitReader(r, step).(*io.LimitedReader)
		if limited {
			// One level of LimitedReader over the file, as the
			// TCP connection's sendfile wants.
			step = min(step, lr.N)
			if step <= 0 {
				return total, nil
			}
			chunk = &io.LimitedReader{R: lr.R, N: step}
		}
		w.extend()
		n, err := rf.ReadFrom(chunk)
		total += n
		if limited {
			lr.N -= n
		}
		if err != nil || n < step {
			return total, err
		}
	}
}
