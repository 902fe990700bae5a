package message

import (
	"crypto/sha256"
	"hash"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// contentHash is the message's content identity for deduplication: two
// messages with the same Message-ID are the same message when their
// content hashes are equal. It ports public-inbox 1.9's
// PublicInbox::ContentHash::content_digest (lib/PublicInbox/ContentHash.pm,
// with MID.pm, MsgIter.pm and Eml.pm), SHA-256 over, in order:
//
//  1. "ref\0<id>\0" for each id of References then In-Reply-To (the <...>
//     tokens, each once, tabs/line breaks removed, cut at 244 bytes), except
//     ids that are also a Message-ID, the strings "y" and "n", and the
//     addresses of To, From and Cc (MID.pm references). Message-ID itself
//     is not hashed: a duplicate has the same one by definition.
//  2. "From\0<v>\0" for each From header, or each Sender header when there
//     is no From; then "Subject\0<v>\0" and "Date\0<v>\0" for each of those;
//     then "To\0<v>\0" and "Cc\0<v>\0". Values are unfolded; Subject and
//     the address headers RFC 2047-decoded; in address headers double
//     quotes are removed, runs of blanks squeezed to one space and a
//     domain holding an upper-case letter lower-cased (digest_addr).
//  3. For each leaf MIME part in public-inbox's order (Eml.pm each_part:
//     whitespace-only parts skipped; message/rfc822 and multiparts inside
//     attached messages also visited): "\0<depth>:<index>\0", "fn\0<name>\0"
//     when the part has a file name, "d\0<v>\0" per Content-Description,
//     "b\0", then the body: for text (not HTML) parts the decoded text with
//     CRLF turned into LF and trailing whitespace removed; for other parts
//     the transfer-decoded bytes (msg_part_text, content_dig_i).
//
// Deliberate difference: public-inbox hashes non-text bodies byte for
// byte, so one stored with CRLF and one with LF differ; here CRLF becomes
// LF in non-base64 bodies as well, so line endings never matter.
func contentHash(h header, root *mimeNode) [32]byte {
	d := sha256.New()
	mids := map[string]bool{}
	for _, v := range h.all("Message-ID") {
		for _, id := range extractIDs(v, true) {
			mids[id] = true
		}
	}
	for _, id := range piReferences(h) {
		if !mids[id] {
			mids[id] = true
			writeAll(d, "ref\x00", id, "\x00")
		}
	}
	for _, name := range []string{"From", "Sender"} {
		vs := h.all(name)
		if len(vs) == 0 {
			continue
		}
		for _, v := range vs {
			digestAddr(d, name, v)
		}
		break
	}
	for _, v := range h.all("Subject") {
		writeAll(d, "Subject\x00", decodeWords(unfoldPI(v)), "\x00")
	}
	for _, v := range h.all("Date") {
		writeAll(d, "Date\x00", rawText(unfoldPI(v)), "\x00")
	}
	for _, name := range []string{"To", "Cc"} {
		for _, v := range h.all(name) {
			digestAddr(d, name, v)
		}
	}
	hashParts(d, root)
	var sum [32]byte
	d.Sum(sum[:0])
	return sum
}

func writeAll(d hash.Hash, parts ...string) {
	for _, p := range parts {
		d.Write([]byte(p))
	}
}

// piReferences returns the ids of References then In-Reply-To as
// public-inbox's MID.pm references() does.
func piReferences(h header) []string {
	var ids []string
	for _, name := range []string{"References", "In-Reply-To"} {
		for _, v := range h.all(name) {
			ids = append(ids, bracketed(unfoldPI(v))...)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	seen := map[string]bool{"y": true, "n": true}
	for _, name := range []string{"To", "From", "Cc"} {
		for _, v := range h.all(name) {
			for _, a := range publicInboxAddresses(unfoldPI(v)) {
				if a.Host != "" && !a.GroupStart {
					seen[a.Mailbox+"@"+a.Host] = true
				}
			}
		}
	}
	var out []string
	for _, id := range ids {
		id = cleanID(id)
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// digestAddr hashes an address header as ContentHash.pm digest_addr does.
func digestAddr(d hash.Hash, name string, v []byte) {
	s := unfoldPI(v)
	if strings.Contains(s, "=?") {
		s = decodeWords(s)
	} else {
		s = rawText(s)
	}
	s = strings.ReplaceAll(s, `"`, "")
	// tr/\r\n\t / /s: blanks to one space
	var b strings.Builder
	blank := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' || c == '\t' || c == ' ' {
			if !blank {
				b.WriteByte(' ')
			}
			blank = true
			continue
		}
		blank = false
		b.WriteByte(c)
	}
	writeAll(d, name, "\x00", lowerDomains(b.String()), "\x00")
}

// lowerDomains lower-cases "@domain" runs holding an upper-case letter:
// s/@([a-z0-9\_\.\-\(\)]*([A-Z])\S*)/'@'.lc($1)/ge
func lowerDomains(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '@' {
			b.WriteByte(c)
			i++
			continue
		}
		b.WriteByte('@')
		i++
		j := i
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= '0' && s[j] <= '9' || strings.IndexByte("_.-()", s[j]) >= 0) {
			j++
		}
		if j < len(s) && s[j] >= 'A' && s[j] <= 'Z' {
			k := j
			for k < len(s) && s[k] != ' ' && s[k] != '\t' && s[k] != '\r' && s[k] != '\n' && s[k] != '\f' {
				k++
			}
			b.WriteString(strings.ToLower(s[i:k]))
			i = k
		}
	}
	return b.String()
}

// hashParts walks the MIME tree as public-inbox's Eml.pm each_part does
// and hashes each visited part (content_dig_i).
func hashParts(d hash.Hash, root *mimeNode) {
	kids := piChildren(root)
	if kids == nil {
		hashPart(d, root, 0, "1", true)
		return
	}
	if root.msg != nil {
		hashPart(d, root, 0, "0", false) // a message that is message/rfc822
	}
	nr := 0
	var walk func(parts []*mimeNode, prefix string, depth int)
	walk = func(parts []*mimeNode, prefix string, depth int) {
		for i, p := range parts {
			if nr++; nr > 1000 {
				return
			}
			idx := strconv.Itoa(i + 1)
			if prefix != "" {
				idx = prefix + "." + idx
			}
			sub := piChildren(p)
			if depth < 20 && sub != nil {
				if p.msg != nil {
					hashPart(d, p, depth, idx, true)
				} else if p.submsg {
					// multipart inside an attached message: visited, its
					// body already consumed by the descent (empty)
					hashPart(d, p, depth, idx, false)
				}
				walk(sub, idx, depth+1)
			} else {
				hashPart(d, p, depth, idx, true)
			}
		}
	}
	walk(kids, "", 1)
}

// piChildren returns the parts public-inbox descends into: an attached
// message, or the non-blank parts of a multipart; nil for a leaf.
func piChildren(n *mimeNode) []*mimeNode {
	if n.msg != nil {
		return []*mimeNode{n.msg}
	}
	var out []*mimeNode
	for _, c := range n.children {
		if !isBlank(c.hdr, c.body) {
			out = append(out, c)
		}
	}
	return out
}

// isBlank reports a part that is only whitespace (public-inbox drops
// those: grep /[^ \t\r\n]/s).
func isBlank(h header, body []byte) bool {
	if len(h) > 0 {
		return false
	}
	for _, c := range body {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// hashPart hashes one part; withBody false hashes an empty body.
func hashPart(d hash.Hash, n *mimeNode, depth int, idx string, withBody bool) {
	writeAll(d, "\x00", strconv.Itoa(depth), ":", idx, "\x00")
	if fn := partFilename(n); fn != "" {
		writeAll(d, "fn\x00", fn, "\x00")
	}
	for _, v := range n.hdr.all("Content-Description") {
		writeAll(d, "d\x00", decodeWords(unfoldPI(v)), "\x00")
	}
	d.Write([]byte("b\x00"))
	if !withBody {
		return
	}
	if s, ok := piPartText(n); ok {
		s = strings.TrimRightFunc(strings.ReplaceAll(s, "\r\n", "\n"), unicode.IsSpace)
		d.Write([]byte(s))
		return
	}
	b := n.decoded()
	if strings.ToLower(cteToken(n.cte)) != "base64" {
		b = crlfToLF(b)
	}
	d.Write(b)
}

// partFilename is the part's file name: Content-Disposition filename,
// else Content-Type name (Eml.pm filename).
func partFilename(n *mimeNode) string {
	fn := ""
	if v, ok := n.hdr.first("Content-Disposition"); ok {
		if _, rest, found := strings.Cut(unfoldPI(v), ";"); found {
			fn = paramValue(parseParams(rest), "filename")
		}
	}
	if fn == "" {
		fn = paramValue(n.params, "name")
	}
	if strings.Contains(fn, "=?") {
		fn = decodeWords(fn)
	}
	return rawText(fn)
}

// piPartText is MsgIter.pm msg_part_text: the part's text, or false when
// public-inbox would hash the raw bytes (HTML, binary parts).
func piPartText(n *mimeNode) (string, bool) {
	ct := "text/plain"
	if v, ok := n.hdr.first("Content-Type"); ok {
		if s := unfoldPI(v); s != "" {
			ct = s
		}
	}
	lct := strings.ToLower(ct)
	if strings.Contains(ct, "text/html") || strings.Contains(ct, "text/xhtml") {
		return "", false
	}
	cs := paramValue(n.params, "charset")
	isText := n.typ == "text"
	decoded := n.decoded
	if cs != "" || isText && (n.sub == "plain" || n.sub == "html") {
		b := decoded()
		if cs == "" {
			return latin1OrUTF8(b, false), true
		}
		if s, ok := n.charsetText(); ok {
			return s, true
		}
	}
	if strings.Contains(lct, "text/") || (!n.submsg && strings.Contains(lct, "multipart/mixed")) {
		if strings.EqualFold(cteToken(n.cte), "7bit") {
			return latin1OrUTF8(n.body, false), true
		}
		b := decoded()
		return latin1OrUTF8(b, true), true
	}
	if strings.Contains(lct, "application/octet-stream") {
		b := decoded()
		if !utf8.Valid(b) {
			return "", false
		}
		for _, r := range string(b) {
			if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
				return "", false
			}
		}
		return string(b), true
	}
	return "", false
}

// latin1OrUTF8 is how Perl hashes a string: characters when decoded
// (tryUTF8 and valid UTF-8), else bytes read as Latin-1.
func latin1OrUTF8(b []byte, tryUTF8 bool) string {
	if isASCII(b) || tryUTF8 && utf8.Valid(b) {
		return string(b)
	}
	return latin1(b)
}
