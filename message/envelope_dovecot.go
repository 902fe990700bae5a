package message

// Address lists of the ENVELOPE, parsed the way Dovecot 2.3 does
// (lib-mail message-address.c with MESSAGE_ADDRESS_PARSE_FLAG_FILL_MISSING
// and rfc822-parser.c), so that our ENVELOPE equals Dovecot's on real
// mail, broken addresses included. RFC 3501 section 7.4.2 defines the
// address structure but not how to read a malformed header; following
// one widely deployed server keeps clients that compare servers quiet.

// nulReplacement replaces NUL bytes in quoted strings, comments and
// domain literals, as Dovecot's RFC822_NUL_REPLACEMENT_STR does.
const nulReplacement = "\uFFFD"

const (
	missingRoute = "INVALID_ROUTE"
	syntaxError  = "SYNTAX_ERROR"
)

// rfcAtext marks RFC 5322 atext bytes (1), letters and digits and 8-bit
// bytes (2), and atext that is a MIME tspecial (4): Dovecot's
// rfc822_atext_chars.
var rfcAtext = func() (t [256]byte) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= 0x80:
			t[c] = 2
		case c == '/' || c == '=' || c == '?':
			t[c] = 4
		case c > ' ' && c < 0x7f && !isRFCSpecial(byte(c)):
			t[c] = 1
		}
	}
	return t
}()

func isRFCSpecial(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', ':', ';', '@', '\\', ',', '.', '"':
		return true
	}
	return false
}

func isAtext(c byte) bool { return rfcAtext[c] != 0 }

// rfcParser is Dovecot's rfc822_parser_context. Its functions return 1
// when more input follows, 0 at the end of input, -1 on invalid input.
type rfcParser struct {
	s           []byte
	i           int
	lastComment []byte
}

func (p *rfcParser) at() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *rfcParser) more() int {
	if p.i < len(p.s) {
		return 1
	}
	return 0
}

func (p *rfcParser) skipComment() int {
	p.lastComment = p.lastComment[:0]
	level := 1
	p.i++
	start := p.i
	for ; p.i < len(p.s); p.i++ {
		switch p.s[p.i] {
		case 0:
			p.lastComment = append(p.lastComment, p.s[start:p.i]...)
			p.lastComment = append(p.lastComment, nulReplacement...)
			start = p.i + 1
		case '(':
			level++
		case ')':
			level--
			if level == 0 {
				p.lastComment = append(p.lastComment, p.s[start:p.i]...)
				p.i++
				return p.more()
			}
		case '\n':
			seg := p.s[start:p.i]
			if len(seg) > 0 && seg[len(seg)-1] == '\r' {
				seg = seg[:len(seg)-1]
			}
			p.lastComment = append(p.lastComment, seg...)
			start = p.i + 1
		case '\\':
			p.i++
			if p.i >= len(p.s) {
				return -1
			}
			if c := p.s[p.i]; c == '\r' || c == '\n' || c == 0 {
				p.i--
				break
			}
			p.lastComment = append(p.lastComment, p.s[start:p.i-1]...)
			start = p.i
		}
	}
	return -1
}

func (p *rfcParser) skipLWSP() int {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
			continue
		case '(':
			if p.skipComment() < 0 {
				return -1
			}
			continue
		}
		break
	}
	return p.more()
}

func (p *rfcParser) atom(str *[]byte) int {
	if p.i >= len(p.s) || !isAtext(p.s[p.i]) {
		return -1
	}
	start := p.i
	for p.i++; p.i < len(p.s); p.i++ {
		if !isAtext(p.s[p.i]) {
			*str = append(*str, p.s[start:p.i]...)
			return p.skipLWSP()
		}
	}
	*str = append(*str, p.s[start:p.i]...)
	return 0
}

func (p *rfcParser) dotAtom(str *[]byte) int {
	if p.i >= len(p.s) || !isAtext(p.s[p.i]) {
		return -1
	}
	start := p.i
	for p.i++; p.i < len(p.s); {
		if isAtext(p.s[p.i]) {
			p.i++
			continue
		}
		if start == p.i {
			return -1
		}
		*str = append(*str, p.s[start:p.i]...)
		if ret := p.skipLWSP(); ret <= 0 {
			return ret
		}
		if p.s[p.i] != '.' {
			return 1
		}
		p.i++
		*str = append(*str, '.')
		if p.skipLWSP() <= 0 {
			return -1
		}
		start = p.i
	}
	*str = append(*str, p.s[start:p.i]...)
	return 0
}

func (p *rfcParser) quotedString(str *[]byte) int {
	p.i++
	start := p.i
	for ; p.i < len(p.s); p.i++ {
		switch p.s[p.i] {
		case 0:
			*str = append(*str, p.s[start:p.i]...)
			*str = append(*str, nulReplacement...)
			start = p.i + 1
		case '"':
			*str = append(*str, p.s[start:p.i]...)
			p.i++
			return p.skipLWSP()
		case '\n':
			seg := p.s[start:p.i]
			if len(seg) > 0 && seg[len(seg)-1] == '\r' {
				seg = seg[:len(seg)-1]
			}
			*str = append(*str, seg...)
			start = p.i + 1
		case '\\':
			p.i++
			if p.i >= len(p.s) {
				return -1
			}
			if c := p.s[p.i]; c == '\r' || c == '\n' || c == 0 {
				p.i--
				break
			}
			*str = append(*str, p.s[start:p.i-1]...)
			start = p.i
		}
	}
	return -1
}

func (p *rfcParser) atomOrDot(str *[]byte) int {
	start := p.i
	for ; p.i < len(p.s); p.i++ {
		if c := p.s[p.i]; !isAtext(c) && c != '.' {
			*str = append(*str, p.s[start:p.i]...)
			return p.skipLWSP()
		}
	}
	*str = append(*str, p.s[start:p.i]...)
	return 0
}

func (p *rfcParser) phrase(str *[]byte) int {
	if p.i >= len(p.s) {
		return 0
	}
	if p.s[p.i] == '.' {
		return -1
	}
	for {
		var ret int
		if p.s[p.i] == '"' {
			ret = p.quotedString(str)
		} else {
			ret = p.atomOrDot(str)
		}
		if ret <= 0 {
			return ret
		}
		if c := p.s[p.i]; !isAtext(c) && c != '"' && c != '.' {
			break
		}
		*str = append(*str, ' ')
	}
	return p.skipLWSP()
}

func (p *rfcParser) domainLiteral(str *[]byte) int {
	start := p.i
	for p.i++; p.i < len(p.s); p.i++ {
		switch p.s[p.i] {
		case 0:
			*str = append(*str, p.s[start:p.i]...)
			*str = append(*str, nulReplacement...)
			start = p.i + 1
		case '[':
			return -1
		case ']':
			*str = append(*str, p.s[start:p.i+1]...)
			p.i++
			return p.skipLWSP()
		case '\n':
			seg := p.s[start:p.i]
			if len(seg) > 0 && seg[len(seg)-1] == '\r' {
				seg = seg[:len(seg)-1]
			}
			*str = append(*str, seg...)
			start = p.i + 1
		case '\\':
			p.i++
			if p.i >= len(p.s) {
				return -1
			}
			if c := p.s[p.i]; c == '\r' || c == '\n' || c == 0 {
				*str = append(*str, p.s[start:p.i]...)
				start = p.i
				p.i--
			}
		}
	}
	return -1
}

func (p *rfcParser) domain(str *[]byte) int {
	p.i++ // '@'
	if p.skipLWSP() <= 0 {
		return -1
	}
	if p.s[p.i] == '[' {
		return p.domainLiteral(str)
	}
	return p.dotAtom(str)
}

// dvAddr is one address being built; nil pointers are Dovecot's NULL.
type dvAddr struct {
	name, route, mailbox, domain *string
	invalid                      bool
}

type dvAddrParser struct {
	p    rfcParser
	addr dvAddr
	out  []dvAddr
	str  []byte
}

func sp(s string) *string { return &s }

func (c *dvAddrParser) add() {
	c.out = append(c.out, c.addr)
	c.addr = dvAddr{}
}

func (c *dvAddrParser) nonstrictDotAtom() int {
	ret := -1
	for {
		for c.p.at() == '.' && c.p.i < len(c.p.s) {
			c.str = append(c.str, '.')
			c.p.i++
			if c.p.i == len(c.p.s) {
				return 0
			}
			ret = 1
		}
		if c.p.at() == '@' {
			break
		}
		ret = c.p.atom(&c.str)
		if !(ret > 0 && c.p.at() == '.') {
			break
		}
	}
	return ret
}

func (c *dvAddrParser) localPart() int {
	c.str = c.str[:0]
	var ret int
	if c.p.at() == '"' {
		ret = c.p.quotedString(&c.str)
	} else {
		ret = c.nonstrictDotAtom()
	}
	if ret < 0 {
		return -1
	}
	c.addr.mailbox = sp(string(c.str))
	return ret
}

func (c *dvAddrParser) domain() int {
	c.str = c.str[:0]
	ret := c.p.domain(&c.str)
	if ret < 0 {
		return -1
	}
	c.addr.domain = sp(string(c.str))
	return ret
}

func (c *dvAddrParser) domainList() int {
	c.str = c.str[:0]
	for {
		if c.p.i >= len(c.p.s) {
			return 0
		}
		if c.p.s[c.p.i] != '@' {
			break
		}
		if len(c.str) > 0 {
			c.str = append(c.str, ',')
		}
		c.str = append(c.str, '@')
		if ret := c.p.domain(&c.str); ret <= 0 {
			return ret
		}
		for c.p.skipLWSP() > 0 && c.p.s[c.p.i] == ',' {
			c.p.i++
		}
	}
	c.addr.route = sp(string(c.str))
	return 1
}

func (c *dvAddrParser) angleAddr() int {
	c.p.i++ // '<'
	if c.p.skipLWSP() <= 0 {
		return -1
	}
	if c.p.s[c.p.i] == '@' {
		if c.domainList() > 0 && c.p.at() == ':' {
			c.p.i++
		} else {
			c.addr.route = sp(missingRoute)
			if c.p.i >= len(c.p.s) {
				return -1
			}
		}
		if c.p.skipLWSP() <= 0 {
			return -1
		}
	}
	if c.p.s[c.p.i] != '>' {
		if c.localPart() <= 0 {
			return -1
		}
		if c.p.at() == '@' {
			if c.domain() <= 0 {
				return -1
			}
		}
	}
	if c.p.at() != '>' {
		return -1
	}
	c.p.i++
	return c.p.skipLWSP()
}

func (c *dvAddrParser) nameAddr() int {
	c.str = c.str[:0]
	if c.p.phrase(&c.str) <= 0 || c.p.s[c.p.i] != '<' {
		return -1
	}
	if len(c.str) > 0 {
		c.addr.name = sp(string(c.str))
	} else {
		c.addr.name = nil
	}
	if c.angleAddr() < 0 {
		c.addr.domain = sp(syntaxError)
		c.addr.invalid = true
	}
	return c.p.more()
}

func (c *dvAddrParser) addrSpec() int {
	ret2 := -2
	c.p.lastComment = c.p.lastComment[:0]
	quoted := c.p.at() == '"'
	ret := c.localPart()
	if ret <= 0 {
		c.addr.invalid = true
	}
	if ret != 0 && c.p.i < len(c.p.s) && c.p.s[c.p.i] == '@' {
		ret2 = c.domain()
		if ret2 <= 0 {
			ret = ret2
		}
	}
	if len(c.p.lastComment) > 0 {
		c.addr.name = sp(string(c.p.lastComment))
	} else if ret2 == -2 {
		c.str = append(c.str, ' ')
		n := len(c.str)
		c.p.phrase(&c.str)
		if len(c.str) != n {
			c.addr.mailbox = nil
			c.addr.name = sp(string(c.str))
		} else if !quoted {
			c.addr.domain = sp("")
		}
		c.addr.invalid = true
		ret = -1
	}
	return ret
}

func (c *dvAddrParser) addFixed() {
	if c.addr.mailbox == nil {
		c.addr.mailbox = sp(missingMailbox)
		c.addr.invalid = true
	}
	if c.addr.domain == nil || *c.addr.domain == "" {
		c.addr.domain = sp(missingDomain)
		c.addr.invalid = true
	}
	c.add()
}

func (c *dvAddrParser) mailbox() int {
	start := c.p.i
	ret := c.nameAddr()
	if ret < 0 {
		c.p.i = start
		ret = c.addrSpec()
		if c.addr.invalid && c.addr.name == nil && c.addr.mailbox != nil && c.addr.domain == nil {
			c.addr.name, c.addr.mailbox = c.addr.mailbox, nil
		}
	}
	if ret < 0 {
		c.addr.invalid = true
	}
	c.addFixed()
	return ret
}

func (c *dvAddrParser) group() int {
	c.str = c.str[:0]
	if c.p.phrase(&c.str) <= 0 || c.p.s[c.p.i] != ':' {
		return -1
	}
	c.p.i++
	ret := c.p.skipLWSP()
	if ret <= 0 {
		c.addr.invalid = true
	}
	c.addr.mailbox = sp(string(c.str))
	c.add()
	if ret > 0 && c.p.s[c.p.i] != ';' {
		for n := 0; n < maxEnvelopeAddresses; n++ {
			c.mailbox()
			if c.p.i >= len(c.p.s) || c.p.s[c.p.i] != ',' {
				break
			}
			c.p.i++
			if c.p.skipLWSP() <= 0 {
				ret = -1
				break
			}
		}
	}
	if ret >= 0 {
		if c.p.i >= len(c.p.s) || c.p.s[c.p.i] != ';' {
			ret = -1
		} else {
			c.p.i++
			ret = c.p.skipLWSP()
		}
	}
	if ret < 0 {
		c.addr.invalid = true
	}
	c.add()
	if ret == 0 {
		return 0
	}
	return 1
}

func (c *dvAddrParser) address() int {
	start := c.p.i
	ret := c.group()
	if ret < 0 {
		c.p.i = start
		ret = c.mailbox()
	}
	return ret
}

// maxEnvelopeAddresses bounds the addresses read from one header.
const maxEnvelopeAddresses = 10000

func (c *dvAddrParser) addressList() {
	for n := 0; n < maxEnvelopeAddresses && len(c.out) < maxEnvelopeAddresses; n++ {
		if c.address() == 0 {
			break
		}
		if c.p.i >= len(c.p.s) || c.p.s[c.p.i] != ',' {
			break
		}
		c.p.i++
		if ret := c.p.skipLWSP(); ret <= 0 {
			if ret < 0 {
				c.addFixed()
			}
			break
		}
	}
}

// dovecotAddresses parses one address header's value (folded or not) for
// the ENVELOPE (see address.go for the other parser), as
// Dovecot's message_address_parse with FILL_MISSING: a mailbox without
// a local part gets MISSING_MAILBOX, one without a domain MISSING_DOMAIN,
// a broken <...> the domain SYNTAX_ERROR, a broken route INVALID_ROUTE.
// A group is a GroupStart address whose Mailbox is its name, its
// members, then a GroupEnd address.
func dovecotAddresses(v []byte) []EnvelopeAddress {
	c := &dvAddrParser{p: rfcParser{s: v}}
	if c.p.skipLWSP() > 0 {
		c.addressList()
	}
	out := make([]EnvelopeAddress, 0, len(c.out))
	for _, a := range c.out {
		str := func(s *string) string {
			if s == nil {
				return ""
			}
			return *s
		}
		e := EnvelopeAddress{Name: str(a.name), AdrList: str(a.route), Mailbox: str(a.mailbox), Host: str(a.domain),
			NameEmpty: a.name != nil && *a.name == ""}
		switch {
		case a.name == nil && a.route == nil && a.mailbox == nil && a.domain == nil:
			e.GroupEnd = true
		case a.name == nil && a.route == nil && a.mailbox != nil && a.domain == nil:
			e.GroupStart = true
		}
		out = append(out, e)
	}
	return out
}
