package imapd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The connection layer. go-imap v2.0.0-beta.8's imapserver has no ID
// command (RFC 2971; Thunderbird, Apple Mail and K-9 send it, and
// imapserver answers BAD, before login BYE and hang up) and no way to add
// a capability its lists do not know. conn sits between the socket and
// imapserver: it answers ID itself and adds ID to the capability lists
// imapserver writes. So that it keeps reading plain text after STARTTLS
// (imapserver would put TLS under this layer), it does STARTTLS itself
// too; imapserver is given no TLS configuration.
//
// It hands imapserver one line (or literal) per Read. imapserver reads a
// command, answers it, then reads again, so a Read at the start of a
// command means every earlier command is answered: an ID answered here
// keeps its place among the responses, and whatever imapserver writes
// between a CAPABILITY, LOGIN or AUTHENTICATE command and the next
// command belongs to that command.
//
// A literal's octets pass through unread. A non-synchronizing one
// ("{n+}") follows its line at once; a synchronizing one only once
// imapserver has written "+": it refuses one over 4096 octets outside
// APPEND with a tagged NO [TOOBIG] instead (checkBufferedLiteral; the
// carried go-imap answers at once, third_party/go-imap/MAILSWARM.md),
// and so may any command answered before its literal.

// maxIDLiteral bounds a literal in ID (RFC 2971 §3.3: values up to 1024
// octets).
const maxIDLiteral = 4096

// maxIDCommand bounds a whole ID command, literals included, so that a
// client cannot grow it without end before logging in. RFC 2971 §3.3's
// largest (30 pairs, fields of 30 octets, values of 1024) is 63,420
// octets even quoted with every octet escaped; imapserver caps its own
// commands at 50 KiB.
const maxIDCommand = 64 << 10

// errLiteralStuck ends a connection on which imapserver asked for more of
// a command whose synchronizing literal it neither accepted nor refused.
var errLiteralStuck = errors.New("imapd: a synchronizing literal neither accepted nor refused")

type conn struct {
	s    *Server
	raw  net.Conn // as accepted (a *tls.Conn under ServeTLS)
	once sync.Once

	authed atomic.Bool // set by the session once logged in (loggedIn)

	// key is the client's address as the per-client share counts it;
	// preAuth: still counted there. login closes a connection that has
	// not logged in within Options.LoginTimeout.
	key     string
	preAuth atomic.Bool
	login   *time.Timer

	// ctx is canceled when the client hangs up during a command (peer.go)
	// or the connection is closed; the session's work runs under it.
	ctx      context.Context
	cancel   context.CancelFunc
	watchMu  sync.Mutex
	watch    *time.Timer // checkPeer, while watching
	watching bool        // imapserver is not reading: a command may run

	// Read side: only imapserver's goroutine reads.
	br      *bufio.Reader
	pend    []byte       // rest of a line being handed out
	lit     int64        // literal bytes to pass through
	syncLit int64        // a synchronizing literal announced, "+" not yet seen
	inCmd   bool         // the next line continues a command (after a literal)
	tag     string       // the tag of the command being read
	name    atomic.Value // string: the name of the command being read (for logs)
	tail    [32]byte
	nTail   int // tail[:nTail]: the end of a line longer than br's buffer, so far

	mu    sync.Mutex // held briefly, never while writing
	nc    net.Conn   // raw, or TLS over it after STARTTLS
	isTLS bool

	// wmu makes each Write reach the socket whole and in order
	// (imapserver's, FETCH's, ours); it does not keep a response whole:
	// imapserver holds a lock of its own for each response, and FETCH,
	// which writes past it in 64 KiB writes, holds session.resp, which
	// Shutdown's BYE takes (fetch.go). Close and the deadlines do not
	// take wmu, so they can break a stuck write.
	wmu     sync.Mutex
	capsDue bool   // imapserver may be writing capability lists
	held    []byte // an incomplete line while capsDue
	litTag  string // tag of a command whose synchronizing literal waits, or ""
	litFate int    // what imapserver wrote since (litWaiting...)
}

// What imapserver did with a synchronizing literal (conn.litFate).
const (
	litWaiting  = iota // nothing yet
	litGo              // it wrote "+": the client sends it
	litAnswered        // it answered the command: the client does not
)

func newConn(s *Server, c net.Conn, key string) *conn {
	_, isTLS := c.(*tls.Conn)
	ctx, cancel := context.WithCancel(context.Background())
	cn := &conn{s: s, raw: c, nc: c, isTLS: isTLS, br: bufio.NewReader(c), capsDue: true, key: key,
		ctx: ctx, cancel: cancel}
	cn.preAuth.Store(true)
	cn.login = time.AfterFunc(s.opts.LoginTimeout, cn.loginExpired)
	return cn
}

// loggedIn: the client has logged in; STARTTLS is no longer offered, the
// login timer stops, and, unless anonymous, the connection leaves its
// address's share of those not logged in (an anonymous login takes no
// password: anyone could leave the share that way and hold every slot).
func (c *conn) loggedIn(anonymous bool) {
	c.authed.Store(true)
	c.login.Stop()
	if !anonymous && c.preAuth.CompareAndSwap(true, false) {
		c.s.preAuth.Release(c.key)
	}
}

// loginExpired says BYE to a client that has not logged in within
// Options.LoginTimeout, and closes the connection.
func (c *conn) loginExpired() {
	if c.authed.Load() {
		return
	}
	c.s.log.Debug("imapd: login timeout", "remote", c.raw.RemoteAddr().String())
	c.wmu.Lock()
	nc := c.current()
	nc.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(nc, "* BYE Autologout; log in within "+c.s.opts.LoginTimeout.String()+"\r\n")
	c.wmu.Unlock()
	c.Close()
}

func (c *conn) Close() error {
	c.cancel()
	c.idle()
	c.once.Do(func() {
		c.login.Stop()
		if c.preAuth.CompareAndSwap(true, false) {
			c.s.preAuth.Release(c.key)
		}
		c.s.conns.Release(c.key)
	})
	c.mu.Lock()
	nc := c.nc
	c.mu.Unlock()
	return nc.Close()
}

func (c *conn) current() net.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc
}

func (c *conn) LocalAddr() net.Addr                { return c.raw.LocalAddr() }
func (c *conn) RemoteAddr() net.Addr               { return c.raw.RemoteAddr() }
func (c *conn) SetDeadline(t time.Time) error      { return c.current().SetDeadline(t) }
func (c *conn) SetReadDeadline(t time.Time) error  { return c.current().SetReadDeadline(t) }
func (c *conn) SetWriteDeadline(t time.Time) error { return c.current().SetWriteDeadline(t) }

// Read hands imapserver the client's bytes, one line or literal at a
// time, answering ID and STARTTLS on the way. Between two Reads
// imapserver may be answering a command: the peer is watched (peer.go).
func (c *conn) Read(p []byte) (int, error) {
	c.idle()
	n, err := c.read(p)
	if err == nil {
		c.busy()
	}
	return n, err
}

func (c *conn) read(p []byte) (int, error) {
	for {
		if len(c.pend) > 0 {
			n := copy(p, c.pend)
			c.pend = c.pend[n:]
			return n, nil
		}
		if c.lit > 0 {
			if int64(len(p)) > c.lit {
				p = p[:c.lit]
			}
			n, err := c.br.Read(p)
			c.lit -= int64(n)
			return n, err
		}
		if c.syncLit > 0 {
			n := c.syncLit
			c.syncLit = 0
			switch c.literalFate() {
			case litGo:
				c.lit = n
			case litAnswered: // the client's next line is a command
				c.inCmd = false
			default:
				// imapserver wants more of the command while the
				// client waits for "+": the carried go-imap never does
				// (it refuses at once); beta.8 as released did, and
				// both sides then waited for the other.
				return 0, errLiteralStuck
			}
			continue
		}
		line, err := c.br.ReadSlice('\n')
		if len(line) == 0 {
			return 0, err
		}
		full := err == nil // else longer than the buffer, or the end
		if !c.inCmd {
			c.tag = ""
			handled, err := c.command(line, full)
			if err != nil {
				return 0, err
			}
			if handled {
				continue
			}
		}
		c.pend, c.inCmd = line, true
		// the end of the line: a "{n}" may straddle two reads
		end := line
		if c.nTail > 0 {
			end = append(c.tail[:c.nTail:c.nTail], line[max(0, len(line)-len(c.tail)):]...)
			c.nTail = 0
		}
		if !full {
			c.nTail = copy(c.tail[:], end[max(0, len(end)-len(c.tail)):])
		} else {
			n, ok := literalAtEnd(end)
			switch {
			case !ok:
				c.inCmd = false
			case isSyncLiteral(end):
				c.syncLit = n
				c.awaitLiteral(c.tag)
			default:
				c.lit = n
			}
		}
	}
}

// commandName is the name of the command being answered, for log lines.
func (c *conn) commandName() string {
	s, _ := c.name.Load().(string)
	return s
}

// awaitLiteral starts watching what imapserver writes for the
// synchronizing literal the line handed out last announces, in the
// command tagged tag.
func (c *conn) awaitLiteral(tag string) {
	if tag == "" {
		tag = "*" // not seen (the line began in an earlier read): never matches
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.litTag, c.litFate = tag, litWaiting
}

// literalFate ends the watch started by awaitLiteral.
func (c *conn) literalFate() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.litTag = ""
	return c.litFate
}

// noteLiteralFate looks at the lines imapserver writes while a
// synchronizing literal waits (wmu held). imapserver writes a response
// in one Write, from the start of a line.
func (c *conn) noteLiteralFate(p []byte) {
	for len(p) > 0 && c.litFate == litWaiting {
		switch {
		case bytes.HasPrefix(p, []byte("+ ")) || bytes.HasPrefix(p, []byte("+\r\n")):
			c.litFate = litGo
		case bytes.HasPrefix(p, []byte(c.litTag+" ")):
			c.litFate = litAnswered
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			break
		}
		p = p[i+1:]
	}
}

// command looks at a line that may start a command (full: the whole line,
// else its first 4 KiB); it answers ID and STARTTLS (handled) and notes
// commands whose answers list capabilities. Lines without a space are not
// commands: IDLE's DONE, the client's side of AUTHENTICATE.
func (c *conn) command(line []byte, full bool) (handled bool, err error) {
	tag, name, rest := splitCommand(line)
	if tag == "" || tag == "*" || tag == "+" {
		return false, nil
	}
	c.setCapsDue(false) // every earlier command is answered
	c.tag = tag
	if f := bytes.Fields(rest); name == "UID" && len(f) > 0 {
		c.name.Store("UID " + strings.ToUpper(string(f[0])))
	} else {
		c.name.Store(name)
	}
	switch name {
	case "ID":
		return true, c.id(tag, line, full)
	case "STARTTLS":
		if c.s.opts.TLS == nil || !full {
			return false, nil // imapserver answers NO, or BAD
		}
		return true, c.startTLS(tag, rest)
	case "CAPABILITY", "LOGIN", "AUTHENTICATE":
		c.setCapsDue(true)
	}
	return false, nil
}

// splitCommand splits "tag NAME rest\r\n"; name is upper case.
func splitCommand(line []byte) (tag, name string, rest []byte) {
	s := bytes.TrimRight(line, "\r\n")
	i := bytes.IndexByte(s, ' ')
	if i <= 0 {
		return "", "", nil
	}
	r := s[i+1:]
	j := bytes.IndexByte(r, ' ')
	if j < 0 {
		j = len(r)
	}
	return string(s[:i]), strings.ToUpper(string(r[:j])), r[j:]
}

// literalAtEnd reports the size of the literal a line announces at its
// end ("{n}", "{n+}", "~{n}"), if any.
func literalAtEnd(line []byte) (int64, bool) {
	s := bytes.TrimRight(line, "\r\n")
	if len(s) < 3 || s[len(s)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(s, '{')
	if i < 0 {
		return 0, false
	}
	digits := bytes.TrimSuffix(s[i+1:len(s)-1], []byte("+"))
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || n < 0 || len(digits) == 0 || digits[0] == '+' {
		return 0, false
	}
	return n, true
}

// isSyncLiteral reports whether the literal at the end of line is
// synchronizing ("{n}", not RFC 7888's "{n+}").
func isSyncLiteral(line []byte) bool {
	return !bytes.HasSuffix(bytes.TrimRight(line, "\r\n"), []byte("+}"))
}

// writeRaw writes a response of this layer's own.
func (c *conn) writeRaw(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := io.WriteString(c.current(), s)
	return err
}

// id answers ID (RFC 2971), valid in every state. The client's
// parameters are only logged. line is its first line (full: the whole
// line, else its first 4 KiB); the rest, literals included (any string
// may be one), is read here, up to maxIDCommand.
func (c *conn) id(tag string, line []byte, full bool) error {
	cmd := append([]byte(nil), line...)
	for {
		for !full {
			more, err := c.br.ReadSlice('\n')
			if err != nil && err != bufio.ErrBufferFull {
				return err
			}
			full = err == nil
			if len(cmd)+len(more) > maxIDCommand {
				if !full {
					return c.idTooBig(tag, 0, true, more)
				}
				end := append(bytes.Clone(cmd[max(0, len(cmd)-32):]), more...)
				if n, ok := literalAtEnd(end); ok && !isSyncLiteral(end) {
					return c.idTooBig(tag, n, true, nil)
				}
				return c.idTooBig(tag, 0, false, nil)
			}
			cmd = append(cmd, more...)
		}
		n, ok := literalAtEnd(cmd)
		if !ok {
			break
		}
		if n > maxIDLiteral || int64(len(cmd))+n > maxIDCommand {
			if isSyncLiteral(cmd) {
				// the client waits for "+", which it does not get: the
				// command ends here
				return c.idTooBig(tag, 0, false, nil)
			}
			return c.idTooBig(tag, n, true, nil) // sent regardless
		}
		if isSyncLiteral(cmd) {
			if err := c.writeRaw("+ Ready for literal data\r\n"); err != nil {
				return err
			}
		}
		if _, err := io.ReadFull(c.br, grow(&cmd, int(n))); err != nil {
			return err
		}
		full = false
	}
	_, _, args := splitCommand(cmd) // the whole command, literals included
	params, ok := parseIDParams(args)
	if !ok {
		return c.writeRaw(tag + " BAD Syntax error in ID\r\n")
	}
	c.s.log.Debug("imapd: client id", "remote", c.raw.RemoteAddr().String(), "id", params)
	return c.writeRaw(serverID() + tag + " OK ID completed\r\n")
}

// grow extends *b by n bytes and returns them.
func grow(b *[]byte, n int) []byte {
	l := len(*b)
	*b = slices.Grow(*b, n)[:l+n]
	return (*b)[l:]
}

// idTooBig refuses an ID over maxIDCommand at once, while the client may
// still be sending it: BAD with TOOBIG, as RFC 7888 §4 refuses a literal
// over a server's limit (TOOBIG: RFC 4469 §5, RFC 9051 §7.1). Then it
// drops the rest of the command (discardCommand; last: the part of the
// line read last, when midLine).
func (c *conn) idTooBig(tag string, lit int64, midLine bool, last []byte) error {
	c.s.log.Debug("imapd: ID too big", "remote", c.raw.RemoteAddr().String())
	if err := c.writeRaw(tag + " BAD [TOOBIG] ID command too long\r\n"); err != nil {
		return err
	}
	return c.discardCommand(lit, midLine, last)
}

// discardCommand reads and drops the rest of a refused command: lit
// octets of a non-synchronizing literal (the client sends it regardless),
// then, if midLine, the rest of the line (prev: the part of it read
// last), and on while lines end in a non-synchronizing literal. A
// synchronizing literal ends the command: the client waits for "+".
// Memory stays at the reader's buffer whatever the client sends; read
// deadlines (imapserver's) still bound the time.
func (c *conn) discardCommand(lit int64, midLine bool, prev []byte) error {
	var tail [32]byte // the end of the line read so far: a "{n+}" may straddle two reads
	t := copy(tail[:], prev[max(0, len(prev)-len(tail)):])
	for {
		if lit > 0 {
			if _, err := io.CopyN(io.Discard, c.br, lit); err != nil {
				return err
			}
			lit, midLine, t = 0, true, 0
		}
		if !midLine {
			return nil
		}
		line, err := c.br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return err
		}
		end := append(tail[:t:t], line[max(0, len(line)-len(tail)):]...)
		t = copy(tail[:], end[len(end)-min(len(end), len(tail)):])
		if err == bufio.ErrBufferFull {
			continue
		}
		n, ok := literalAtEnd(end)
		if !ok || isSyncLiteral(end) {
			return nil
		}
		lit, midLine = n, false
	}
}

var serverIDLine = sync.OnceValue(func() string {
	s := `* ID ("name" "mailswarm"`
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		s += ` "version" ` + strconv.Quote(bi.Main.Version)
	}
	return s + ")\r\n"
})

// serverID is the untagged ID response: our name and, when the binary
// knows it, the version it was built from.
func serverID() string { return serverIDLine() }

// parseIDParams parses " NIL" or ` ("key" "value" ...)` (RFC 2971 §4:
// id_params_list); strings may be quoted or literals, values NIL.
func parseIDParams(b []byte) ([]string, bool) {
	b, ok := bytes.CutPrefix(b, []byte(" "))
	if !ok {
		return nil, false
	}
	if bytes.EqualFold(b, []byte("NIL")) {
		return nil, true
	}
	b, ok = bytes.CutPrefix(b, []byte("("))
	if !ok {
		return nil, false
	}
	var out []string
	for len(out) < 2*30+2 { // RFC 2971 §3.3: at most 30 pairs
		if len(out) > 0 {
			if bytes.Equal(b, []byte(")")) {
				return out, len(out)%2 == 0
			}
			if b, ok = bytes.CutPrefix(b, []byte(" ")); !ok {
				return nil, false
			}
		}
		var s string
		if s, b, ok = parseNString(b, len(out)%2 == 1); !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return nil, false
}

// parseNString parses a quoted string, a literal or (when nilOK) NIL.
func parseNString(b []byte, nilOK bool) (string, []byte, bool) {
	switch {
	case nilOK && len(b) >= 3 && bytes.EqualFold(b[:3], []byte("NIL")):
		return "", b[3:], true
	case len(b) > 0 && b[0] == '"':
		var s []byte
		for i := 1; i < len(b); i++ {
			switch b[i] {
			case '\\':
				if i+1 == len(b) || (b[i+1] != '\\' && b[i+1] != '"') {
					return "", nil, false
				}
				i++
				s = append(s, b[i])
			case '"':
				return string(s), b[i+1:], true
			case '\r', '\n':
				return "", nil, false
			default:
				s = append(s, b[i])
			}
		}
	case len(b) > 0 && b[0] == '{':
		end := bytes.Index(b, []byte("}\r\n"))
		if end < 0 {
			return "", nil, false
		}
		n, err := strconv.Atoi(strings.TrimSuffix(string(b[1:end]), "+"))
		if err != nil || n < 0 || end+3+n > len(b) {
			return "", nil, false
		}
		return string(b[end+3 : end+3+n]), b[end+3+n:], true
	}
	return "", nil, false
}

// startTLS answers STARTTLS (RFC 3501 §6.2.1, RFC 9051 §6.2.1): only
// before login and only once.
func (c *conn) startTLS(tag string, rest []byte) error {
	if len(rest) > 0 {
		return c.writeRaw(tag + " BAD Syntax error: STARTTLS takes no arguments\r\n")
	}
	c.wmu.Lock() // nothing else is written until TLS is in place
	defer c.wmu.Unlock()
	c.mu.Lock()
	isTLS := c.isTLS
	c.mu.Unlock()
	if isTLS || c.authed.Load() {
		_, err := io.WriteString(c.current(), tag+" BAD STARTTLS not available\r\n")
		return err
	}
	if _, err := io.WriteString(c.raw, tag+" OK Begin TLS negotiation now\r\n"); err != nil {
		return err
	}
	// What the client sent after STARTTLS is the start of its TLS
	// handshake, never commands (the plain-text command injection of
	// CVE-2011-0411).
	under := c.raw
	if n := c.br.Buffered(); n > 0 {
		early, _ := c.br.Peek(n)
		under = &prefixConn{Conn: c.raw, r: io.MultiReader(bytes.NewReader(bytes.Clone(early)), c.raw)}
	}
	tc := tls.Server(under, c.s.opts.TLS)
	c.mu.Lock()
	c.nc, c.isTLS = tc, true
	c.mu.Unlock()
	c.br = bufio.NewReader(tc)
	c.lit, c.syncLit, c.inCmd, c.nTail = 0, 0, false, 0
	return nil
}

type prefixConn struct {
	net.Conn
	r io.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// Write writes what imapserver (or FETCH) writes; capability lists are
// amended while a command that lists them is being answered.
func (c *conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.litTag != "" && c.litFate == litWaiting {
		c.noteLiteralFate(p)
	}
	if !c.capsDue && len(c.held) == 0 {
		return c.current().Write(p)
	}
	buf := append(c.held, p...)
	k := bytes.LastIndexByte(buf, '\n') + 1
	out := make([]byte, 0, k+32)
	for rest := buf[:k]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '\n') + 1
		out = c.amendCaps(out, rest[:i])
		rest = rest[i:]
	}
	c.held = append([]byte(nil), buf[k:]...)
	if _, err := c.current().Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// setCapsDue starts or ends the amending of capability lists.
func (c *conn) setCapsDue(v bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !v && len(c.held) > 0 {
		c.current().Write(c.held)
		c.held = nil
	}
	c.capsDue = v
}

// amendCaps appends line to out, with ID (and STARTTLS where it may be
// used) added when it is "* CAPABILITY ..." or a status response with a
// [CAPABILITY ...] code.
func (c *conn) amendCaps(out, line []byte) []byte {
	s := bytes.TrimRight(line, "\r\n")
	var list []byte
	var at int
	if r, ok := bytes.CutPrefix(s, []byte("* CAPABILITY ")); ok {
		list, at = r, len(s)
	} else if i := bytes.Index(s, []byte(" [CAPABILITY ")); i > 0 {
		j := bytes.IndexByte(s[i:], ']')
		if j < 0 {
			return append(out, line...)
		}
		list, at = s[i+len(" [CAPABILITY "):i+j], i+j
	} else {
		return append(out, line...)
	}
	have := strings.Fields(string(list))
	out = append(out, s[:at]...)
	if !contains(have, "ID") {
		out = append(out, " ID"...)
	}
	c.mu.Lock()
	isTLS := c.isTLS
	c.mu.Unlock()
	if c.s.opts.TLS != nil && !isTLS && !c.authed.Load() && !contains(have, "STARTTLS") {
		out = append(out, " STARTTLS"...)
	}
	return append(out, line[at:]...)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
