package smtpin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Deliverer stores one accepted message for one list. It must be safe for
// concurrent use. Deliver returns nil only once raw is durable: the server
// answers 250 on nil and never before.
type Deliverer interface {
	Deliver(ctx context.Context, list string, raw []byte) error
}

// Options configure a Server. Every field may be left zero.
type Options struct {
	// Hostname is announced in the greeting. Zero: "localhost".
	Hostname string
	// Lists maps a recipient address (lower-case) to a list name. Zero:
	// demo@localhost → demo.
	Lists map[string]string
	// ReadOnly names lists (by list name) that take no mail here: a
	// mirror's. RCPT to one of their addresses is refused, 550 5.7.1,
	// saying it is a read-only mirror. Zero: none.
	ReadOnly map[string]bool
	// MaxSize is the largest message accepted, in bytes (RFC 1870). Zero:
	// 64 MiB.
	MaxSize int64
	// Networks are the client networks allowed to connect. Zero: loopback
	// only.
	Networks []netip.Prefix
	// TLS enables STARTTLS (RFC 3207). Zero: no STARTTLS.
	TLS *tls.Config
	// Users maps a user name to the bcrypt hash ("$2a$...", as in the
	// config) of its password for AUTH PLAIN (RFC 4954), offered only
	// under TLS (so it needs TLS too); other values never match. When set, every client
	// must authenticate before MAIL. Zero: no AUTH, and none required.
	Users map[string]string
	// ReadTimeout bounds the wait for each command. Zero: 5 minutes.
	ReadTimeout time.Duration
	// DataTimeout bounds the whole DATA transfer. Zero: 10 minutes.
	DataTimeout time.Duration
	// LMTP speaks LMTP (RFC 2033) instead of SMTP. Zero: SMTP.
	LMTP bool
	// IsTempFail and IsRejected classify Deliver errors: rejected answers
	// 554, temporary and anything else 451. Zero: every error is temporary.
	IsTempFail, IsRejected func(error) bool
	// Logger receives one line per event. Zero: slog.Default().
	Logger *slog.Logger
	// MaxLineLength is the longest line accepted in commands and message
	// data. Zero: 64 KiB, since real list mail exceeds the 1000 octets of
	// RFC 5321 section 4.5.3.1.6.
	MaxLineLength int
	// WriteTimeout bounds each reply write. Zero: 1 minute.
	WriteTimeout time.Duration
	// Postmaster is the list that receives mail for the postmaster (RFC
	// 5321 section 4.5.1): RCPT TO:<postmaster>, and postmaster@ Hostname
	// or the domain of any list address, unless that address is a list's
	// own. Whatever a list receives is published, so there is no default.
	// Zero: such recipients get 550 5.1.1 with a text saying why.
	Postmaster string
}

// Defaults applied to zero Options fields.
const (
	DefaultMaxSize       = 64 << 20
	DefaultReadTimeout   = 5 * time.Minute
	DefaultDataTimeout   = 10 * time.Minute
	DefaultWriteTimeout  = time.Minute
	DefaultMaxLineLength = 64 << 10

	maxRecipients = 1000
)

// Server is an SMTP or LMTP server feeding a Deliverer.
type Server struct {
	d     Deliverer
	opts  Options
	log   *slog.Logger
	lists map[string]string
	// domains are the domains of Hostname and of every list address,
	// lower-case: postmaster@ any of them is the postmaster.
	domains map[string]bool
	nets    []netip.Prefix
	srv     *smtp.Server

	// ctx is cancelled when the server gives up on deliveries in progress
	// (Shutdown's deadline or Close).
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	closing bool
	conns   map[*conn]struct{}
}

// New returns a Server delivering to d. opts may be nil.
func New(d Deliverer, opts *Options) *Server {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.DataTimeout <= 0 {
		o.DataTimeout = DefaultDataTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxLineLength <= 0 {
		o.MaxLineLength = DefaultMaxLineLength
	}
	s := &Server{
		d:       d,
		opts:    o,
		log:     o.Logger,
		lists:   make(map[string]string),
		domains: map[string]bool{strings.ToLower(o.Hostname): true},
		nets:    o.Networks,
		conns:   make(map[*conn]struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("proto", s.proto())
	if len(o.Lists) == 0 {
		s.lists["demo@localhost"] = "demo"
	}
	for addr, list := range o.Lists {
		s.lists[canonAddr(addr)] = list
	}
	for addr := range s.lists {
		if i := strings.LastIndexByte(addr, '@'); i >= 0 {
			s.domains[addr[i+1:]] = true
		}
	}
	if len(s.nets) == 0 {
		s.nets = []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("::1/128"),
		}
	}
	for user, hash := range o.Users {
		if !isBcrypt(hash) {
			s.log.Warn("password is not a bcrypt hash: that user cannot log in", "user", user)
		}
	}
	if len(o.Users) > 0 && o.TLS == nil {
		s.log.Warn("users configured without TLS: AUTH cannot be offered and every MAIL will be refused")
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	srv := smtp.NewServer(backend{s})
	srv.Domain = o.Hostname
	srv.LMTP = o.LMTP
	srv.MaxMessageBytes = o.MaxSize
	srv.MaxLineLength = o.MaxLineLength
	// RFC 5321 section 4.5.3.1.8 asks for at least 100; more than this is
	// 452 4.5.3 and the client sends the rest in another transaction.
	srv.MaxRecipients = maxRecipients
	srv.ReadTimeout = o.ReadTimeout
	srv.WriteTimeout = o.WriteTimeout
	srv.TLSConfig = o.TLS
	// 8-bit and UTF-8 headers are stored byte for byte (RFC 6531).
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = errorLog{s.log}
	s.srv = srv
	return s
}

func (s *Server) proto() string {
	if s.opts.LMTP {
		return "lmtp"
	}
	return "smtp"
}

// Serve accepts connections on ln until Shutdown or Close; it then returns
// nil. Clients outside Options.Networks get a 554 and are disconnected.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		ln.Close()
		return nil
	}
	err := s.srv.Serve(&listener{Listener: ln, s: s})
	if err != nil {
		s.mu.Lock()
		closing := s.closing
		s.mu.Unlock()
		if closing {
			return nil
		}
		return fmt.Errorf("smtpin: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections, answers 421 to the next command on
// every open connection (RFC 5321 section 3.8) and waits for messages in
// DATA to be delivered. When ctx ends first it closes every connection and
// returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for c := range s.conns {
		c.shutdown()
	}
	s.mu.Unlock()

	err := s.srv.Shutdown(ctx)
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	if ctx.Err() != nil {
		s.closeConns()
		s.cancel()
		return fmt.Errorf("smtpin: shutdown: %w", ctx.Err())
	}
	s.cancel()
	if err != nil {
		return fmt.Errorf("smtpin: shutdown: %w", err)
	}
	return nil
}

// Close closes the listeners and every connection at once, abandoning
// deliveries in progress (their clients get no 250).
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.cancel()
	err := s.srv.Close()
	s.closeConns()
	if err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		return fmt.Errorf("smtpin: close: %w", err)
	}
	return nil
}

func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Conn.Close()
	}
}

// allowed reports whether a client at addr may connect. Unix-socket
// clients (the usual LMTP setup) are local; file permissions guard them.
func (s *Server) allowed(addr net.Addr) bool {
	if addr == nil || addr.Network() == "unix" {
		return addr != nil
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range s.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// errorLog adapts slog to go-smtp's Logger (used for panics and I/O errors).
type errorLog struct{ log *slog.Logger }

// Printf logs panics (with their stack) as errors and the rest, mostly
// clients that went away, as warnings.
func (l errorLog) Printf(format string, v ...any) { l.print(fmt.Sprintf(format, v...)) }

func (l errorLog) Println(v ...any) { l.print(fmt.Sprint(v...)) }

func (l errorLog) print(msg string) {
	if strings.HasPrefix(msg, "panic") {
		l.log.Error("smtp server panic", "msg", msg)
		return
	}
	l.log.Warn("smtp server", "msg", msg)
}
