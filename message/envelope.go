package message

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Envelope is the IMAP ENVELOPE of a message (RFC 3501 section 7.4.2),
// holding what the server sends, computed as Dovecot 2.3 does (see
// docs/IMAP-DOVECOT.md):
//
//   - Date, In-Reply-To and Message-ID are the raw header values (not
//     decoded) with the blanks after the colon skipped and line breaks
//     removed; trailing blanks stay;
//   - Subject and display names are raw too, but every run of blanks is
//     one space and leading and trailing blanks are gone;
//   - for each string field the last occurrence wins; the address lists
//     of repeated From, To, ... fields are joined, as if comma-separated;
//   - NUL bytes become U+FFFD.
//
// A field that is absent is "" and sent as NIL; one present with an empty
// value is "" with its bit set in Empty and sent as "".
type Envelope struct {
	Date, Subject                      string
	From, Sender, ReplyTo, To, Cc, Bcc []EnvelopeAddress
	InReplyTo, MessageID               string
	Empty                              uint8 // EnvDate, EnvSubject, EnvInReplyTo, EnvMessageID
}

// Bits of Envelope.Empty.
const (
	EnvDate uint8 = 1 << iota
	EnvSubject
	EnvInReplyTo
	EnvMessageID
)

// EnvelopeAddress is one address of an ENVELOPE address list. Name is the
// display name as written (quotes removed, encoded words kept, blanks
// collapsed). A group is a GroupStart address whose Mailbox is the group
// name, then its members, then a GroupEnd address with all fields empty
// (RFC 3501 section 7.4.2). Missing or broken parts of a mailbox are
// filled in as Dovecot does (MISSING_MAILBOX, MISSING_DOMAIN,
// SYNTAX_ERROR, INVALID_ROUTE), so that an address is never mistaken for
// a group marker on the wire.
type EnvelopeAddress struct {
	Name, AdrList, Mailbox, Host string
	GroupStart, GroupEnd         bool
	NameEmpty                    bool // a display name present but empty (or only blanks): sent as ""
}

const (
	missingMailbox = "MISSING_MAILBOX"
	missingDomain  = "MISSING_DOMAIN"
)

// parseEnvelope builds the ENVELOPE from a header block. Sender and
// Reply-To default to From when absent or empty (RFC 3501 section 7.4.2).
func parseEnvelope(h header) Envelope {
	var e Envelope
	str := func(name string, bit uint8) string {
		v, ok := h.last(name)
		if !ok {
			return ""
		}
		var s string
		if bit == EnvSubject {
			s = forHumans(headerValue(v))
		} else {
			s = noLF(headerValue(v))
		}
		if s == "" {
			e.Empty |= bit
		}
		return s
	}
	addrs := func(name string) []EnvelopeAddress {
		var out []EnvelopeAddress
		for _, v := range h.all(name) {
			out = append(out, dovecotAddresses(v)...)
		}
		for i := range out {
			if out[i].Name != "" {
				out[i].Name = forHumans(out[i].Name)
				out[i].NameEmpty = out[i].Name == ""
			}
		}
		return out
	}
	e.Date = str("Date", EnvDate)
	e.Subject = str("Subject", EnvSubject)
	e.From = addrs("From")
	e.Sender = addrs("Sender")
	e.ReplyTo = addrs("Reply-To")
	e.To = addrs("To")
	e.Cc = addrs("Cc")
	e.Bcc = addrs("Bcc")
	e.InReplyTo = str("In-Reply-To", EnvInReplyTo)
	e.MessageID = str("Message-ID", EnvMessageID)
	if len(e.Sender) == 0 {
		e.Sender = e.From
	}
	if len(e.ReplyTo) == 0 {
		e.ReplyTo = e.From
	}
	return e
}

// headerValue returns a field's value as Dovecot's header parser gives
// it (MESSAGE_HEADER_PARSER_FLAG_SKIP_INITIAL_LWSP, DROP_CR): the blanks
// after the colon skipped (all but one when the first line is only
// blanks), CR before each LF dropped, NUL as U+FFFD.
func headerValue(v []byte) string {
	first := v
	if i := bytes.IndexByte(v, '\n'); i >= 0 {
		first = v[:i]
	}
	first = bytes.TrimSuffix(first, []byte("\r"))
	pos := 0
	for pos < len(first) && (first[pos] == ' ' || first[pos] == '\t') {
		pos++
	}
	if pos == len(first) && pos > 0 {
		pos = 1
	}
	v = v[pos:]
	if bytes.IndexByte(v, 0) < 0 && bytes.IndexByte(v, '\r') < 0 {
		return string(v)
	}
	b := make([]byte, 0, len(v)+8)
	for i, c := range v {
		switch {
		case c == 0:
			b = append(b, nulReplacement...)
		case c == '\r' && i+1 < len(v) && v[i+1] == '\n':
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// noLF removes CR and LF, putting a space where the next line does not
// start with a blank: Dovecot's imap_append_nstring_nolf.
func noLF(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\r' && c != '\n' {
			b = append(b, c)
			continue
		}
		if i+1 < len(s) {
			if n := s[i+1]; n != ' ' && n != '\t' && n != '\r' && n != '\n' && n != 0 {
				b = append(b, ' ')
			}
		}
	}
	return string(b)
}

// forHumans is Dovecot's imap_append_string_for_humans: CR and LF are
// dropped, each run of spaces and tabs becomes one space, leading and
// trailing blanks go, NUL becomes 0x80.
func forHumans(s string) string {
	b := make([]byte, 0, len(s))
	lastLWSP := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b = append(b, 0x80)
			lastLWSP = false
		case ' ', '\t':
			if !lastLWSP {
				b = append(b, ' ')
			}
			lastLWSP = true
		case '\r', '\n':
		default:
			b = append(b, c)
			lastLWSP = false
		}
	}
	if lastLWSP && len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return string(b)
}

// addrParser parses an RFC 5322 address-list (section 3.4) leniently.
type addrParser struct {
	s       string
	i       int
	inGroup bool
	out     []EnvelopeAddress
}

type addrWord struct {
	text        string
	quoted, dot bool
}

// parseAddressList parses an address list with groups. Whatever parses is
// kept; junk between addresses is skipped. Names are raw.
func parseAddressList(s string) []EnvelopeAddress {
	p := &addrParser{s: s}
	for n := 0; p.i < len(p.s) && n < 10000; n++ {
		p.skipCFWS()
		if p.i >= len(p.s) {
			break
		}
		switch c := p.s[p.i]; {
		case c == ',':
			p.i++
		case c == ';':
			p.i++
			if p.inGroup {
				p.out = append(p.out, EnvelopeAddress{GroupEnd: true})
				p.inGroup = false
			}
		default:
			start := p.i
			p.one()
			if p.i == start { // no progress: skip a character
				p.i++
			}
		}
	}
	if p.inGroup {
		p.out = append(p.out, EnvelopeAddress{GroupEnd: true})
	}
	return p.out
}

// skipCFWS skips blanks and comments and returns the text of the last
// comment seen.
func (p *addrParser) skipCFWS() string {
	comment := ""
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		case '(':
			depth, start := 0, p.i+1
			for p.i < len(p.s) {
				c := p.s[p.i]
				p.i++
				if c == '\\' && p.i < len(p.s) {
					p.i++
				} else if c == '(' {
					depth++
				} else if c == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			end := p.i - 1
			if end < start {
				end = start
			}
			if end > len(p.s) {
				end = len(p.s)
			}
			comment = strings.TrimSpace(p.s[start:end])
		default:
			return comment
		}
	}
	return comment
}

// one parses one address or the start of a group.
func (p *addrParser) one() {
	var words []addrWord
	comment := ""
	for {
		if c := p.skipCFWS(); c != "" {
			comment = c
		}
		if p.i >= len(p.s) {
			p.bare(words, comment)
			return
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			words = append(words, addrWord{text: p.quoted(), quoted: true})
		case c == '.':
			p.i++
			words = append(words, addrWord{text: ".", dot: true})
		case c == '<':
			p.angle(phrase(words), comment)
			return
		case c == ':':
			p.i++
			if !p.inGroup && len(words) > 0 {
				p.out = append(p.out, EnvelopeAddress{Mailbox: phrase(words), GroupStart: true})
				p.inGroup = true
				return
			}
		case c == '@':
			p.i++
			local := localPart(words)
			host := p.domain()
			if c := p.skipCFWS(); c != "" {
				comment = c
			}
			p.emit(EnvelopeAddress{Name: comment, Mailbox: local, Host: host})
			p.skipJunk()
			return
		case c == ',' || c == ';':
			p.bare(words, comment)
			return
		case c == '>' || c == ')' || c == '[' || c == ']' || c == '\\':
			p.i++
		default:
			if w := p.atom(); w != "" {
				words = append(words, addrWord{text: w})
			} else {
				p.i++ // a control character: skip it
			}
		}
	}
}

// bare emits an address that is only a local part (or a lone phrase).
func (p *addrParser) bare(words []addrWord, comment string) {
	if len(words) == 0 {
		return
	}
	p.emit(EnvelopeAddress{Name: comment, Mailbox: localPart(words)})
}

func (p *addrParser) emit(a EnvelopeAddress) {
	if a.Mailbox == "" && a.Host == "" && a.Name == "" {
		return
	}
	if len(p.out) < 10000 {
		p.out = append(p.out, a)
	}
}

// skipJunk skips to the next separator.
func (p *addrParser) skipJunk() {
	for p.i < len(p.s) {
		c := p.s[p.i]
		if c == ',' || c == ';' {
			return
		}
		if c == '"' {
			p.quoted()
			continue
		}
		p.i++
	}
}

// angle parses "<[route:]local@domain>" with the display name before it.
func (p *addrParser) angle(name, comment string) {
	p.i++ // '<'
	start := p.i
	j := strings.IndexByte(p.s[start:], '>')
	var inner string
	if j < 0 {
		// no '>': up to the next separator
		k := strings.IndexAny(p.s[start:], ",;")
		if k < 0 {
			k = len(p.s) - start
		}
		inner, p.i = p.s[start:start+k], start+k
	} else {
		inner, p.i = p.s[start:start+j], start+j+1
	}
	inner = strings.TrimSpace(inner)
	a := EnvelopeAddress{Name: name}
	if strings.HasPrefix(inner, "@") {
		if k := strings.IndexByte(inner, ':'); k >= 0 {
			a.AdrList, inner = strings.TrimSpace(inner[:k]), strings.TrimSpace(inner[k+1:])
		}
	}
	if at := strings.LastIndexByte(inner, '@'); at >= 0 {
		a.Mailbox, a.Host = unquoteAddr(strings.TrimSpace(inner[:at])), strings.TrimSpace(inner[at+1:])
	} else {
		a.Mailbox = unquoteAddr(inner)
	}
	if c := p.skipCFWS(); a.Name == "" && c != "" {
		a.Name = c
	} else if a.Name == "" {
		a.Name = comment
	}
	p.emit(a)
	p.skipJunk()
}

// quoted reads a quoted-string at p.i and returns its unescaped content.
func (p *addrParser) quoted() string {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '\\':
			if p.i < len(p.s) {
				b.WriteByte(p.s[p.i])
				p.i++
			}
		case '"':
			return b.String()
		case '\r', '\n':
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// atom reads a run of atom characters (8-bit bytes allowed).
func (p *addrParser) atom() string {
	start := p.i
	for p.i < len(p.s) && !isAddrSpecial(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// domain reads a domain: atoms, dots and domain literals.
func (p *addrParser) domain() string {
	p.skipCFWS()
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '.':
			b.WriteByte('.')
			p.i++
		case c == '[':
			j := strings.IndexByte(p.s[p.i:], ']')
			if j < 0 {
				b.WriteString(p.s[p.i:])
				p.i = len(p.s)
			} else {
				b.WriteString(p.s[p.i : p.i+j+1])
				p.i += j + 1
			}
		case isAddrSpecial(c):
			return b.String()
		default:
			b.WriteString(p.atom())
		}
	}
	return b.String()
}

func isAddrSpecial(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', ':', ';', '@', '\\', ',', '.', '"', ' ', '\t', '\r', '\n':
		return true
	}
	return c < ' ' || c == 0x7f
}

// phrase joins display-name words with single spaces.
func phrase(words []addrWord) string {
	var b strings.Builder
	for i, w := range words {
		if w.dot {
			b.WriteByte('.')
			continue
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(w.text)
	}
	return b.String()
}

// localPart joins local-part words without blanks.
func localPart(words []addrWord) string {
	var b strings.Builder
	for _, w := range words {
		b.WriteString(w.text)
	}
	return b.String()
}

func unquoteAddr(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		p := &addrParser{s: s}
		return p.quoted()
	}
	return s
}

// FormatEnvelope renders e in IMAP wire syntax (RFC 3501 section 7.4.2),
// the way a server sends it after "ENVELOPE ".
func FormatEnvelope(e *Envelope) string {
	var b strings.Builder
	writeEnvelope(&b, e)
	return b.String()
}

func writeEnvelope(b *strings.Builder, e *Envelope) {
	b.WriteByte('(')
	writeEnvString(b, e.Date, e.Empty&EnvDate != 0)
	b.WriteByte(' ')
	writeEnvString(b, e.Subject, e.Empty&EnvSubject != 0)
	for _, l := range [][]EnvelopeAddress{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		b.WriteByte(' ')
		writeAddressList(b, l)
	}
	b.WriteByte(' ')
	writeEnvString(b, e.InReplyTo, e.Empty&EnvInReplyTo != 0)
	b.WriteByte(' ')
	writeEnvString(b, e.MessageID, e.Empty&EnvMessageID != 0)
	b.WriteByte(')')
}

// writeEnvString writes s, or NIL when it is empty and the field is
// absent (RFC 3501 section 7.4.2: NIL when the header line is absent).
func writeEnvString(b *strings.Builder, s string, present bool) {
	if s == "" && present {
		b.WriteString(`""`)
		return
	}
	writeNString(b, s)
}

func writeAddressList(b *strings.Builder, l []EnvelopeAddress) {
	if len(l) == 0 {
		b.WriteString("NIL")
		return
	}
	b.WriteByte('(')
	for _, a := range l {
		switch {
		case a.GroupEnd:
			b.WriteString("(NIL NIL NIL NIL)")
		case a.GroupStart:
			b.WriteString("(NIL NIL ")
			writeString(b, a.Mailbox)
			b.WriteString(" NIL)")
		default:
			// mailbox and host are never NIL: NIL host marks a group
			b.WriteByte('(')
			writeEnvString(b, a.Name, a.NameEmpty)
			b.WriteByte(' ')
			writeNString(b, a.AdrList)
			b.WriteByte(' ')
			writeString(b, a.Mailbox)
			b.WriteByte(' ')
			writeString(b, a.Host)
			b.WriteByte(')')
		}
	}
	b.WriteByte(')')
}

// writeNString writes s as NIL when empty, else as a string.
func writeNString(b *strings.Builder, s string) {
	if s == "" {
		b.WriteString("NIL")
		return
	}
	writeString(b, s)
}

// writeString writes s quoted, or as a literal when it holds CR, LF, NUL
// or 8-bit bytes, which a quoted string cannot (RFC 3501 section 4.3).
func writeString(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' || c == 0 || c >= 0x80 {
			b.WriteString("{" + strconv.Itoa(len(s)) + "}\r\n")
			b.WriteString(s)
			return
		}
	}
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// Compact binary encoding of Envelope and BodyStructure for the index:
// a format byte, then strings as uvarint length + bytes, numbers as
// uvarints, lists as a uvarint count. Decoding checks every length
// against what is left, so garbage gives an error, never a panic.

const (
	envelopeFormat      = 2 // 2: Envelope.Empty added
	bodyStructureFormat = 2 // 2: envelopes inside are format 2
)

var errCorrupt = errors.New("archive: corrupt encoding")

type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }

func (e *encoder) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errCorrupt
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) str() string {
	n := d.uint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.err = errCorrupt
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// count reads a list length; each element takes at least min bytes.
func (d *decoder) count(min int) int {
	n := d.uint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/min) {
		d.err = errCorrupt
		return 0
	}
	return int(n)
}

func (e *encoder) envelope(env *Envelope) {
	e.str(env.Date)
	e.str(env.Subject)
	for _, l := range [][]EnvelopeAddress{env.From, env.Sender, env.ReplyTo, env.To, env.Cc, env.Bcc} {
		e.uint(uint64(len(l)))
		for _, a := range l {
			var flags uint64
			if a.GroupStart {
				flags |= 1
			}
			if a.GroupEnd {
				flags |= 2
			}
			if a.NameEmpty {
				flags |= 4
			}
			e.uint(flags)
			e.str(a.Name)
			e.str(a.AdrList)
			e.str(a.Mailbox)
			e.str(a.Host)
		}
	}
	e.str(env.InReplyTo)
	e.str(env.MessageID)
	e.uint(uint64(env.Empty))
}

func (d *decoder) envelope() *Envelope {
	env := &Envelope{}
	env.Date = d.str()
	env.Subject = d.str()
	for _, l := range []*[]EnvelopeAddress{&env.From, &env.Sender, &env.ReplyTo, &env.To, &env.Cc, &env.Bcc} {
		n := d.count(5)
		if n > 0 {
			*l = make([]EnvelopeAddress, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			flags := d.uint()
			(*l)[i] = EnvelopeAddress{
				GroupStart: flags&1 != 0, GroupEnd: flags&2 != 0, NameEmpty: flags&4 != 0,
				Name: d.str(), AdrList: d.str(), Mailbox: d.str(), Host: d.str(),
			}
		}
	}
	env.InReplyTo = d.str()
	env.MessageID = d.str()
	env.Empty = uint8(d.uint())
	return env
}

// EncodeEnvelope encodes e compactly for storage; DecodeEnvelope reverses it.
func EncodeEnvelope(e *Envelope) []byte {
	enc := &encoder{b: make([]byte, 0, 256)}
	enc.b = append(enc.b, envelopeFormat)
	if e == nil {
		e = &Envelope{}
	}
	enc.envelope(e)
	return enc.b
}

// DecodeEnvelope decodes what EncodeEnvelope produced.
func DecodeEnvelope(b []byte) (*Envelope, error) {
	if len(b) == 0 || b[0] != envelopeFormat {
		return nil, fmt.Errorf("decode envelope: %w", errCorrupt)
	}
	d := &decoder{b: b[1:]}
	env := d.envelope()
	if d.err == nil && len(d.b) != 0 {
		d.err = errCorrupt
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode envelope: %w", d.err)
	}
	return env, nil
}

// QuoteIMAP renders s as an IMAP string: quoted, or a literal when it
// holds bytes a quoted string cannot carry.
func QuoteIMAP(s string) string {
	var sb strings.Builder
	writeString(&sb, s)
	return sb.String()
}
