package message

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"html"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// This file turns bytes as transferred into text: RFC 2047 encoded words,
// content-transfer-encodings (RFC 2045 section 6) and charsets. Nothing
// here fails: what cannot be decoded is kept, read as Latin-1 when it is
// not UTF-8.

// maxDecodedText bounds the text kept per message for full-text search.
const maxDecodedText = 4 << 20

// toUTF8 converts b in charset cs to UTF-8. ok is false when the charset
// is unknown or b is not valid in it; the result is then b itself if it is
// valid UTF-8, else b read as Latin-1.
func toUTF8(b []byte, cs string) (s string, ok bool) {
	cs = strings.ToLower(strings.Trim(strings.TrimSpace(cs), `"'`))
	if i := strings.IndexByte(cs, '*'); i >= 0 { // RFC 2231 language suffix
		cs = cs[:i]
	}
	switch cs {
	case "", "us-ascii", "ascii", "utf-8", "utf8", "unicode-1-1-utf-8", "x-unknown", "unknown", "unknown-8bit", "default":
		if isASCII(b) || utf8.Valid(b) {
			return string(b), cs != "" && !strings.Contains(cs, "unknown") && cs != "default"
		}
		return latin1(b), false
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1", "iso_8859-1", "cp819":
		if isASCII(b) {
			return string(b), true
		}
		return latin1(b), true
	}
	if isASCII(b) && !strings.HasPrefix(cs, "utf-16") && !strings.HasPrefix(cs, "utf-32") &&
		!strings.HasPrefix(cs, "utf-7") && !strings.HasPrefix(cs, "iso-2022") && !strings.HasPrefix(cs, "hz") {
		return string(b), true
	}
	r, err := safeCharsetReader(cs, b)
	if err == nil {
		out, err := io.ReadAll(r)
		if err == nil && utf8.Valid(out) {
			return string(out), true
		}
	}
	if utf8.Valid(b) {
		return string(b), false
	}
	return latin1(b), false
}

// safeCharsetReader wraps go-message's charset lookup so that a panic in
// a decoder cannot escape.
func safeCharsetReader(cs string, b []byte) (r io.Reader, err error) {
	defer func() {
		if recover() != nil {
			r, err = nil, io.ErrUnexpectedEOF
		}
	}()
	return charset.Reader(cs, bytes.NewReader(b))
}

func isASCII(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// latin1 reads b as ISO-8859-1.
func latin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// rawText is header text outside encoded words: UTF-8 if it is, else Latin-1.
func rawText(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return latin1([]byte(s))
}

// decodeWords decodes the RFC 2047 encoded words in s. Adjacent encoded
// words are joined without the blanks between them (RFC 2047 section 6.2),
// and their bytes are joined before charset conversion, so a character
// split across two words survives. Malformed words are left as they are.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return rawText(s)
	}
	var out strings.Builder
	var pend []byte // decoded bytes of adjacent words in pendCS
	pendCS := ""
	flush := func() {
		if pend != nil {
			t, _ := toUTF8(pend, pendCS)
			out.WriteString(t)
			pend = nil
		}
	}
	gap := "" // blanks after the last encoded word, written if text follows
	for len(s) > 0 {
		i := strings.Index(s, "=?")
		if i < 0 {
			break
		}
		cs, enc, text, n, ok := encodedWord(s[i:])
		if !ok {
			flush()
			out.WriteString(gap)
			gap = ""
			out.WriteString(rawText(s[:i+2]))
			s = s[i+2:]
			continue
		}
		between := s[:i]
		if pend != nil && strings.Trim(between, " \t\r\n") == "" && strings.EqualFold(cs, pendCS) {
			// adjacent word in the same charset: keep joining bytes
		} else {
			if pend != nil && strings.Trim(between, " \t\r\n") == "" {
				flush()
			} else {
				flush()
				out.WriteString(gap)
				out.WriteString(rawText(between))
			}
			pendCS = cs
			pend = []byte{}
		}
		gap = ""
		pend = append(pend, decodeWordText(enc, text)...)
		s = s[i+n:]
		// remember blanks after this word: dropped if another word follows
		j := 0
		for j < len(s) && (s[j] == ' ' || s[j] == '\t' || s[j] == '\r' || s[j] == '\n') {
			j++
		}
		gap, s = s[:j], s[j:]
	}
	flush()
	out.WriteString(gap)
	out.WriteString(rawText(s))
	return out.String()
}

// encodedWord parses "=?charset?enc?text?=" at the start of s and returns
// its parts and length.
func encodedWord(s string) (cs string, enc byte, text string, n int, ok bool) {
	if !strings.HasPrefix(s, "=?") {
		return
	}
	q1 := strings.IndexByte(s[2:], '?')
	if q1 <= 0 || q1 > 75 {
		return
	}
	cs = s[2 : 2+q1]
	rest := s[2+q1+1:]
	if len(rest) < 3 || rest[1] != '?' {
		return
	}
	switch rest[0] {
	case 'b', 'B':
		enc = 'b'
	case 'q', 'Q':
		enc = 'q'
	default:
		return
	}
	rest = rest[2:]
	end := strings.Index(rest, "?=")
	if end < 0 || end > 2000 {
		return
	}
	text = rest[:end]
	if strings.ContainsAny(text, "\r\n") {
		return
	}
	return cs, enc, text, 2 + q1 + 1 + 2 + end + 2, true
}

func decodeWordText(enc byte, text string) []byte {
	if enc == 'b' {
		return decodeBase64([]byte(text))
	}
	b := make([]byte, 0, len(text))
	for i := 0; i < len(text); i++ {
		c := text[i]
		switch {
		case c == '_':
			b = append(b, ' ')
		case c == '=' && i+2 < len(text) && isHex(text[i+1]) && isHex(text[i+2]):
			b = append(b, unhex(text[i+1])<<4|unhex(text[i+2]))
			i += 2
		default:
			b = append(b, c)
		}
	}
	return b
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// decodeBase64 decodes base64 leniently: characters outside the alphabet
// are skipped, decoding stops at padding, a dangling character is dropped.
func decodeBase64(in []byte) []byte {
	clean := make([]byte, 0, len(in))
	for _, c := range in {
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
			clean = append(clean, c)
		case c == '=':
			goto done
		}
	}
done:
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1]
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, _ := base64.RawStdEncoding.Decode(out, clean)
	return out[:n]
}

// decodeQP decodes quoted-printable leniently (RFC 2045 section 6.7):
// soft line breaks are removed, "=XX" becomes a byte, any other "=" stays.
func decodeQP(in []byte) []byte {
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); i++ {
		c := in[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		switch {
		case i+2 < len(in) && isHex(in[i+1]) && isHex(in[i+2]):
			out = append(out, unhex(in[i+1])<<4|unhex(in[i+2]))
			i += 2
		case i+1 < len(in) && in[i+1] == '\n':
			i++
		case i+2 < len(in) && in[i+1] == '\r' && in[i+2] == '\n':
			i += 2
		default:
			// "=" followed by blanks then a line break is a soft break too
			j := i + 1
			for j < len(in) && (in[j] == ' ' || in[j] == '\t') {
				j++
			}
			if j > i+1 && j < len(in) && (in[j] == '\n' || in[j] == '\r') {
				if in[j] == '\r' && j+1 < len(in) && in[j+1] == '\n' {
					j++
				}
				i = j
				continue
			}
			if i == len(in)-1 {
				continue // "=" at the very end: a soft break without newline
			}
			out = append(out, c)
		}
	}
	return out
}

// transferDecode undoes a content-transfer-encoding; unknown encodings
// (7bit, 8bit, binary, x-uuencode...) are returned as they are.
func transferDecode(body []byte, cte string) []byte {
	switch strings.ToLower(cteToken(cte)) {
	case "base64":
		return decodeBase64(body)
	case "quoted-printable", "quotedprint", "qp":
		return decodeQP(body)
	}
	return body
}

// cteToken is the first token of a Content-Transfer-Encoding value, as
// public-inbox's Eml::body takes it.
func cteToken(v string) string {
	v = strings.TrimSpace(v)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return v[:i]
		}
	}
	return v
}

// crlfToLF replaces CRLF line endings with LF.
func crlfToLF(b []byte) []byte {
	if bytes.IndexByte(b, '\r') < 0 {
		return b
	}
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}

// decoded returns the part's body with its transfer encoding undone.
func (n *mimeNode) decoded() []byte {
	if n.dec == nil {
		n.dec = transferDecode(n.body, n.cte)
		if n.dec == nil {
			n.dec = []byte{}
		}
	}
	return n.dec
}

// charsetText returns the decoded body converted from its declared
// charset to UTF-8, and whether that conversion was clean.
func (n *mimeNode) charsetText() (string, bool) {
	if !n.haveText {
		n.text, n.textOK = toUTF8(n.decoded(), paramValue(n.params, "charset"))
		n.haveText = true
	}
	return n.text, n.textOK
}

// partText decodes a text part's body to UTF-8 with LF line endings.
func partText(n *mimeNode) string {
	s, _ := n.charsetText()
	s = strings.ReplaceAll(s, "\r\n", "\n")
	if n.sub == "html" {
		s = htmlToText(s)
	}
	return s
}

// partsText joins the decoded text of the text/* leaves of the tree,
// descending into attached messages.
func partsText(root *mimeNode) string {
	var b strings.Builder
	var walk func(n *mimeNode)
	walk = func(n *mimeNode) {
		if b.Len() >= maxDecodedText {
			return
		}
		switch {
		case n.msg != nil:
			walk(n.msg)
		case len(n.children) > 0:
			for _, c := range n.children {
				walk(c)
			}
		case n.typ == "text" || n.typ == "":
			t := strings.TrimRight(partText(n), " \t\r\n")
			if t == "" {
				return
			}
			if b.Len() > 0 {
				b.WriteByte('\n')
			}
			b.WriteString(t)
		}
	}
	walk(root)
	s := b.String()
	if len(s) > maxDecodedText {
		s = strings.ToValidUTF8(s[:maxDecodedText], "")
	}
	return s
}

// htmlToText drops tags, comments, scripts and styles and unescapes
// entities: enough for substring search, not a renderer.
func htmlToText(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		if strings.HasPrefix(s, "<!--") {
			if j := strings.Index(s, "-->"); j >= 0 {
				s = s[j+3:]
			} else {
				s = ""
			}
			continue
		}
		j := strings.IndexByte(s, '>')
		if j < 0 {
			s = ""
			break
		}
		tag := strings.ToLower(s[1:j])
		s = s[j+1:]
		for _, skip := range []string{"script", "style"} {
			if strings.HasPrefix(tag, skip) {
				if k := strings.Index(strings.ToLower(s), "</"+skip); k >= 0 {
					s = s[k:]
				} else {
					s = ""
				}
			}
		}
		if strings.HasPrefix(tag, "br") || strings.HasPrefix(tag, "p") || strings.HasPrefix(tag, "/p") ||
			strings.HasPrefix(tag, "div") || strings.HasPrefix(tag, "/div") || strings.HasPrefix(tag, "tr") {
			b.WriteByte('\n')
		}
	}
	return html.UnescapeString(b.String())
}
