package smtpin

import (
	"bytes"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// backend makes a session per client greeting.
type backend struct{ s *Server }

func (b backend) NewSession(sc *smtp.Conn) (smtp.Session, error) {
	c := connOf(sc)
	if c != nil {
		c.mu.Lock()
		c.smtpConn = sc
		c.mu.Unlock()
		if c.isClosing() {
			return nil, errShuttingDown
		}
	}
	return &session{
		s:    b.s,
		c:    c,
		sc:   sc,
		log:  b.s.log.With("remote", sc.Conn().RemoteAddr().String(), "helo", sc.Hostname()),
		seen: make(map[string]bool),
	}, nil
}

// session is one mail transaction at a time on one connection.
type session struct {
	s   *Server
	c   *conn // nil only if go-smtp was given a connection we did not wrap
	sc  *smtp.Conn
	log *slog.Logger

	user string // authenticated user, "" before AUTH

	from  string
	rcpts []rcpt          // in RCPT order, duplicates kept (LMTP answers each)
	lists []string        // distinct lists, in RCPT order
	seen  map[string]bool // lists already in lists
}

// rcpt is one accepted RCPT TO.
type rcpt struct {
	addr string // as the client wrote it; go-smtp keys LMTP statuses by it
	list string
}

var (
	_ smtp.LMTPSession = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

func (ss *session) closing() bool { return ss.c != nil && ss.c.isClosing() }

func (ss *session) Reset() {
	ss.from = ""
	ss.rcpts = nil
	ss.lists = nil
	clear(ss.seen)
}

func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.closing() {
		return errShuttingDown
	}
	if ss.authRequired() {
		return errAuthRequired
	}
	ss.from = from
	return nil
}

// Rcpt maps the recipient to its list. The local part is compared without
// case, although RFC 5321 section 2.4 lets it be case-sensitive: list
// addresses are configured lower-case.
func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.closing() {
		return errShuttingDown
	}
	addr := canonAddr(to)
	list, ok := ss.s.lists[addr]
	if !ok && ss.s.isPostmaster(addr) {
		if ss.s.opts.Postmaster == "" {
			ss.log.Info("postmaster recipient refused: none configured", "rcpt", to)
			return errNoPostmaster
		}
		list, ok = ss.s.opts.Postmaster, true
	}
	if !ok {
		ss.log.Info("unknown recipient", "rcpt", to)
		return errUnknownRcpt
	}
	if ss.s.opts.ReadOnly[list] {
		ss.log.Info("recipient refused: a read-only mirror", "rcpt", to, "list", list)
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
			Message: "List " + list + " is a read-only mirror here: post to its origin"}
	}
	ss.rcpts = append(ss.rcpts, rcpt{addr: to, list: list})
	if !ss.seen[list] {
		ss.seen[list] = true
		ss.lists = append(ss.lists, list)
	}
	return nil
}

// isPostmaster reports whether addr (canonical) names the postmaster: the
// bare "postmaster" RFC 5321 section 4.1.1.3 allows in RCPT, or
// postmaster@ one of our domains. Elsewhere's postmaster is a relay
// attempt, an unknown recipient like any other.
func (s *Server) isPostmaster(addr string) bool {
	local, domain, found := strings.Cut(addr, "@")
	return local == "postmaster" && (!found || s.domains[domain])
}

// canonAddr lower-cases an address and drops surrounding angle brackets.
func canonAddr(a string) string {
	a = strings.TrimSpace(a)
	a = strings.TrimPrefix(a, "<")
	a = strings.TrimSuffix(a, ">")
	return strings.ToLower(a)
}

// read takes the whole message off the wire, within DataTimeout, and marks
// the connection busy until the caller clears it (Shutdown waits for busy
// connections). The size limit (RFC 1870) is enforced by go-smtp's reader,
// which answers ErrDataTooLarge and then drains the rest, so the connection
// stays usable.
func (ss *session) read(r io.Reader) ([]byte, error) {
	if ss.c != nil {
		ss.c.setInData(true)
	}
	nc := ss.sc.Conn()
	nc.SetReadDeadline(time.Now().Add(ss.s.opts.DataTimeout))
	var buf bytes.Buffer
	_, err := buf.ReadFrom(r)
	if err != nil {
		return nil, ss.dataError(err)
	}
	return buf.Bytes(), nil
}

// Data delivers the message to every list named by a recipient, once per
// list. Any failure fails the whole message, since SMTP has one reply for
// DATA; the sender then retries it for every list, and lists that already
// took it rely on the archive dropping the duplicate (same Message-ID
// and content).
func (ss *session) Data(r io.Reader) error {
	if ss.c != nil {
		defer ss.c.setInData(false)
	}
	raw, err := ss.read(r)
	if err != nil {
		return err
	}
	log := ss.log.With("from", ss.from, "msgid", messageID(raw))
	for _, list := range ss.lists {
		if err := ss.s.deliver(log, list, raw); err != nil {
			return err
		}
	}
	return nil
}

// LMTPData answers one status per recipient (RFC 2033 section 4.2), each
// list delivered once.
func (ss *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	if ss.c != nil {
		defer ss.c.setInData(false)
	}
	raw, err := ss.read(r)
	if err != nil {
		return err
	}
	log := ss.log.With("from", ss.from, "msgid", messageID(raw))
	results := make(map[string]error, len(ss.lists))
	for _, list := range ss.lists {
		results[list] = ss.s.deliver(log, list, raw)
	}
	for _, rc := range ss.rcpts {
		status.SetStatus(rc.addr, results[rc.list])
	}
	return nil
}
