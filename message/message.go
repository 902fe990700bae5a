package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/mail"
	"strings"
	"time"
)

// Parsed is what the archive knows about one message after parsing it once
// at import: the fields the index stores, the IMAP ENVELOPE and
// BODYSTRUCTURE, the full text, and the content identity used for dedup.
type Parsed struct {
	MessageID   string   // first Message-ID, without <>, trimmed; generated when absent
	GeneratedID bool     // MessageID was generated (see Parse)
	MessageIDs  []string // all ids from Message-ID headers, without <>
	InReplyTo   []string // ids from In-Reply-To, without <>
	References  []string // ids from References, in order, without <>
	Subject     string   // RFC 2047-decoded to UTF-8, unfolded, one line, trimmed
	From        Address  // first From address (decoded display name); falls back to Sender
	Date        time.Time
	ListID      string // List-Id value inside <>, lower-case, if any

	// ThreadRefs are the ids public-inbox threads the message by (MID.pm
	// references): the <...> tokens of References then In-Reply-To, each
	// once, cleaned as MessageIDs are, without "y", "n" and the addresses
	// of To, From and Cc ("In-Reply-To: <joe@example.org>'s message").
	ThreadRefs []string

	Envelope Envelope      // IMAP ENVELOPE (RFC 3501 section 7.4.2)
	Body     BodyStructure // IMAP BODYSTRUCTURE, extended form (RFC 3501 section 7.4.2)

	// Text is the decoded text of the text/* parts (transfer encoding and
	// charset decoded to UTF-8, also inside message/rfc822 parts), parts
	// joined with "\n"; HTML has its tags removed.
	Text string
	// HeaderText is the header block unfolded and RFC 2047-decoded, one
	// "Name: value" line per field, for SEARCH HEADER and TEXT.
	HeaderText string

	ContentHash [32]byte // public-inbox-compatible content identity (see contentHash)
	Size        int      // len(raw)
	// CRLFSize is the size with every line ending in CRLF, which is what
	// IMAP transfers: the RFC822.SIZE to report (RFC 3501 section 7.4.2).
	CRLFSize int
	Problems []string // what was odd, e.g. "no Message-ID", "bad Date"
}

// generatedIDDomain is the right-hand side of generated Message-IDs.
const generatedIDDomain = "mailswarm.invalid"

// maxMIDSize is the longest Message-ID public-inbox keeps (MID.pm
// MAX_MID_SIZE, a Xapian term limit); longer ones are truncated as there.
const maxMIDSize = 244

// Parse parses a message. It never fails: broken mail is parsed as far as
// it goes and Problems says what was odd. CRLF and LF line endings give
// identical fields (other than Size). A message without a Message-ID gets
// the deterministic id "<first 32 hex digits of sha256(raw)>@mailswarm.invalid",
// raw taken with CRLF turned into LF.
func Parse(raw []byte) *Parsed {
	p := &Parsed{Size: len(raw), CRLFSize: crlfLen(raw)}
	var pr problems
	hdr, body, _ := splitMessage(raw, &pr)

	for _, v := range hdr.all("Message-ID") {
		p.MessageIDs = appendUniq(p.MessageIDs, extractIDs(v, true)...)
	}
	if len(p.MessageIDs) > 0 {
		p.MessageID = p.MessageIDs[0]
	} else {
		// hashed with LF line endings so CRLF and LF copies agree
		sum := sha256.Sum256(crlfToLF(raw))
		p.MessageID = hex.EncodeToString(sum[:16]) + "@" + generatedIDDomain
		p.GeneratedID = true
		pr.add("no Message-ID")
	}
	for _, v := range hdr.all("In-Reply-To") {
		p.InReplyTo = appendUniq(p.InReplyTo, extractIDs(v, false)...)
	}
	for _, v := range hdr.all("References") {
		p.References = appendUniq(p.References, extractIDs(v, false)...)
	}
	p.ThreadRefs = piReferences(hdr)
	if v, ok := hdr.first("Subject"); ok {
		p.Subject = oneLine(decodeWords(unfoldPI(v)))
	}
	p.From = firstAddress(hdr, "From")
	if p.From.Mailbox == "" && p.From.Host == "" {
		p.From = firstAddress(hdr, "Sender")
	}
	if p.From.Mailbox == "" && p.From.Host == "" {
		pr.add("no From")
	}
	if v, ok := hdr.first("Date"); ok {
		if t, ok := parseDate(unfoldPI(v)); ok {
			p.Date = t
		} else {
			pr.add("bad Date")
		}
	} else {
		pr.add("no Date")
	}
	if v, ok := hdr.first("List-Id"); ok {
		p.ListID = parseListID(unfoldPI(v))
	}
	p.Envelope = parseEnvelope(hdr)
	p.HeaderText = headerText(hdr)

	root := parsePart(hdr, body, 0, false, &pr)
	p.Body = root.bs
	p.Text = partsText(root)
	p.ContentHash = contentHash(hdr, root)
	p.Problems = pr.list
	return p
}

// problems collects distinct problem strings.
type problems struct{ list []string }

func (pr *problems) add(s string) {
	for _, x := range pr.list {
		if x == s {
			return
		}
	}
	if len(pr.list) < 32 {
		pr.list = append(pr.list, s)
	}
}

// field is one header field: its name as written and its value as
// written (after the colon, folding line breaks included, final line
// break excluded).
type field struct {
	name  string
	value []byte
}

// header is a header block in order.
type header []field

// all returns the values of the fields called name, in order.
func (h header) all(name string) [][]byte {
	var out [][]byte
	for i := range h {
		if strings.EqualFold(h[i].name, name) {
			out = append(out, h[i].value)
		}
	}
	return out
}

// first returns the value of the first field called name.
func (h header) first(name string) ([]byte, bool) {
	for i := range h {
		if strings.EqualFold(h[i].name, name) {
			return h[i].value, true
		}
	}
	return nil, false
}

// last returns the value of the last field called name.
func (h header) last(name string) ([]byte, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		if strings.EqualFold(h[i].name, name) {
			return h[i].value, true
		}
	}
	return nil, false
}

// splitMessage splits raw into its header fields and body. The header ends
// at the first empty line; without one the whole input is header and
// hasBody is false. Lines that are neither a field nor a continuation are
// skipped (and reported).
func splitMessage(raw []byte, pr *problems) (h header, body []byte, hasBody bool) {
	i, lastOK := 0, false
	for i < len(raw) {
		j := bytes.IndexByte(raw[i:], '\n')
		end, next := len(raw), len(raw)
		if j >= 0 {
			end, next = i+j, i+j+1
		}
		line := raw[i:end]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			if j < 0 {
				// a lone trailing CR: no body follows
				return h, nil, false
			}
			return h, raw[next:], true
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(h) > 0 && lastOK {
				f := &h[len(h)-1]
				start := len(raw) - cap(f.value) // offset of the value in raw
				f.value = raw[start : i+len(line) : len(raw)]
			} else if len(h) == 0 {
				pr.add("header starts with a continuation line")
			}
		} else if name, ok := fieldName(line); ok {
			start := i + len(name)
			// skip the colon (and blanks before it, obsolete syntax)
			for start < len(raw) && raw[start] != ':' {
				start++
			}
			start++
			h = append(h, field{name: string(name), value: raw[start : i+len(line) : len(raw)]})
			lastOK = true
			// keep cap pointing at the end of raw so continuation lines
			// can find the value's offset
		} else {
			pr.add("malformed header line")
			lastOK = false // its continuation lines go with it
		}
		i = next
	}
	return h, nil, false
}

// fieldName returns the field name of a header line "Name: value",
// allowing blanks before the colon (RFC 5322 section 4.5.3 obs-optional).
func fieldName(line []byte) ([]byte, bool) {
	c := bytes.IndexByte(line, ':')
	if c <= 0 {
		return nil, false
	}
	name := bytes.TrimRight(line[:c], " \t")
	if len(name) == 0 {
		return nil, false
	}
	for _, b := range name {
		if b <= ' ' || b >= 0x7f {
			return nil, false
		}
	}
	return name, true
}

// unfold removes the line breaks of a folded value, keeping the blanks
// that follow them (RFC 5322 section 2.2.3), and trims it: what Dovecot
// returns in ENVELOPE.
func unfold(v []byte) string {
	if bytes.IndexAny(v, "\r\n") < 0 {
		return string(bytes.Trim(v, " \t"))
	}
	b := make([]byte, 0, len(v))
	for _, c := range v {
		if c != '\r' && c != '\n' {
			b = append(b, c)
		}
	}
	return string(bytes.Trim(b, " \t"))
}

// unfoldPI unfolds like public-inbox's Eml::header_raw: each line break and
// the blanks after it become one space; the value is trimmed.
func unfoldPI(v []byte) string {
	if bytes.IndexAny(v, "\r\n") < 0 {
		return string(bytes.TrimSpace(v))
	}
	b := make([]byte, 0, len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' && i+1 < len(v) && v[i+1] == '\n' {
			continue
		}
		if c == '\n' {
			for i+1 < len(v) && (v[i+1] == ' ' || v[i+1] == '\t') {
				i++
			}
			b = append(b, ' ')
			continue
		}
		b = append(b, c)
	}
	return string(bytes.TrimSpace(b))
}

// oneLine replaces control characters with spaces and trims.
func oneLine(s string) string {
	if strings.IndexFunc(s, isCtl) < 0 {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(strings.Map(func(r rune) rune {
		if isCtl(r) {
			return ' '
		}
		return r
	}, s))
}

func isCtl(r rune) bool { return r < ' ' || r == 0x7f }

// extractIDs returns the <...> tokens of a Message-ID-like header value,
// without the brackets, as public-inbox's MID.pm does (tabs and line
// breaks removed, truncated to 244 bytes). When there is no <...> and
// whole is true the whole value is the id (public-inbox extract_mids);
// otherwise a single bare token with an @ is taken.
func extractIDs(v []byte, whole bool) []string {
	if ids := bracketed(unfoldPI(v)); ids != nil {
		for i, id := range ids {
			ids[i] = cleanID(id)
		}
		return ids
	}
	s := strings.TrimSpace(unfoldPI(v))
	if s == "" {
		return nil
	}
	if whole {
		return []string{cleanID(s)}
	}
	if !strings.ContainsAny(s, " \t") && strings.Contains(s, "@") {
		return []string{cleanID(s)}
	}
	return nil
}

// bracketed returns the non-empty <...> tokens of s, without the
// brackets, as they stand; nil when there are none.
func bracketed(s string) []string {
	var ids []string
	for {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			return ids
		}
		j := strings.IndexByte(s[i+1:], '>')
		if j < 0 {
			return ids
		}
		if j > 0 {
			ids = append(ids, s[i+1:i+1+j])
		}
		s = s[i+1+j+1:]
	}
}

func cleanID(s string) string {
	if strings.ContainsAny(s, "\t\r\n") {
		s = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\r' || r == '\n' {
				return -1
			}
			return r
		}, s)
	}
	if len(s) > maxMIDSize {
		s = s[:maxMIDSize]
	}
	return s
}

// appendUniq appends the ids not already in list.
func appendUniq(list []string, ids ...string) []string {
	if len(list)+len(ids) > 16 {
		seen := make(map[string]bool, len(list)+len(ids))
		for _, x := range list {
			seen[x] = true
		}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				list = append(list, id)
			}
		}
		return list
	}
next:
	for _, id := range ids {
		for _, x := range list {
			if x == id {
				continue next
			}
		}
		list = append(list, id)
	}
	return list
}

// parseListID returns the lower-cased list-id inside <> (RFC 2919), or
// the bare value when it is a single token.
func parseListID(s string) string {
	if i := strings.LastIndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			return strings.ToLower(strings.TrimSpace(s[i+1 : i+j]))
		}
	}
	if s != "" && !strings.ContainsAny(s, " \t<>") {
		return strings.ToLower(s)
	}
	return ""
}

// dateLayouts are tried, in order, after net/mail.ParseDate fails.
var dateLayouts = []string{
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04 -0700",
	"2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 MST",
	"2 Jan 2006 15:04 -0700",
	"Mon, 2 Jan 06 15:04:05 -0700",
	"Mon, 2 Jan 06 15:04:05 MST",
	"2 Jan 06 15:04:05 -0700",
	"2 Jan 06 15:04:05 MST",
	"Mon, 2 Jan 2006 15:04:05",
	"2 Jan 2006 15:04:05",
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Mon, Jan 2 2006 15:04:05 -0700",
	"Mon, 2 Jan 2006 15:04:05 -0700 MST",
	"2006-01-02 15:04:05 -0700",
	"2006-01-02T15:04:05Z07:00",
}

// parseDate parses a Date header leniently (RFC 5322 section 3.3 and the
// obsolete and broken forms seen in archives), keeping the sender's zone.
func parseDate(s string) (time.Time, bool) {
	if t, err := mail.ParseDate(s); err == nil {
		return t, true
	}
	// drop comments, collapse blanks, drop a trailing zone name after an offset
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '(':
			depth++
		case r == ')' && depth > 0:
			depth--
		case depth > 0:
		default:
			b.WriteRune(r)
		}
	}
	fields := strings.Fields(strings.ReplaceAll(b.String(), ",", ", "))
	c := strings.Join(fields, " ")
	c = strings.ReplaceAll(c, " ,", ",")
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, c); err == nil {
			return fixYear(t), true
		}
	}
	if len(fields) > 1 {
		// "... +0000 GMT" or an unknown zone name: retry without the last word
		c2 := strings.Join(fields[:len(fields)-1], " ")
		c2 = strings.ReplaceAll(c2, " ,", ",")
		for _, l := range dateLayouts {
			if t, err := time.Parse(l, c2); err == nil {
				return fixYear(t), true
			}
		}
	}
	return time.Time{}, false
}

// fixYear maps two-digit years as RFC 5322 section 4.3 says.
func fixYear(t time.Time) time.Time {
	if y := t.Year(); y < 100 {
		if y < 50 {
			return t.AddDate(2000, 0, 0)
		}
		return t.AddDate(1900, 0, 0)
	}
	return t
}

// headerText renders the header block unfolded and decoded, one field a line.
func headerText(h header) string {
	var b strings.Builder
	for _, f := range h {
		b.WriteString(f.name)
		b.WriteString(": ")
		b.WriteString(oneLine(decodeWords(unfoldPI(f.value))))
		b.WriteByte('\n')
	}
	return b.String()
}

// crlfLen is the length of b with every bare LF counted as CRLF.
func crlfLen(b []byte) int {
	n := len(b)
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return n
		}
		if i+j == 0 || b[i+j-1] != '\r' {
			n++
		}
		i += j + 1
	}
}

// countLines counts the line feeds of b: a last line without one does not
// count (Dovecot's body_size.lines, which IMAP sends).
func countLines(b []byte) int64 {
	return int64(bytes.Count(b, []byte{'\n'}))
}
