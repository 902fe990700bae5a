package imapd

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"golang.org/x/crypto/bcrypt"

	"mailswarm/archive"
	"mailswarm/internal/netlimit"
)

// Options configure a Server.
type Options struct {
	// Users maps user names to bcrypt password hashes. A name here always
	// needs its password. Clients that are not on a loopback address
	// must log in as one of them; on loopback any other name logs in
	// with any password and gets its own flags.
	Users map[string]string
	// RequireLogin makes loopback clients log in as configured users
	// too. Set it when a TLS terminator or an ssh -L on the same host
	// forwards remote clients: they all arrive from loopback.
	RequireLogin bool
	// Anonymous allows AUTHENTICATE ANONYMOUS (RFC 4505): read-only
	// access without flags, from anywhere.
	Anonymous bool
	// TLS enables STARTTLS (and is what ServeTLS uses for implicit TLS).
	TLS *tls.Config
	// MaxConns bounds concurrent connections; beyond it a client gets
	// BYE at once. 0 means 1000, lowered to a quarter of the process's
	// descriptor limit (RLIMIT_NOFILE): under a limit of 1,024, 1,000
	// IMAP connections alone would leave SMTP, HTTP, BitTorrent and the
	// archive's files nothing.
	MaxConns int
	// MaxPreAuthPerClient bounds the connections one client address
	// (IPv6: its /64) holds before logging in; beyond it the client gets
	// BYE at once. 0 means a quarter of MaxConns (at least 16, at most
	// MaxConns): one address cannot fill the server with connections
	// that never log in. Behind a proxy on the same host every client
	// has its address: raise it there.
	MaxPreAuthPerClient int
	// LoginFailureDelay is how long a failed login waits before its
	// answer (0 means 2 s, Dovecot's auth_failure_delay): one
	// connection guesses at most one password per delay.
	LoginFailureDelay time.Duration
	// LoginTimeout is how long a connection may stay without logging in,
	// whatever it sends meanwhile (a NOOP every 29 s held a slot
	// forever); then it gets BYE and is closed. 0 means 60 s.
	LoginTimeout time.Duration
	// Logger receives errors (default slog.Default()).
	Logger *slog.Logger
}

// Defaults of Options.
const (
	DefaultMaxConns     = 1000
	DefaultLoginTimeout = 60 * time.Second
	// DefaultLoginFailureDelay is Dovecot's auth_failure_delay.
	DefaultLoginFailureDelay = 2 * time.Second
)

// Server serves the lists of an archive over IMAP.
type Server struct {
	a    *archive.Archive
	opts Options
	log  *slog.Logger
	imap *imapserver.Server

	// conns counts connections; preAuth those not logged in with a
	// password, by client key.
	conns, preAuth *netlimit.Counts

	mu       sync.Mutex
	lists    map[string]*listState
	sessions map[*session]struct{}
	closed   bool
	drained  chan struct{} // closed when the last session ends after Shutdown

	stopEvents func()
	eventsDone chan struct{}
	ctx        context.Context // canceled by Shutdown
	cancel     context.CancelFunc
	warm       sync.WaitGroup

	// compare checks a password against a bcrypt hash
	// (bcrypt.CompareHashAndPassword; tests count the calls).
	compare func(hash, password []byte) error
	checks  chan struct{} // a slot per password check running
	// dummyHash is checked for a name that is not configured where a
	// password is needed: a bcrypt hash of the configured hashes' cost.
	dummyHash string

	searchReads atomic.Int64 // messages SEARCH has read (for tests)
}

// New returns a server for a's lists. It follows the archive's events so
// that IDLE sees new mail as soon as it is archived.
func New(a *archive.Archive, opts *Options) (*Server, error) {
	s := &Server{a: a, lists: map[string]*listState{}, conns: netlimit.NewCounts(), preAuth: netlimit.NewCounts(),
		sessions: map[*session]struct{}{}, eventsDone: make(chan struct{}),
		compare: bcrypt.CompareHashAndPassword}
	if opts != nil {
		s.opts = *opts
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.opts.MaxConns <= 0 {
		s.opts.MaxConns = netlimit.DefaultCap(DefaultMaxConns)
	}
	if s.opts.MaxPreAuthPerClient <= 0 {
		s.opts.MaxPreAuthPerClient = min(s.opts.MaxConns, max(s.opts.MaxConns/4, 16))
	}
	if s.opts.LoginTimeout <= 0 {
		s.opts.LoginTimeout = DefaultLoginTimeout
	}
	if s.opts.LoginFailureDelay <= 0 {
		s.opts.LoginFailureDelay = DefaultLoginFailureDelay
	}
	// Password checks run on at most half the cores at once (at least
	// one): a bcrypt check at cost 10 takes 74–77 ms of a core here
	// (BenchmarkPasswordCheck), so without a bound 26 failing logins a
	// second, from as many connections, take both cores of a small node
	// from SMTP and IMAP.
	s.checks = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))
	var err error
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	cost := 0
	for name, hash := range s.opts.Users {
		c, err := bcrypt.Cost([]byte(hash))
		if err != nil {
			return nil, fmt.Errorf("imapd: user %s: password hash: %w", name, err)
		}
		cost = max(cost, c)
	}
	if s.dummyHash, err = dummyHash(cost); err != nil {
		return nil, err
	}
	// LITERAL- and not LITERAL+ (RFC 7888): LITERAL- is LITERAL+ with
	// non-synchronizing literals of at most 4096 octets, so offering both
	// (as we did after login) leaves a client guessing. imapserver offers
	// LITERAL- itself with IMAP4rev1, and LITERAL+ would promise what no
	// command here takes: imapserver refuses every literal over 4096
	// octets except APPEND's, and APPEND is refused (read-only).
	// ID (RFC 2971) and STARTTLS are added by the connection layer
	// (wire.go); imapserver gets no TLS configuration.
	caps := imap.CapSet{}
	for _, c := range []imap.Cap{imap.CapIMAP4rev1, imap.CapNamespace, imap.CapESearch, imap.CapListExtended,
		imap.CapListStatus, imap.CapBinary, imap.CapChildren, imap.CapSpecialUse} {
		caps[c] = struct{}{}
	}
	s.imap = imapserver.New(&imapserver.Options{
		NewSession:   s.newSession,
		Caps:         caps,
		Logger:       slogLogger{s.log},
		InsecureAuth: true, // checked per connection in Login
	})
	events, stop := a.Subscribe()
	s.stopEvents = stop
	go s.follow(events)
	// Warm the views of every list in the background, so the first
	// SELECT of a big list does not pay for reading its timeline.
	names, err := a.Names()
	if err != nil {
		return nil, err
	}
	s.warm.Go(func() {
		for _, n := range names {
			if _, err := s.list(n); err != nil && s.ctx.Err() == nil {
				s.log.Error("imapd: list", "list", n, "err", err)
			}
		}
	})
	return s, nil
}

// follow refreshes a list's views on each archive event.
func (s *Server) follow(events <-chan archive.Event) {
	defer close(s.eventsDone)
	for ev := range events {
		if ev.Overflow {
			s.mu.Lock()
			states := make([]*listState, 0, len(s.lists))
			for _, st := range s.lists {
				states = append(states, st)
			}
			s.mu.Unlock()
			for _, st := range states {
				s.refresh(st)
			}
			continue
		}
		s.mu.Lock()
		st := s.lists[ev.List]
		s.mu.Unlock()
		if st != nil {
			s.refresh(st)
		}
	}
}

func (s *Server) refresh(st *listState) {
	if err := st.refresh(s.ctx); err != nil && s.ctx.Err() == nil {
		s.log.Error("imapd: refresh", "list", st.l.Name(), "err", err)
	}
}

// list returns the state of list name, creating it on first use.
func (s *Server) list(name string) (*listState, error) {
	s.mu.Lock()
	st := s.lists[name]
	s.mu.Unlock()
	if st != nil {
		return st, nil
	}
	l, err := s.a.List(name)
	if err != nil {
		return nil, err
	}
	users, err := l.Users()
	if err != nil {
		return nil, err
	}
	st = newListState(l, users)
	if err := st.refresh(s.ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.lists[name]; old != nil {
		return old, nil
	}
	s.lists[name] = st
	return st, nil
}

// Serve accepts IMAP connections on ln until Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	err := s.imap.Serve(&limitListener{Listener: ln, s: s})
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// ServeTLS serves implicit TLS (imaps) on ln with Options.TLS.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.opts.TLS == nil {
		return errors.New("imapd: ServeTLS without a TLS configuration")
	}
	return s.Serve(tls.NewListener(ln, s.opts.TLS))
}

// Shutdown stops accepting, cancels the commands running, says BYE to
// every client and closes them (go-imap closes all connections at once),
// then waits until every session has ended, so that none still reads the
// archive once Shutdown returns; ctx bounds the wait.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	sessions := make([]*session, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	drained := make(chan struct{})
	if len(s.sessions) == 0 {
		close(drained)
	} else {
		s.drained = drained
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.cancel() // a SEARCH stops at its next message or key
	}
	done := make(chan error, 1)
	go func() {
		// BYE to every client (it waits for a response being written),
		// then close whatever is left, listeners included.
		var wg sync.WaitGroup
		for _, ss := range sessions {
			wg.Go(func() { ss.bye("Server shutting down") })
		}
		wg.Wait()
		done <- s.imap.Close()
	}()
	s.stopEvents()
	var err error
	select {
	case err = <-done:
		select {
		case <-drained:
		case <-ctx.Done():
			err = ctx.Err()
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.cancel()
	<-s.eventsDone
	s.warm.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// Close is Shutdown without a deadline.
func (s *Server) Close() error { return s.Shutdown(context.Background()) }

// limitListener answers connections beyond MaxConns with BYE and puts
// the connection layer (wire.go) under the others.
type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := netlimit.ClientKey(c.RemoteAddr().String())
		why := ""
		switch o := &l.s.opts; {
		case !l.s.conns.Acquire(key, o.MaxConns, o.MaxConns):
			why = "Too many connections"
		case !l.s.preAuth.Acquire(key, o.MaxConns, o.MaxPreAuthPerClient):
			l.s.conns.Release(key)
			why = "Too many connections from your address not logged in"
		default:
			return newConn(l.s, c, key), nil
		}
		l.s.log.Debug("imapd: connection refused", "remote", c.RemoteAddr().String(), "why", why)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write([]byte("* BYE [UNAVAILABLE] " + why + ", try again later\r\n"))
		c.Close()
	}
}

// checkPassword runs one bcrypt check when a slot is free (Options and
// Server.checks); ctx ends the wait.
func (s *Server) checkPassword(ctx context.Context, hash, password []byte) error {
	select {
	case s.checks <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.checks }()
	return s.compare(hash, password)
}

// defaultDummyHash is a bcrypt hash (cost 10, bcrypt.DefaultCost) of a
// random password, for when no user is configured: then no name exists
// and there is nothing for timing to tell.
const defaultDummyHash = "$2a$10$wERje3byZrW4xJv5lhTIFeH1STvRNuYf66lbW/t1MGDUeZQohzPI6"

// dummyHash returns a bcrypt hash of a random password at cost (the
// highest of the configured hashes: with them all of one cost, as
// usual, an unknown name costs exactly what a wrong password does), or
// defaultDummyHash when cost is 0.
func dummyHash(cost int) (string, error) {
	if cost == 0 {
		return defaultDummyHash, nil
	}
	h, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), cost)
	if err != nil {
		return "", fmt.Errorf("imapd: dummy password hash: %w", err)
	}
	return string(h), nil
}

// isLoopback reports whether addr is a loopback address.
func isLoopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type slogLogger struct{ l *slog.Logger }

// Printf logs what go-imap reports; a client hanging up (broken pipe,
// reset, EOF) is routine and logged at debug level, and so is a line
// that does not start with a tag and a command (go-imap closes the
// connection): a client's mistake, not the server's.
func (l slogLogger) Printf(format string, args ...any) {
	msg := "imapd: " + fmt.Sprintf(format, args...)
	for _, routine := range []string{"broken pipe", "connection reset by peer", "use of closed network connection", "i/o timeout",
		"failed to read command: in command: "} {
		if strings.Contains(msg, routine) {
			l.l.Debug(msg)
			return
		}
	}
	l.l.Warn(msg)
}
