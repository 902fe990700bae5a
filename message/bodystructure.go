package message

import (
	"bytes"
	"sort"
	"strconv"
	"strings"
)

// BodyStructure is the IMAP BODYSTRUCTURE of a message or part, extended
// form (RFC 3501 section 7.4.2), as Dovecot 2.3 computes it (checked
// against Dovecot on the shared corpora, see docs/IMAP-DOVECOT.md):
//
//   - no Content-Type means text/plain (message/rfc822 inside
//     multipart/digest, RFC 2046 section 5.1.5); so does a message
//     without Mime-Version and Content-Type, whose other Content-* fields
//     are then ignored; a text part without a parameter called "charset"
//     gets ("charset" "us-ascii");
//   - Type, Subtype, Encoding, parameter names and values are kept as
//     written (a broken Content-Type gives what parsed before the break);
//     RFC 2231 continuations are joined; Encoding defaults to "7bit";
//   - Size counts the body's octets as IMAP transfers them, every line
//     ending in CRLF (Dovecot's virtual size), so LF and CRLF storage
//     agree; Lines (text/* and message/rfc822) counts line feeds;
//   - a multipart without a boundary is read as a single text/plain part;
//     one whose boundary never occurs gets one empty text/plain child.
type BodyStructure struct {
	Type, Subtype     string
	Params            [][2]string // ordered name, value pairs
	ID, Description   string
	Encoding          string
	Size, Lines       int64
	Envelope          *Envelope      // message/rfc822: the attached message's envelope
	Body              *BodyStructure // message/rfc822: the attached message's structure
	Children          []BodyStructure
	MD5               string
	Disposition       string
	DispositionParams [][2]string
	Language          []string
	Location          string
	Empty             uint8 // BsID, BsDescription, BsMD5, BsLocation, BsDisposition
}

// Bits of BodyStructure.Empty: the field is present in the header with
// an empty value, and is sent as "" rather than NIL.
const (
	BsID uint8 = 1 << iota
	BsDescription
	BsMD5
	BsLocation
	BsDisposition
)

// mimeNode is a parsed MIME part: its header, its body as transferred
// and, for the walks that compute Text and ContentHash, its children.
type mimeNode struct {
	bs       BodyStructure
	hdr      header
	body     []byte
	typ, sub string      // lower-case media type and subtype
	params   [][2]string // Content-Type parameters
	cte      string
	children []*mimeNode
	msg      *mimeNode // attached message (message/rfc822, global, news)
	submsg   bool      // this node is an attached message's top part

	dec      []byte // decoded(): body without transfer encoding
	text     string // charsetText(): dec in UTF-8
	textOK   bool
	haveText bool
}

// MIME limits, close to public-inbox's Eml.pm (nesting 20, parts 1000)
// and postfix; beyond them parts are leaves.
const (
	maxMIMEDepth = 40
	maxMIMEParts = 2000
)

type mimeState struct {
	pr    *problems
	parts int
}

// parsePart parses the message or part with header h and body; digest
// is true inside multipart/digest.
func parsePart(h header, body []byte, depth int, digest bool, pr *problems) *mimeNode {
	st := &mimeState{pr: pr}
	return st.part(h, body, depth, digest, true)
}

func (st *mimeState) part(h header, body []byte, depth int, digest, top bool) *mimeNode {
	st.parts++
	n := &mimeNode{hdr: h, body: body}
	bs := &n.bs
	// n.typ, n.sub, n.params, n.cte drive the part tree, Text and the
	// content hash (public-inbox's reading); bs holds what IMAP sends
	// (Dovecot's reading, see bodystructure_dovecot.go)
	if v, ok := h.first("Content-Type"); ok {
		typ, sub, params, ok := parseContentType(unfoldPI(v))
		if ok {
			n.typ, n.sub, n.params = strings.ToLower(typ), strings.ToLower(sub), params
		} else {
			st.pr.add("bad Content-Type")
		}
	}
	if n.typ == "" {
		if digest {
			n.typ, n.sub = "message", "rfc822"
		} else {
			n.typ, n.sub = "text", "plain"
		}
	}
	if v, ok := h.first("Content-Transfer-Encoding"); ok {
		n.cte = cteToken(unfold(v))
	}
	st.dovecotFields(bs, h, n, digest, top)
	bs.Size = int64(crlfLen(body))

	if n.typ == "multipart" {
		boundary := paramValue(n.params, "boundary")
		if boundary == "" {
			// RFC 2046 section 5.1.1 requires one. Text reads the body
			// as text; IMAP sends a multipart without parts (written
			// with one empty text/plain part), as Dovecot does
			st.pr.add("multipart without boundary")
			n.typ, n.sub = "text", "plain"
			n.params = nil
			if strings.EqualFold(bs.Type, "multipart") {
				return n
			}
		} else {
			bs.Lines = 0
			if depth >= maxMIMEDepth || st.parts >= maxMIMEParts {
				st.pr.add("MIME nesting too deep")
			} else {
				for _, raw := range splitMultipart(body, boundary) {
					if st.parts >= maxMIMEParts {
						st.pr.add("too many MIME parts")
						break
					}
					ch, cb, _ := splitMessage(raw, st.pr)
					c := st.part(ch, cb, depth+1, n.sub == "digest", false)
					n.children = append(n.children, c)
					bs.Children = append(bs.Children, c.bs)
				}
			}
			if len(bs.Children) == 0 {
				st.pr.add("multipart without parts")
				bs.Children = []BodyStructure{{Type: "text", Subtype: "plain",
					Params: [][2]string{{"charset", "us-ascii"}}, Encoding: "7bit"}}
			}
			return n
		}
	}
	if strings.EqualFold(bs.Type, "text") {
		// the default charset is added when writing, but only for a
		// parameter called exactly "charset" (any case), as Dovecot does
		bs.Lines = countLines(body)
		if !hasParam(bs.Params, "charset") {
			bs.Params = append(bs.Params, [2]string{"charset", "us-ascii"})
		}
	}
	if n.typ == "message" && isMessageSubtype(n.sub) {
		enc := strings.ToLower(n.cte)
		if enc == "base64" || enc == "quoted-printable" || depth >= maxMIMEDepth || st.parts >= maxMIMEParts {
			// encoded or too deep: a plain leaf (Dovecot does the same
			// for encoded message/rfc822)
			return n
		}
		ch, cb, _ := splitMessage(body, st.pr)
		c := st.part(ch, cb, depth+1, false, true)
		c.submsg = true
		n.msg = c
		if n.sub == "rfc822" {
			env := parseEnvelope(ch)
			bs.Envelope = &env
			bs.Body = &c.bs
			bs.Lines = countLines(body)
			if lineBreakAfter(body) > 0 && endsWithDelimiter(c, body) {
				// Dovecot counts the line break before the enclosing
				// delimiter in this part when the part's last line is
				// itself a delimiter of a multipart inside it: the
				// break ends that line, so the enclosing delimiter
				// has none before it (message-parser.c)
				bs.Size += 2
				bs.Lines++
			}
		}
	}
	return n
}

// dovecotFields fills in what bs holds from the Content-* fields, read as
// Dovecot 2.3 reads them (message-part-data.c): the first Content-Type,
// Content-ID, Content-Description, Content-MD5, Content-Location; the
// first Content-Transfer-Encoding that is one token; the first
// Content-Disposition with parameters (else the last one); the first
// Content-Language naming a language. Values keep their case. A message
// (top is true: the message itself or an attached one) with neither
// Mime-Version nor Content-Type is not MIME, and its Content-* fields are
// ignored (RFC 2045 section 4).
func (st *mimeState) dovecotFields(bs *BodyStructure, h header, n *mimeNode, digest, top bool) {
	_, hasMIME := h.first("Mime-Version")
	ct, hasCT := h.first("Content-Type")
	if top && !hasMIME && !hasCT {
		bs.Type, bs.Subtype, bs.Encoding = "text", "plain", "7bit"
		return
	}
	if hasCT {
		bs.Type, bs.Subtype, bs.Params = dvContentType(ct)
	} else if digest {
		bs.Type, bs.Subtype = "message", "rfc822"
	} else {
		bs.Type, bs.Subtype = "text", "plain"
	}
	for _, v := range h.all("Content-Transfer-Encoding") {
		if bs.Encoding = dvTransferEncoding(v); bs.Encoding != "" {
			break
		}
	}
	if bs.Encoding == "" {
		bs.Encoding = "7bit"
	}
	str := func(name string, bit uint8) string {
		v, ok := h.first(name)
		if !ok {
			return ""
		}
		s := noLF(headerValue(v))
		if s == "" {
			bs.Empty |= bit
		}
		return s
	}
	bs.ID = str("Content-ID", BsID)
	bs.Description = str("Content-Description", BsDescription)
	bs.MD5 = str("Content-MD5", BsMD5)
	bs.Location = str("Content-Location", BsLocation)
	for _, v := range h.all("Content-Disposition") {
		if len(bs.DispositionParams) > 0 {
			break
		}
		if d, params, ok := dvDisposition(v); ok {
			bs.Disposition, bs.DispositionParams = d, params
			if d == "" {
				bs.Empty |= BsDisposition
			} else {
				bs.Empty &^= BsDisposition
			}
		}
	}
	for _, v := range h.all("Content-Language") {
		if bs.Language = dvLanguages(v); len(bs.Language) > 0 {
			break
		}
	}
}

// lineBreakAfter returns the length of the line break ("\n" or "\r\n")
// that follows body in the message it was cut from, or 0: splitMultipart
// cuts a part before the line break that precedes a delimiter, and the
// part's slice keeps the capacity of the whole message.
func lineBreakAfter(body []byte) int {
	rest := body[len(body):cap(body)]
	switch {
	case len(rest) > 0 && rest[0] == '\n':
		return 1
	case len(rest) > 1 && rest[0] == '\r' && rest[1] == '\n':
		return 2
	}
	return 0
}

// endsWithDelimiter reports whether the last line of body is a
// delimiter or close delimiter of a multipart in the tree under n.
func endsWithDelimiter(n *mimeNode, body []byte) bool {
	last := body[bytes.LastIndexByte(body, '\n')+1:]
	last = bytes.TrimRight(last, " \t\r")
	if !bytes.HasPrefix(last, []byte("--")) {
		return false
	}
	var walk func(n *mimeNode, depth int) bool
	walk = func(n *mimeNode, depth int) bool {
		if n == nil || depth > maxMIMEDepth+2 {
			return false
		}
		if n.typ == "multipart" {
			if b := paramValue(n.params, "boundary"); b != "" {
				d := bytes.TrimPrefix(last, []byte("--"))
				if string(d) == b || string(d) == b+"--" {
					return true
				}
			}
		}
		for _, c := range n.children {
			if walk(c, depth+1) {
				return true
			}
		}
		return walk(n.msg, depth+1)
	}
	return walk(n, 0)
}

// isMessageSubtype reports the message/* subtypes that hold a whole
// message (public-inbox Eml.pm %MESSAGE_DESCEND).
func isMessageSubtype(sub string) bool {
	switch sub {
	case "rfc822", "global", "news", "rfc2822":
		return true
	}
	return false
}

// splitMultipart returns the bodies of the parts of a multipart body
// (RFC 2046 section 5.1.1): a delimiter line is "--boundary" followed
// only by blanks, the close delimiter "--boundary--"; the line break
// before a delimiter belongs to it. Without a close delimiter the last
// part runs to the end.
func splitMultipart(body []byte, boundary string) [][]byte {
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1
	for pos := 0; pos < len(body); {
		k := bytes.Index(body[pos:], delim)
		if k < 0 {
			break
		}
		p := pos + k
		if p > 0 && body[p-1] != '\n' {
			pos = p + 1
			continue
		}
		lineEnd, next := len(body), len(body)
		if j := bytes.IndexByte(body[p:], '\n'); j >= 0 {
			lineEnd, next = p+j, p+j+1
		}
		rest := body[p+len(delim) : lineEnd]
		closing := bytes.HasPrefix(rest, []byte("--"))
		if !closing && len(bytes.Trim(rest, " \t\r")) != 0 {
			pos = p + 1
			continue
		}
		if start >= 0 {
			end := p
			if end > 0 && body[end-1] == '\n' {
				end--
				if end > 0 && body[end-1] == '\r' {
					end--
				}
			}
			if end < start {
				end = start
			}
			parts = append(parts, body[start:end])
			if len(parts) >= maxMIMEParts {
				return parts
			}
		}
		if closing {
			return parts
		}
		start = next
		pos = next
	}
	if start >= 0 {
		parts = append(parts, body[start:])
	}
	return parts
}

// parseContentType parses "type/subtype; params" (RFC 2045 section 5.1).
func parseContentType(s string) (typ, sub string, params [][2]string, ok bool) {
	mt, rest, _ := strings.Cut(s, ";")
	mt = strings.TrimSpace(stripComments(mt))
	t, st, found := strings.Cut(mt, "/")
	t, st = strings.TrimSpace(t), strings.TrimSpace(st)
	if !found || t == "" || !isToken(t) || (st != "" && !isToken(st)) {
		return "", "", nil, false
	}
	return t, st, parseParams(rest), true
}

func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var b strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// parseParams parses "; name=value" parameters leniently: names are
// lower-cased, quoted values unescaped, RFC 2231 continuations
// (name*0, name*1*...) joined; an extended value keeps its
// charset'language' prefix under the name "name*", as Dovecot returns it.
func parseParams(s string) [][2]string {
	type seg struct {
		idx   int
		ext   bool
		value string
	}
	var out [][2]string
	conts := map[string][]seg{}
	var contOrder []string
	for i := 0; i < len(s) && len(out) < 200; {
		for i < len(s) && (s[i] == ';' || s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
			i++
		}
		if i >= len(s) {
			break
		}
		j := i
		for j < len(s) && s[j] != '=' && s[j] != ';' {
			j++
		}
		name := strings.ToLower(strings.TrimSpace(s[i:j]))
		if j >= len(s) || s[j] == ';' {
			i = j
			continue
		}
		j++ // '='
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		var value string
		if j < len(s) && s[j] == '"' {
			var b strings.Builder
			j++
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
				j++
			}
			if j < len(s) {
				j++
			}
			value = b.String()
			for j < len(s) && s[j] != ';' { // junk after the quote
				j++
			}
		} else {
			k := j
			for k < len(s) && s[k] != ';' {
				k++
			}
			value = strings.TrimSpace(s[j:k])
			j = k
		}
		i = j
		if name == "" {
			continue
		}
		if base, suffix, ok := strings.Cut(name, "*"); ok && suffix != "" {
			ext := strings.HasSuffix(suffix, "*")
			if n, err := strconv.Atoi(strings.TrimSuffix(suffix, "*")); err == nil && n >= 0 && n < 1000 {
				if _, seen := conts[base]; !seen {
					contOrder = append(contOrder, base)
					out = append(out, [2]string{"\x00" + base, ""}) // placeholder
				}
				conts[base] = append(conts[base], seg{n, ext, value})
				continue
			}
		}
		out = append(out, [2]string{name, value})
	}
	for _, base := range contOrder {
		segs := conts[base]
		sort.SliceStable(segs, func(a, b int) bool { return segs[a].idx < segs[b].idx })
		var b strings.Builder
		for _, sg := range segs {
			b.WriteString(sg.value)
		}
		name := base
		if segs[0].ext {
			name += "*"
		}
		for i := range out {
			if out[i][0] == "\x00"+base {
				out[i] = [2]string{name, b.String()}
			}
		}
	}
	return out
}

func paramIndex(params [][2]string, name string) int {
	for i, p := range params {
		if p[0] == name {
			return i
		}
	}
	return -1
}

// paramValue returns parameter name decoded: a plain value as it is, an
// RFC 2231 extended one (name*) percent-decoded and converted to UTF-8.
func paramValue(params [][2]string, name string) string {
	if i := paramIndex(params, name); i >= 0 {
		return params[i][1]
	}
	if i := paramIndex(params, name+"*"); i >= 0 {
		v := params[i][1]
		parts := strings.SplitN(v, "'", 3)
		cs := ""
		if len(parts) == 3 {
			cs, v = parts[0], parts[2]
		}
		b := make([]byte, 0, len(v))
		for k := 0; k < len(v); k++ {
			if v[k] == '%' && k+2 < len(v) && isHex(v[k+1]) && isHex(v[k+2]) {
				b = append(b, unhex(v[k+1])<<4|unhex(v[k+2]))
				k += 2
			} else {
				b = append(b, v[k])
			}
		}
		s, _ := toUTF8(b, cs)
		return s
	}
	return ""
}
