package message

import (
	"sort"
	"strconv"
	"strings"
)

// The Content-* fields of the BODYSTRUCTURE, read the way Dovecot 2.3
// does (lib-mail message-part-data.c, rfc822-parser.c, rfc2231-parser.c),
// so that our BODYSTRUCTURE equals Dovecot's on real mail. The part tree
// itself (multipart splitting, message/rfc822 descent) is computed by
// parsePart.

// mimeToken reads a MIME token (RFC 2045 section 5.1; '.' allowed),
// possibly empty: Dovecot's rfc822_parse_mime_token.
func (p *rfcParser) mimeToken(str *[]byte) int {
	start := p.i
	for ; p.i < len(p.s); p.i++ {
		if c := p.s[p.i]; rfcAtext[c]&3 == 0 && c != '.' {
			*str = append(*str, p.s[start:p.i]...)
			return p.skipLWSP()
		}
	}
	*str = append(*str, p.s[start:p.i]...)
	return 0
}

// contentType is rfc822_parse_content_type: "type/subtype" into str,
// which on failure keeps what Dovecot keeps.
func (p *rfcParser) contentType(str *[]byte) int {
	if p.skipLWSP() <= 0 {
		return -1
	}
	pos0 := len(*str)
	if p.mimeToken(str) <= 0 || len(*str) == pos0 {
		return -1
	}
	if p.s[p.i] != '/' {
		*str = (*str)[:pos0]
		return -1
	}
	p.i++
	if p.skipLWSP() <= 0 {
		*str = (*str)[:pos0]
		return -1
	}
	*str = append(*str, '/')
	pos := len(*str)
	ret := p.mimeToken(str)
	if ret < 0 || len(*str) == pos || (p.i < len(p.s) && p.s[p.i] != ';') {
		*str = (*str)[:pos0]
		return -1
	}
	return ret
}

// contentParam is rfc822_parse_content_param.
func (p *rfcParser) contentParam() (key string, value []byte, ret int) {
	if p.i >= len(p.s) {
		return "", nil, 0
	}
	if p.s[p.i] != ';' {
		return "", nil, -1
	}
	p.i++
	if p.skipLWSP() <= 0 {
		return "", nil, -1
	}
	var k []byte
	if p.mimeToken(&k) <= 0 {
		return "", nil, -1
	}
	if p.s[p.i] != '=' {
		return "", nil, -1
	}
	p.i++
	r := p.skipLWSP()
	switch {
	case r <= 0:
		// broken / no value
	case p.s[p.i] == '"':
		r = p.quotedString(&value)
	case p.s[p.i] == '=':
		// name==?utf-8?b?...?= (broken, but seen)
		for p.i < len(p.s) {
			c := p.s[p.i]
			if c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				break
			}
			value = append(value, c)
			p.i++
		}
	default:
		r = p.mimeToken(&value)
	}
	if r < 0 {
		return string(k), value, -1
	}
	return string(k), value, 1
}

// mimeParams is rfc2231_parse: the parameters in order, names as
// written; RFC 2231 sections (name*0, name*1*, ...) of one name are
// joined into "name" or, if any is extended, "name*" (charset'language'
// prefix kept), after the plain parameters, sorted by name; sections
// with a missing index are kept apart as written.
func (p *rfcParser) mimeParams() [][2]string {
	type sect struct {
		key, value string
		idx        int
		ext        bool
	}
	var out [][2]string
	var sects []sect
	for n := 0; n < 10000; n++ {
		key, value, ret := p.contentParam()
		if ret == 0 {
			break
		}
		if ret < 0 {
			if p.i >= len(p.s) {
				break
			}
			p.i++
			continue
		}
		star := strings.IndexByte(key, '*')
		if star < 0 {
			out = append(out, [2]string{key, string(value)})
			continue
		}
		s := sect{key: key[:star], value: string(value)}
		rest := key[star:]
		if len(rest) > 1 {
			rest = rest[1:]
			j := 0
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				s.idx = s.idx*10 + int(rest[j]-'0')
				j++
			}
			rest = rest[j:]
		}
		if rest != "" && rest[0] == '*' {
			s.ext = true
			rest = rest[1:]
		}
		if rest != "" {
			out = append(out, [2]string{key, string(value)})
			continue
		}
		sects = append(sects, s)
	}
	if len(sects) == 0 {
		return out
	}
	sort.SliceStable(sects, func(a, b int) bool {
		if sects[a].key != sects[b].key {
			return sects[a].key < sects[b].key
		}
		return sects[a].idx < sects[b].idx
	})
	for i, next := 0, 0; i < len(sects); i = next {
		ok, ext := true, false
		j := i
		for idx := 0; j < len(sects) && strings.EqualFold(sects[i].key, sects[j].key); j, idx = j+1, idx+1 {
			if sects[j].idx != idx {
				ok = false
			}
			if sects[j].ext {
				ext = true
			}
		}
		next = j
		if !ok {
			for k := i; k < next; k++ {
				name := sects[k].key + "*" + strconv.Itoa(sects[k].idx)
				if sects[k].ext {
					name += "*"
				}
				out = append(out, [2]string{name, sects[k].value})
			}
			continue
		}
		var b strings.Builder
		if !sects[i].ext && ext {
			b.WriteString("''")
		}
		for k := i; k < next; k++ {
			if !sects[k].ext && ext {
				b.WriteString(strings.ReplaceAll(sects[k].value, "%", "%25"))
			} else {
				b.WriteString(sects[k].value)
			}
		}
		key := sects[i].key
		if ext {
			key += "*"
		}
		out = append(out, [2]string{key, b.String()})
	}
	return out
}

// dvContentType parses a Content-Type value as Dovecot does: type and
// subtype as written (on a broken value, what parsed before the break,
// subtype possibly ""), parameters only when the type parsed.
func dvContentType(v []byte) (typ, sub string, params [][2]string) {
	p := &rfcParser{s: v}
	p.skipLWSP()
	var str []byte
	ret := p.contentType(&str)
	s := string(str)
	if i := strings.IndexByte(s, '/'); i >= 0 {
		typ, sub = s[:i], s[i+1:]
	} else {
		typ = s
	}
	if ret < 0 {
		return typ, sub, nil
	}
	return typ, sub, p.mimeParams()
}

// dvTransferEncoding returns the Content-Transfer-Encoding token as
// written, or "" when the value is not exactly one token.
func dvTransferEncoding(v []byte) string {
	p := &rfcParser{s: v}
	p.skipLWSP()
	var str []byte
	if p.mimeToken(&str) >= 0 && p.skipLWSP() == 0 && len(str) > 0 {
		return string(str)
	}
	return ""
}

// dvDisposition parses Content-Disposition: the token (maybe empty) and
// its parameters; ok is false when the value does not start with a token.
func dvDisposition(v []byte) (disp string, params [][2]string, ok bool) {
	p := &rfcParser{s: v}
	p.skipLWSP()
	var str []byte
	if p.mimeToken(&str) < 0 {
		return "", nil, false
	}
	return string(str), p.mimeParams(), true
}

// dvLanguages parses Content-Language: comma-separated atoms.
func dvLanguages(v []byte) []string {
	p := &rfcParser{s: v}
	p.skipLWSP()
	var out []string
	for len(out) < 1000 {
		var str []byte
		if p.atom(&str) < 0 {
			break
		}
		out = append(out, string(str))
		if p.i >= len(p.s) || p.s[p.i] != ',' {
			break
		}
		p.i++
		p.skipLWSP()
	}
	return out
}

// hasParam reports whether params has one called name, in any case.
func hasParam(params [][2]string, name string) bool {
	for _, p := range params {
		if strings.EqualFold(p[0], name) {
			return true
		}
	}
	return false
}
