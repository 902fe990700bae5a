package peertest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// IMAPConn is a raw IMAP4rev1 client connection for tests (RFC 3501): it
// sends commands as given and hands back the untagged responses as bytes,
// literals included, so a test sees exactly what the server sent. It is
// not safe for concurrent use.
type IMAPConn struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	tag  int
	// Timeout bounds each command (write and every read); zero means
	// two minutes.
	Timeout time.Duration
}

// IMAPResp is one untagged response: the bytes after "* " up to, not
// including, the CRLF that ends it. A literal stays inline as the server
// sent it, "{n}\r\n" (or "~{n}\r\n") followed by its n octets.
type IMAPResp struct {
	Raw []byte
}

// maxIMAPLiteral bounds the size of one literal the client accepts.
const maxIMAPLiteral = 1 << 30

// IMAPDial connects to the IMAP server at addr ("host:port"), reads its
// greeting, which must be "* OK" or "* PREAUTH", and closes the
// connection at t's cleanup. It fails t on error.
func IMAPDial(t testing.TB, addr string) *IMAPConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("peertest: imap dial %s: %v", addr, err)
	}
	c := &IMAPConn{t: t, conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(c.timeout()))
	greet, err := c.readResponse()
	if err != nil {
		t.Fatalf("peertest: imap greeting from %s: %v", addr, err)
	}
	if !bytes.HasPrefix(greet, []byte("* OK")) && !bytes.HasPrefix(greet, []byte("* PREAUTH")) {
		t.Fatalf("peertest: imap greeting from %s: %q", addr, greet)
	}
	return c
}

func (c *IMAPConn) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return 2 * time.Minute
}

// Login sends LOGIN with user and pass as quoted strings (RFC 3501
// section 6.2.3) and fails the test unless the server answers OK.
func (c *IMAPConn) Login(user, pass string) {
	c.t.Helper()
	if _, status, err := c.Cmd("LOGIN " + IMAPQuote(user) + " " + IMAPQuote(pass)); err != nil {
		c.t.Fatalf("peertest: imap login %s: %v (%s)", user, err, status)
	}
}

// Close sends LOGOUT and closes the connection; errors are ignored.
func (c *IMAPConn) Close() {
	c.Cmd("LOGOUT")
	c.conn.Close()
}

// IMAPQuote returns s as an IMAP quoted string (RFC 3501 section 4.3):
// '"' and '\' are escaped. s must not hold CR, LF or NUL.
func IMAPQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// Cmd sends "TAG cmd" and reads the responses up to the tagged one. It
// returns the untagged responses, the tagged status line after the tag
// ("OK FETCH completed"), and an error when the connection failed, the
// server broke the syntax, or the status is not OK (then status says
// why). Continuation requests ("+ ...") are skipped: cmd must not hold
// synchronising literals.
func (c *IMAPConn) Cmd(cmd string) (untagged []IMAPResp, status string, err error) {
	c.tag++
	tag := fmt.Sprintf("T%04d", c.tag)
	c.conn.SetDeadline(time.Now().Add(c.timeout()))
	if _, err := c.conn.Write([]byte(tag + " " + cmd + "\r\n")); err != nil {
		return nil, "", fmt.Errorf("imap %s: write: %w", verb(cmd), err)
	}
	for {
		line, err := c.readResponse()
		if err != nil {
			return untagged, "", fmt.Errorf("imap %s: %w", verb(cmd), err)
		}
		switch {
		case bytes.HasPrefix(line, []byte("* ")):
			untagged = append(untagged, IMAPResp{Raw: line[2:]})
		case bytes.HasPrefix(line, []byte("+")):
			// continuation request: not expected, nothing to send
		case bytes.HasPrefix(line, []byte(tag+" ")):
			status = string(line[len(tag)+1:])
			word, _, _ := strings.Cut(status, " ")
			if !strings.EqualFold(word, "OK") {
				return untagged, status, fmt.Errorf("imap %s: %s", verb(cmd), status)
			}
			return untagged, status, nil
		default:
			return untagged, "", fmt.Errorf("imap %s: unexpected response %.200q", verb(cmd), line)
		}
	}
}

func verb(cmd string) string {
	v, _, _ := strings.Cut(cmd, " ")
	return v
}

// readResponse reads one response line without its final CRLF, with
// every literal it announces read and kept inline.
func (c *IMAPConn) readResponse() ([]byte, error) {
	var out []byte
	for {
		line, err := c.r.ReadSlice('\n')
		for err == bufio.ErrBufferFull {
			out = append(out, line...)
			line, err = c.r.ReadSlice('\n')
		}
		out = append(out, line...)
		if err != nil {
			return nil, fmt.Errorf("read: %w", err)
		}
		out = bytes.TrimSuffix(out, []byte("\n"))
		out = bytes.TrimSuffix(out, []byte("\r"))
		n, ok := literalAtEnd(out)
		if !ok {
			return out, nil
		}
		if n > maxIMAPLiteral {
			return nil, fmt.Errorf("literal of %d octets is too big", n)
		}
		out = append(out, '\r', '\n')
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := readFull(c.r, out[start:]); err != nil {
			return nil, fmt.Errorf("read literal: %w", err)
		}
	}
}

func readFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// literalAtEnd reports whether line ends with a literal announcement
// "{n}" or "{n+}" (RFC 3501 section 4.3, RFC 7888), and its n. A quoted
// string cannot hold a line break, so a line ending so always announces a
// literal.
func literalAtEnd(line []byte) (int64, bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false
	}
	digits := strings.TrimSuffix(string(line[i+1:len(line)-1]), "+")
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n < 0 || digits == "" || digits[0] == '+' {
		return 0, false
	}
	return n, true
}

// IMAPKind is the kind of an IMAPValue.
type IMAPKind int

const (
	IMAPAtom   IMAPKind = iota // an atom (also flags like \Seen and BODY[...] items)
	IMAPNil                    // NIL
	IMAPString                 // a quoted string or a literal
	IMAPNumber                 // a number
	IMAPList                   // a parenthesised list
)

// IMAPValue is one value of IMAP response syntax (RFC 3501 section 4):
// Str holds an atom's text or a string's octets, Num a number, List a
// list's elements.
type IMAPValue struct {
	Kind IMAPKind
	Str  string
	Num  uint64
	List []IMAPValue
}

// maxIMAPDepth bounds list nesting in ParseIMAPValue.
const maxIMAPDepth = 1000

var errIMAPSyntax = errors.New("peertest: imap syntax")

// ParseIMAPValue parses one value at the start of b (leading spaces are
// skipped) and returns it with what follows it. Quoted strings and
// literals ("{n}\r\n", "{n+}\r\n", literal8 "~{n}\r\n") both give
// IMAPString; an atom of digits that fits in 64 bits gives IMAPNumber;
// the atom NIL (any case) gives IMAPNil. An atom may hold a bracketed
// part with spaces ("BODY[HEADER.FIELDS (FROM)]"). It never panics.
func ParseIMAPValue(b []byte) (v IMAPValue, rest []byte, err error) {
	return parseIMAP(b, 0)
}

func parseIMAP(b []byte, depth int) (IMAPValue, []byte, error) {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	if len(b) == 0 {
		return IMAPValue{}, b, fmt.Errorf("%w: value expected, end of input", errIMAPSyntax)
	}
	switch c := b[0]; {
	case c == '(':
		if depth >= maxIMAPDepth {
			return IMAPValue{}, b, fmt.Errorf("%w: lists nested too deep", errIMAPSyntax)
		}
		b = b[1:]
		v := IMAPValue{Kind: IMAPList, List: []IMAPValue{}}
		for {
			for len(b) > 0 && b[0] == ' ' {
				b = b[1:]
			}
			if len(b) == 0 {
				return IMAPValue{}, b, fmt.Errorf("%w: unclosed list", errIMAPSyntax)
			}
			if b[0] == ')' {
				return v, b[1:], nil
			}
			e, r, err := parseIMAP(b, depth+1)
			if err != nil {
				return IMAPValue{}, r, err
			}
			v.List = append(v.List, e)
			b = r
		}
	case c == '"':
		var s []byte
		for i := 1; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
				if i >= len(b) {
					return IMAPValue{}, b, fmt.Errorf("%w: unterminated quoted string", errIMAPSyntax)
				}
				s = append(s, b[i])
			case '"':
				return IMAPValue{Kind: IMAPString, Str: string(s)}, b[i+1:], nil
			case '\r', '\n':
				return IMAPValue{}, b, fmt.Errorf("%w: line break in quoted string", errIMAPSyntax)
			default:
				s = append(s, b[i])
			}
		}
		return IMAPValue{}, b, fmt.Errorf("%w: unterminated quoted string", errIMAPSyntax)
	case c == '{' || (c == '~' && len(b) > 1 && b[1] == '{'):
		if c == '~' {
			b = b[1:]
		}
		end := bytes.IndexByte(b, '}')
		if end < 0 {
			return IMAPValue{}, b, fmt.Errorf("%w: unterminated literal size", errIMAPSyntax)
		}
		digits := strings.TrimSuffix(string(b[1:end]), "+")
		n, err := strconv.ParseUint(digits, 10, 63)
		if err != nil || digits == "" || digits[0] == '+' {
			return IMAPValue{}, b, fmt.Errorf("%w: bad literal size %.20q", errIMAPSyntax, b[1:end])
		}
		b = b[end+1:]
		if !bytes.HasPrefix(b, []byte("\r\n")) {
			return IMAPValue{}, b, fmt.Errorf("%w: literal size not followed by CRLF", errIMAPSyntax)
		}
		b = b[2:]
		if n > uint64(len(b)) {
			return IMAPValue{}, b, fmt.Errorf("%w: literal of %d octets, %d left", errIMAPSyntax, n, len(b))
		}
		return IMAPValue{Kind: IMAPString, Str: string(b[:n])}, b[n:], nil
	case c == ')' || c < ' ' || c == 0x7f:
		return IMAPValue{}, b, fmt.Errorf("%w: unexpected %q", errIMAPSyntax, c)
	default:
		i, bracket := 0, 0
	atom:
		for ; i < len(b); i++ {
			switch b[i] {
			case '[':
				bracket++
			case ']':
				if bracket > 0 {
					bracket--
				}
			case ' ', '(', ')':
				if bracket == 0 {
					break atom
				}
			case '"', '{':
				if bracket == 0 {
					break atom
				}
			case '\r', '\n':
				break atom
			}
		}
		if i == 0 {
			return IMAPValue{}, b, fmt.Errorf("%w: unexpected %q", errIMAPSyntax, b[0])
		}
		a := string(b[:i])
		if strings.EqualFold(a, "NIL") {
			return IMAPValue{Kind: IMAPNil}, b[i:], nil
		}
		if a[0] >= '0' && a[0] <= '9' {
			if n, err := strconv.ParseUint(a, 10, 64); err == nil {
				return IMAPValue{Kind: IMAPNumber, Num: n}, b[i:], nil
			}
		}
		return IMAPValue{Kind: IMAPAtom, Str: a}, b[i:], nil
	}
}

// FetchResp parses an untagged "n FETCH (name value ...)" response
// (RFC 3501 section 7.4.2). Item names are upper-cased. ok is false when
// r is not a FETCH response or does not parse.
func FetchResp(r IMAPResp) (seq uint64, items map[string]IMAPValue, ok bool) {
	n, rest, err := ParseIMAPValue(r.Raw)
	if err != nil || n.Kind != IMAPNumber {
		return 0, nil, false
	}
	word, rest, err := ParseIMAPValue(rest)
	if err != nil || word.Kind != IMAPAtom || !strings.EqualFold(word.Str, "FETCH") {
		return 0, nil, false
	}
	list, _, err := ParseIMAPValue(rest)
	if err != nil || list.Kind != IMAPList || len(list.List)%2 != 0 {
		return 0, nil, false
	}
	items = make(map[string]IMAPValue, len(list.List)/2)
	for i := 0; i < len(list.List); i += 2 {
		k := list.List[i]
		if k.Kind != IMAPAtom {
			return 0, nil, false
		}
		items[strings.ToUpper(k.Str)] = list.List[i+1]
	}
	return n.Num, items, true
}

// FetchItems returns the items of an untagged FETCH response by
// upper-cased name, or nil when r is not one (see FetchResp).
func FetchItems(r IMAPResp) map[string]IMAPValue {
	_, items, _ := FetchResp(r)
	return items
}

// Canon renders v canonically, so values two servers sent compare equal
// whatever their choice of quoted string or literal: every string is
// quoted, '"' and '\' escaped with '\', and octets below 0x20 and from
// 0x7f up written as \xNN; NIL as NIL, numbers in decimal, atoms as they
// are, lists in parentheses with single spaces.
func Canon(v IMAPValue) string {
	var b strings.Builder
	canon(&b, v)
	return b.String()
}

func canon(b *strings.Builder, v IMAPValue) {
	switch v.Kind {
	case IMAPNil:
		b.WriteString("NIL")
	case IMAPNumber:
		b.WriteString(strconv.FormatUint(v.Num, 10))
	case IMAPString:
		const hex = "0123456789abcdef"
		b.WriteByte('"')
		for i := 0; i < len(v.Str); i++ {
			switch c := v.Str[i]; {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < 0x20 || c >= 0x7f:
				b.WriteString(`\x`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&15])
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	case IMAPList:
		b.WriteByte('(')
		for i, e := range v.List {
			if i > 0 {
				b.WriteByte(' ')
			}
			canon(b, e)
		}
		b.WriteByte(')')
	default:
		b.WriteString(v.Str)
	}
}
