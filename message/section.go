package message

import (
	"bytes"
	"errors"
	"strings"
)

// Section names a part of a message the way IMAP FETCH BODY[...] does
// (RFC 3501 section 6.4.5): Part is the dotted part number (empty for the
// whole message), Specifier one of "", "HEADER", "TEXT", "MIME", and
// Fields the field names of HEADER.FIELDS (Not: HEADER.FIELDS.NOT).
type Section struct {
	Part      []int
	Specifier string
	Fields    []string
	Not       bool
}

// ErrNoSection is returned for a section the message does not have.
var ErrNoSection = errors.New("message: no such section")

// ErrUnknownCTE is returned by BinarySection for a part whose
// Content-Transfer-Encoding cannot be undone (RFC 3516 UNKNOWN-CTE).
var ErrUnknownCTE = errors.New("message: unknown content-transfer-encoding")

// mpart is one node on the way down a section path: its header (as
// parsed and as raw bytes, blank line included) and its body.
type mpart struct {
	hdr      header
	hdrRaw   []byte
	body     []byte
	typ, sub string
	params   [][2]string
	cte      string
}

// openPart splits raw into header and body and reads its Content-Type,
// with the defaults and fallbacks BodyStructure uses, so part numbers
// always agree with the BODYSTRUCTURE the index holds.
func openPart(raw []byte, digest bool) *mpart {
	var pr problems
	h, body, hasBody := splitMessage(raw, &pr)
	p := &mpart{hdr: h, body: body, hdrRaw: raw}
	if hasBody {
		p.hdrRaw = raw[:len(raw)-len(body)]
	}
	if v, ok := h.first("Content-Type"); ok {
		if typ, sub, params, ok := parseContentType(unfoldPI(v)); ok {
			p.typ, p.sub, p.params = strings.ToLower(typ), strings.ToLower(sub), params
		}
	}
	if p.typ == "" {
		p.typ, p.sub = "text", "plain"
		if digest {
			p.typ, p.sub = "message", "rfc822"
		}
	}
	if v, ok := h.first("Content-Transfer-Encoding"); ok {
		p.cte = strings.ToLower(cteToken(unfold(v)))
	}
	if p.typ == "multipart" && paramValue(p.params, "boundary") == "" {
		p.typ, p.sub = "text", "plain" // as BodyStructure reads it
	}
	return p
}

// encapsulates reports whether p's body is a message of its own that part
// numbers descend into (as BodyStructure: not when transfer-encoded).
func (p *mpart) encapsulates() bool {
	return p.typ == "message" && isMessageSubtype(p.sub) && p.cte != "base64" && p.cte != "quoted-printable"
}

// children returns the parts of a multipart (one empty part when the
// boundary never occurs, as BodyStructure has it).
func (p *mpart) children() [][]byte {
	kids := splitMultipart(p.body, paramValue(p.params, "boundary"))
	if len(kids) == 0 {
		kids = [][]byte{nil}
	}
	return kids
}

// locate walks path from the message raw. It returns the part the path
// names and, when that part is a whole message (the top, or an
// encapsulated one), that message.
func locate(raw []byte, path []int) (part, msg *mpart, err error) {
	msg = openPart(raw, false)
	part = msg
	depth := 0
	for i, n := range path {
		if n < 1 || depth > maxMIMEDepth {
			return nil, nil, ErrNoSection
		}
		depth++
		switch {
		case part.typ == "multipart":
			kids := part.children()
			if n > len(kids) {
				return nil, nil, ErrNoSection
			}
			part = openPart(kids[n-1], part.sub == "digest")
			msg = nil
		case msg != nil && n == 1:
			// a non-multipart message has exactly part 1: its body,
			// with the message header as its MIME header
			msg = nil
		default:
			return nil, nil, ErrNoSection
		}
		if i < len(path)-1 && part.encapsulates() && part.typ != "multipart" {
			// the next number counts inside the attached message
			msg = openPart(part.body, false)
			part = msg
		}
	}
	if len(path) > 0 && part.encapsulates() {
		msg = openPart(part.body, false)
	}
	return part, msg, nil
}

// ExtractSection returns the bytes of section s of raw, in raw's own line
// endings (IMAP output must then turn bare LF into CRLF). A section the
// message lacks (a part number beyond its parts, HEADER of a part that is
// not a message) is ErrNoSection.
func ExtractSection(raw []byte, s Section) ([]byte, error) {
	if len(s.Part) == 0 && s.Specifier == "" {
		return raw, nil
	}
	part, msg, err := locate(raw, s.Part)
	if err != nil {
		return nil, err
	}
	switch strings.ToUpper(s.Specifier) {
	case "":
		return part.body, nil
	case "MIME":
		if len(s.Part) == 0 {
			return nil, ErrNoSection
		}
		return part.hdrRaw, nil
	case "TEXT":
		if msg == nil {
			return nil, ErrNoSection
		}
		return msg.body, nil
	case "HEADER":
		if msg == nil {
			return nil, ErrNoSection
		}
		if s.Fields == nil {
			return msg.hdrRaw, nil
		}
		return headerFields(msg.hdrRaw, s.Fields, s.Not), nil
	}
	return nil, ErrNoSection
}

// headerFields returns the fields of hdrRaw named (or, with not, not
// named) in names, continuation lines included, then an empty line.
func headerFields(hdrRaw []byte, names []string, not bool) []byte {
	return filterHeader(hdrRaw, func(name string) bool {
		for _, n := range names {
			if strings.EqualFold(n, name) {
				return !not
			}
		}
		return not
	})
}

// filterHeader returns the fields of the header block hdrRaw whose name
// keep accepts, in order, continuation lines included, each line ending
// in a line break, then an empty line.
func filterHeader(hdrRaw []byte, keep func(name string) bool) []byte {
	var out []byte
	kept := false
	for line := range bytes.Lines(hdrRaw) {
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			name, ok := fieldName(line)
			kept = ok && keep(string(name))
		}
		if kept {
			out = append(out, line...)
			if line[len(line)-1] != '\n' {
				out = append(out, '\n')
			}
		}
	}
	return append(out, '\n')
}

// BinarySection returns the body of part with its transfer encoding
// undone (IMAP BINARY, RFC 3516); decoded says whether there was one to
// undo (a multipart or a whole message comes back as it is).
func BinarySection(raw []byte, path []int) (b []byte, decoded bool, err error) {
	if len(path) == 0 {
		return raw, false, nil
	}
	part, _, err := locate(raw, path)
	if err != nil {
		return nil, false, err
	}
	switch part.cte {
	case "", "7bit", "8bit", "binary":
		return part.body, false, nil
	case "base64":
		return transferDecode(part.body, part.cte), true, nil
	case "quoted-printable":
		return decodeQP(qpLines(part.body)), true, nil
	}
	return nil, false, ErrUnknownCTE
}

// qpLines prepares quoted-printable text for BINARY: every line ends in
// CRLF (line breaks are CRLF in the canonical form, RFC 2045 section 6.7
// rule 4) and loses the white space before its line break, which a
// decoder must delete (rule 3). The search text keeps decoding without
// this, as public-inbox does for its content hash.
func qpLines(b []byte) []byte {
	out := make([]byte, 0, len(b)+len(b)/32)
	for line := range bytes.Lines(b) {
		content := bytes.TrimRight(line, "\r\n")
		broken := len(content) < len(line)
		out = append(out, bytes.TrimRight(content, " \t")...)
		if broken {
			out = append(out, '\r', '\n')
		}
	}
	return out
}

// HeaderFields returns the lines of raw's header fields whose name keep
// accepts, in order, continuation lines included, with an empty line at
// the end: a header block that ExtractSection reads as raw's own for
// HEADER.FIELDS of those fields (archive keeps such a block per message so
// that a FETCH of them reads no pack).
func HeaderFields(raw []byte, keep func(name string) bool) []byte {
	var pr problems
	_, body, hasBody := splitMessage(raw, &pr)
	hdr := raw
	if hasBody {
		hdr = raw[:len(raw)-len(body)]
	}
	return filterHeader(hdr, keep)
}
