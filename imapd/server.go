package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"golang.org/x/crypto/bcrypt"

	"mailswarm/archive"
)

// Options configure a Server.
type Options struct {
	// Users maps user names to bcrypt password hashes. Clients that are
	// not on a loopback address must log in as one of them; on loopback
	// any name logs in with any password and gets its own flags.
	Users map[string]string
	// RequireLogin makes loopback clients log in as configured users too.
	RequireLogin bool
	// Anonymous allows AUTHENTICATE ANONYMOUS (RFC 4505): read-only
	// access without flags, from anywhere.
	Anonymous bool
	// TLS enables STARTTLS (and is what ServeTLS uses for implicit TLS).
	TLS *tls.Config
	// MaxConns bounds concurrent connections (default 1000); beyond it a
	// client gets BYE at once.
	MaxConns int
	// Logger receives errors (default slog.Default()).
	Logger *slog.Logger
}

// Server serves the lists of an archive over IMAP.
type Server struct {
	a    *archive.Archive
	opts Options
	log  *slog.Logger
	imap *imapserver.Server

	mu       sync.Mutex
	lists    map[string]*listState
	conns    int
	sessions map[*session]struct{}
	closed   bool
	drained  chan struct{} // closed when the last session ends after Shutdown

	stopEvents func()
	eventsDone chan struct{}
	ctx        context.Context // canceled by Shutdown
	cancel     context.CancelFunc
	warm       sync.WaitGroup

	searchReads atomic.Int64 // messages SEARCH has read (for tests)
}

// New returns a server for a's lists. It follows the archive's events so
// that IDLE sees new mail as soon as it is archived.
func New(a *archive.Archive, opts *Options) (*Server, error) {
	s := &Server{a: a, lists: map[string]*listState{}, sessions: map[*session]struct{}{}, eventsDone: make(chan struct{})}
	if opts != nil {
		s.opts = *opts
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.opts.MaxConns <= 0 {
		s.opts.MaxConns = 1000
	}
	s.log = s.opts.Logger
	if s.log == nil {
		s.log = slog.Default()
	}
	for name, hash := range s.opts.Users {
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("imapd: user %s: password hash: %w", name, err)
		}
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
		l.s.mu.Lock()
		ok := l.s.conns < l.s.opts.MaxConns
		if ok {
			l.s.conns++
		}
		l.s.mu.Unlock()
		if ok {
			return newConn(l.s, c), nil
		}
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write([]byte("* BYE [UNAVAILABLE] Too many connections, try again later\r\n"))
		c.Close()
	}
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
// reset, EOF) is routine and logged at debug level.
func (l slogLogger) Printf(format string, args ...any) {
	msg := "imapd: " + fmt.Sprintf(format, args...)
	for _, routine := range []string{"broken pipe", "connection reset by peer", "use of closed network connection", "i/o timeout"} {
		if strings.Contains(msg, routine) {
			l.l.Debug(msg)
			return
		}
	}
	l.l.Warn(msg)
}
