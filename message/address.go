package message

import "strings"

// Two address parsers, for two sets of semantics that must not be mixed:
//
//   - publicInboxAddresses (this file) reads the addresses whose meaning
//     comes from public-inbox: Parsed.From (the git author, the sender in
//     the index) and the addresses that MID.pm references() drops from
//     References/In-Reply-To when the content hash (dedup) is computed.
//     It is lenient the way public-inbox is: whatever parses is
//     kept, junk between addresses is skipped, and firstAddress falls back
//     to the first token that looks like an address.
//   - dovecotAddresses (envelope_dovecot.go) reads the ENVELOPE address
//     lists exactly as Dovecot 2.3 does, missing parts filled with
//     MISSING_MAILBOX, MISSING_DOMAIN, SYNTAX_ERROR, INVALID_ROUTE, so that
//     our ENVELOPE equals Dovecot's on broken mail too.
//
// Using the Dovecot parser for From would change authors and content
// hashes of archived mail (dedup would then differ from public-inbox);
// using this one for ENVELOPE would differ from Dovecot.

// Address is one mailbox: Name is the decoded display name.
type Address struct {
	Name, Mailbox, Host string
}

// String returns the address as mailbox@host.
func (a Address) String() string {
	if a.Host == "" {
		return a.Mailbox
	}
	return a.Mailbox + "@" + a.Host
}

// firstAddress returns the first mailbox of the first field called name,
// with its display name decoded. When the field does not parse it takes
// the first token that looks like an address, as public-inbox does.
func firstAddress(h header, name string) Address {
	v, ok := h.first(name)
	if !ok {
		return Address{}
	}
	s := unfoldPI(v)
	for _, a := range publicInboxAddresses(s) {
		if a.GroupStart || a.GroupEnd || a.Mailbox == "" {
			continue
		}
		if a.Host == "" && !strings.Contains(s, "@") {
			return Address{Name: decodeWords(a.Name), Mailbox: a.Mailbox}
		}
		if a.Host != "" {
			return Address{Name: decodeWords(a.Name), Mailbox: a.Mailbox, Host: a.Host}
		}
	}
	// fallback: the first email-looking token
	for _, tok := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '<' || r == '>' || r == ',' || r == ';' || r == '"' || r == '(' || r == ')'
	}) {
		if at := strings.LastIndexByte(tok, '@'); at > 0 && at < len(tok)-1 {
			return Address{Mailbox: tok[:at], Host: tok[at+1:]}
		}
	}
	return Address{}
}

// piAddrParser is publicInboxAddresses' state: it parses an RFC 5322
// address-list (section 3.4) leniently.
type piAddrParser struct {
	s       string
	i       int
	inGroup bool
	out     []EnvelopeAddress
}

type addrWord struct {
	text        string
	quoted, dot bool
}

// publicInboxAddresses parses an address list with groups for the fields
// whose meaning follows public-inbox (see the top of this file). Whatever
// parses is kept; junk between addresses is skipped. Names are raw (not
// RFC 2047-decoded); a group is marked as in an ENVELOPE (GroupStart,
// members, GroupEnd).
func publicInboxAddresses(s string) []EnvelopeAddress {
	p := &piAddrParser{s: s}
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
func (p *piAddrParser) skipCFWS() string {
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
func (p *piAddrParser) one() {
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
func (p *piAddrParser) bare(words []addrWord, comment string) {
	if len(words) == 0 {
		return
	}
	p.emit(EnvelopeAddress{Name: comment, Mailbox: localPart(words)})
}

func (p *piAddrParser) emit(a EnvelopeAddress) {
	if a.Mailbox == "" && a.Host == "" && a.Name == "" {
		return
	}
	if len(p.out) < 10000 {
		p.out = append(p.out, a)
	}
}

// skipJunk skips to the next separator.
func (p *piAddrParser) skipJunk() {
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
func (p *piAddrParser) angle(name, comment string) {
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
func (p *piAddrParser) quoted() string {
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
func (p *piAddrParser) atom() string {
	start := p.i
	for p.i < len(p.s) && !isAddrSpecial(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// domain reads a domain: atoms, dots and domain literals.
func (p *piAddrParser) domain() string {
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
		p := &piAddrParser{s: s}
		return p.quoted()
	}
	return s
}
