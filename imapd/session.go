package imapd

import (
	"bufio"
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-sasl"

	"mailswarm/archive"
)

const delim = '/'

// session is one client connection.
type session struct {
	s    *Server
	conn *imapserver.Conn
	wire *conn // the connection layer under conn (nil if none)
	// ctx is canceled when the client hangs up (wire.go, peer.go), the
	// session ends or the server shuts down: commands check it between
	// messages and keys and pass it to the archive.
	ctx    context.Context
	cancel context.CancelFunc

	user      string // flags are kept per user name
	anonymous bool   // AUTHENTICATE ANONYMOUS: read-only, no flags

	// selected mailbox
	st       *listState
	sub      string // "" for the whole list, else the year
	mailbox  string
	v        *view // what the client has been told
	readOnly bool

	bw *bufio.Writer // FETCH responses (fetch.go)
	// resp is held by Fetch while it writes, past go-imap's own lock
	// for a response; bye takes it, and stopping asks Fetch to end at
	// the next message.
	resp     sync.Mutex
	stopping atomic.Bool
}

var (
	_ imapserver.SessionNamespace = (*session)(nil)
	_ imapserver.SessionMove      = (*session)(nil)
	_ imapserver.SessionSASL      = (*session)(nil)
)

func (s *Server) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	ss := &session{s: s, conn: c}
	parent := context.Background()
	if ss.wire, _ = c.NetConn().(*conn); ss.wire != nil {
		parent = ss.wire.ctx
	}
	ss.ctx, ss.cancel = context.WithCancel(parent)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed { // checked with the adding, so Shutdown sees every session
		ss.cancel()
		return nil, nil, &imap.Error{Type: imap.StatusResponseTypeBye, Text: "Server shutting down"}
	}
	s.sessions[ss] = struct{}{}
	return ss, nil, nil
}

// Close is called by imapserver once the connection's goroutine is done
// with the session: no command of it runs any more.
func (ss *session) Close() error {
	ss.cancel()
	ss.s.mu.Lock()
	delete(ss.s.sessions, ss)
	if len(ss.s.sessions) == 0 && ss.s.drained != nil {
		close(ss.s.drained)
		ss.s.drained = nil
	}
	ss.s.mu.Unlock()
	return nil
}

// errReadOnly answers every command that would change a list.
var errReadOnly = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeCannot,
	Text: "Mailing-list archives are read-only",
}

// errInternal is what a client hears when the server fails; the cause
// (an SQL error, a file path) is for the log, not for the client.
var errInternal = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: "Internal error, logged on the server"}

// errCanceled answers a command stopped because the client hung up or
// the server shuts down; nobody is likely to read it.
var errCanceled = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
	Text: "Command canceled: connection closing"}

// internalError logs err in one line with the user, the mailbox and the
// command, and answers the generic errInternal; once the session's ctx is
// canceled the error is that (logged at debug level), not the server's.
func (ss *session) internalError(err error) error {
	cmd := ""
	if ss.wire != nil {
		cmd = ss.wire.commandName()
	}
	if ss.ctx.Err() != nil {
		ss.s.log.Debug("imapd: command canceled", "user", ss.user, "mailbox", ss.mailbox, "command", cmd, "err", err)
		return errCanceled
	}
	ss.s.log.Error("imapd: internal error", "user", ss.user, "mailbox", ss.mailbox, "command", cmd,
		"remote", ss.conn.NetConn().RemoteAddr().String(), "err", err)
	return errInternal
}

// Login checks a name and password. A name in Options.Users always needs
// its password, wherever the client is: behind a TLS terminator or an
// ssh -L on the same host every client is on loopback. Any other name
// logs in with any password on loopback, unless RequireLogin, and gets
// its own flags. Where a password is needed and the name is unknown, the
// password is still checked, against a dummy hash of the configured
// hashes' cost, so that a wrong password and an unknown name take the
// same time.
func (ss *session) Login(username, password string) error {
	if err := checkUserName(username); err != nil {
		return err
	}
	hash, known := ss.s.opts.Users[username]
	if known || ss.s.opts.RequireLogin || !isLoopback(ss.conn.NetConn().RemoteAddr()) {
		if !known {
			hash = ss.s.dummyHash
		}
		// ss.ctx: a client gone, or Shutdown, ends the waits below
		// (Shutdown cancels sessions before it waits for them)
		if err := ss.s.checkPassword(ss.ctx, []byte(hash), []byte(password)); err != nil || !known {
			ss.s.log.Warn("imapd: login failed", "user", username, "remote", ss.conn.NetConn().RemoteAddr().String())
			select { // the brake on guessing (Options.LoginFailureDelay)
			case <-time.After(ss.s.opts.LoginFailureDelay):
			case <-ss.ctx.Done():
			}
			return imapserver.ErrAuthFailed
		}
	}
	ss.user = username
	ss.loggedIn()
	return nil
}

// loggedIn tells the connection layer: STARTTLS is no longer offered,
// the pre-login limits no longer apply.
func (ss *session) loggedIn() {
	if ss.wire != nil {
		ss.wire.loggedIn(false)
	}
}

func (ss *session) AuthenticateMechanisms() []string {
	if ss.s.opts.Anonymous {
		return []string{"PLAIN", "ANONYMOUS"}
	}
	return []string{"PLAIN"}
}

func (ss *session) Authenticate(mech string) (sasl.Server, error) {
	switch strings.ToUpper(mech) {
	case "PLAIN":
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return imapserver.ErrAuthFailed
			}
			return ss.Login(username, password)
		}), nil
	case "ANONYMOUS":
		if ss.s.opts.Anonymous {
			return sasl.NewAnonymousServer(func(string) error {
				ss.anonymous = true
				if ss.wire != nil {
					// anyone may: the connection stays in its address's
					// share of those without a password
					ss.wire.loggedIn(true)
				}
				return nil
			}), nil
		}
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "SASL mechanism not supported"}
}

// mailboxRef is a parsed mailbox name: INBOX, NAME or NAME/YYYY.
type mailboxRef struct {
	inbox bool
	st    *listState
	sub   string
}

var errNoMailbox = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox"}

func (ss *session) resolve(name string) (mailboxRef, *view, error) {
	if strings.EqualFold(name, "INBOX") {
		return mailboxRef{inbox: true}, &view{}, nil
	}
	list, sub, _ := strings.Cut(name, string(delim))
	if !archive.ValidName(list) {
		return mailboxRef{}, nil, errNoMailbox
	}
	st, err := ss.s.list(list)
	if err != nil {
		return mailboxRef{}, nil, errNoMailbox
	}
	v, _, ok := st.current(sub)
	if !ok {
		return mailboxRef{}, nil, errNoMailbox
	}
	return mailboxRef{st: st, sub: sub}, v, nil
}

var (
	mailboxFlags   = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDraft, imap.FlagDeleted}
	permanentFlags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDraft, imap.FlagWildcard}
)

func (ss *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	ref, v, err := ss.resolve(name)
	if err != nil {
		return nil, err
	}
	ss.Unselect()
	ss.st, ss.sub, ss.v, ss.mailbox = ref.st, ref.sub, v, name
	ss.readOnly = options.ReadOnly || ss.anonymous || ref.inbox
	data := &imap.SelectData{
		Flags:       mailboxFlags,
		NumMessages: v.n,
		UIDNext:     imap.UID(v.maxUID() + 1),
		UIDValidity: 1,
	}
	if !ss.readOnly {
		data.PermanentFlags = permanentFlags
		if ref.st != nil {
			// The mailbox is selected already: on error, log it and
			// offer \* (a STORE still meets the limit).
			kws, err := ss.keywordsAtLimit(ref.st)
			if err != nil {
				ss.internalError(err)
			}
			if kws != nil {
				data.Flags = append(slices.Clone(mailboxFlags), kws...)
				data.PermanentFlags = append(slices.Clone(permanentFlags[:len(permanentFlags)-1]), kws...)
			}
		}
	}
	if ref.st != nil {
		data.UIDValidity = ref.st.l.UIDValidity(ss.canonical(ref))
		if u, ok := ss.firstUnseen(); ok {
			data.FirstUnseenSeqNum = u
		}
	}
	return data, nil
}

// canonical is the mailbox's name as LIST shows it.
func (ss *session) canonical(ref mailboxRef) string {
	if ref.inbox {
		return "INBOX"
	}
	if ref.sub == "" {
		return ref.st.l.Name()
	}
	return ref.st.l.Name() + string(delim) + ref.sub
}

func (ss *session) Unselect() error {
	ss.st, ss.sub, ss.v, ss.mailbox, ss.readOnly = nil, "", nil, "", false
	return nil
}

func (ss *session) Create(string, *imap.CreateOptions) error         { return errReadOnly }
func (ss *session) Delete(string) error                              { return errReadOnly }
func (ss *session) Rename(string, string, *imap.RenameOptions) error { return errReadOnly }

// Every mailbox counts as subscribed; (un)subscribing changes nothing.
func (ss *session) Subscribe(name string) error {
	_, _, err := ss.resolve(name)
	return err
}

func (ss *session) Unsubscribe(string) error { return nil }

func (ss *session) Append(string, imap.LiteralReader, *imap.AppendOptions) (*imap.AppendData, error) {
	return nil, errReadOnly
}

func (ss *session) Copy(imap.NumSet, string) (*imap.CopyData, error) { return nil, errReadOnly }

func (ss *session) Move(*imapserver.MoveWriter, imap.NumSet, string) error { return errReadOnly }

// Expunge: nothing can be deleted. CLOSE calls Expunge too (with a writer
// that has no connection): it has nothing to do and succeeds.
func (ss *session) Expunge(w *imapserver.ExpungeWriter, _ *imap.UIDSet) error {
	if f := reflect.ValueOf(w).Elem().FieldByName("conn"); f.IsValid() && f.IsNil() {
		return nil
	}
	return errReadOnly
}

func (ss *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: delim}}}, nil
}

// mailboxes returns every mailbox name: INBOX, then each list and its years.
func (ss *session) mailboxes() ([]mailboxRef, error) {
	names, err := ss.s.a.Names()
	if err != nil {
		return nil, err
	}
	refs := []mailboxRef{{inbox: true}}
	for _, n := range names {
		st, err := ss.s.list(n)
		if err != nil {
			ss.s.log.Error("imapd: list", "list", n, "err", err)
			continue
		}
		refs = append(refs, mailboxRef{st: st})
		for _, y := range st.yearList() {
			refs = append(refs, mailboxRef{st: st, sub: yearName(y)})
		}
	}
	return refs, nil
}

func yearName(y int) string {
	b := []byte{'0', '0', '0', '0'}
	for i := 3; i >= 0 && y > 0; i-- {
		b[i] = byte('0' + y%10)
		y /= 10
	}
	return string(b)
}

func (ss *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: delim})
	}
	refs, err := ss.mailboxes()
	if err != nil {
		return ss.internalError(err)
	}
	for _, r := range refs {
		name := ss.canonical(r)
		match := false
		for _, p := range patterns {
			if imapserver.MatchList(name, delim, ref, p) {
				match = true
				break
			}
		}
		if !match {
			continue
		}
		if options.SelectSpecialUse {
			continue // no mailbox here has a special use
		}
		data := &imap.ListData{Delim: delim, Mailbox: name}
		if !r.inbox && r.sub == "" && len(r.st.yearList()) > 0 {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if options.SelectSubscribed || options.ReturnSubscribed {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if options.ReturnStatus != nil {
			if data.Status, err = ss.Status(name, options.ReturnStatus); err != nil {
				return err
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

func (ss *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	ref, v, err := ss.resolve(name)
	if err != nil {
		return nil, err
	}
	data := &imap.StatusData{Mailbox: name, UIDNext: imap.UID(v.maxUID() + 1), UIDValidity: 1}
	if ref.st != nil {
		data.UIDValidity = ref.st.l.UIDValidity(ss.canonical(ref))
	}
	n := v.n
	zero := uint32(0)
	if options.NumMessages {
		data.NumMessages = &n
	}
	if options.NumRecent {
		data.NumRecent = &zero
	}
	if options.NumDeleted {
		data.NumDeleted = &zero
	}
	if options.NumUnseen {
		unseen := n
		if ref.st != nil && !ss.anonymous {
			seen, err := ss.countFlag(ref.st, v, archive.FlagSeen)
			if err != nil {
				return nil, ss.internalError(err)
			}
			unseen -= seen
		}
		data.NumUnseen = &unseen
	}
	return data, nil
}

// Poll tells the client about mail archived since it last heard.
func (ss *session) Poll(w *imapserver.UpdateWriter, _ bool) error {
	if ss.st == nil {
		return nil
	}
	v, _, ok := ss.st.current(ss.sub)
	if !ok || v.n <= ss.v.n {
		return nil
	}
	ss.v = v
	return w.WriteNumMessages(v.n)
}

// Idle waits for new mail in the selected mailbox and reports it at
// once; without a selected mailbox it only waits.
func (ss *session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	for {
		if ss.st == nil {
			<-stop
			return nil
		}
		select {
		case <-stop: // DONE wins over mail that arrived meanwhile
			return nil
		default:
		}
		_, changed, _ := ss.st.current(ss.sub)
		if err := ss.Poll(w, true); err != nil {
			return err
		}
		select {
		case <-changed:
		case <-stop:
			return nil
		}
	}
}
