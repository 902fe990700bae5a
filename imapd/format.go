package imapd

import (
	"strconv"
	"strings"

	"mailswarm/message"
)

// The IMAP wire syntax of ENVELOPE, BODYSTRUCTURE and BODY (RFC 3501
// section 7.4.2). message parses the values at import, archive keeps them
// in the index (message's codec), and FETCH renders them here, byte for
// byte as Dovecot 2.3 sends them (TestDovecotOracle): NIL for an absent
// field, "" for a present empty one, a literal for 8-bit text.

// formatEnvelope renders e in IMAP wire syntax (RFC 3501 section 7.4.2),
// the way a server sends it after "ENVELOPE ".
func formatEnvelope(e *message.Envelope) string {
	var b strings.Builder
	writeEnvelope(&b, e)
	return b.String()
}

func writeEnvelope(b *strings.Builder, e *message.Envelope) {
	b.WriteByte('(')
	writeEnvString(b, e.Date, e.Empty&message.EnvDate != 0)
	b.WriteByte(' ')
	writeEnvString(b, e.Subject, e.Empty&message.EnvSubject != 0)
	for _, l := range [][]message.EnvelopeAddress{e.From, e.Sender, e.ReplyTo, e.To, e.Cc, e.Bcc} {
		b.WriteByte(' ')
		writeAddressList(b, l)
	}
	b.WriteByte(' ')
	writeEnvString(b, e.InReplyTo, e.Empty&message.EnvInReplyTo != 0)
	b.WriteByte(' ')
	writeEnvString(b, e.MessageID, e.Empty&message.EnvMessageID != 0)
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

func writeAddressList(b *strings.Builder, l []message.EnvelopeAddress) {
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

// formatBodyStructure renders b in IMAP wire syntax (RFC 3501 section
// 7.4.2), extended form, the way a server sends it after "BODYSTRUCTURE ".
func formatBodyStructure(b *message.BodyStructure) string {
	var sb strings.Builder
	writeBody(&sb, b, 0, true)
	return sb.String()
}

// formatBody renders b in the non-extended form IMAP's BODY fetch item
// returns (RFC 3501 section 7.4.2): BODYSTRUCTURE without extension data.
func formatBody(b *message.BodyStructure) string {
	var sb strings.Builder
	writeBody(&sb, b, 0, false)
	return sb.String()
}

// writeBody writes b as BODYSTRUCTURE (extended) or BODY.
func writeBody(sb *strings.Builder, b *message.BodyStructure, depth int, extended bool) {
	sb.WriteByte('(')
	if strings.EqualFold(b.Type, "multipart") {
		for i := range b.Children {
			if depth > 1000 {
				break
			}
			writeBody(sb, &b.Children[i], depth+1, extended)
		}
		if len(b.Children) == 0 {
			if extended {
				sb.WriteString(`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)`)
			} else {
				sb.WriteString(`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)`)
			}
		}
		sb.WriteByte(' ')
		writeString(sb, b.Subtype)
		if extended {
			sb.WriteByte(' ')
			writeParams(sb, b.Params)
			writeExtension(sb, b)
		}
		sb.WriteByte(')')
		return
	}
	writeBasicFields(sb, b)
	if b.Envelope != nil && b.Body != nil && depth <= 1000 {
		sb.WriteByte(' ')
		writeEnvelope(sb, b.Envelope)
		sb.WriteByte(' ')
		writeBody(sb, b.Body, depth+1, extended)
		sb.WriteByte(' ')
		sb.WriteString(strconv.FormatInt(b.Lines, 10))
	} else if strings.EqualFold(b.Type, "text") {
		sb.WriteByte(' ')
		sb.WriteString(strconv.FormatInt(b.Lines, 10))
	}
	if extended {
		sb.WriteByte(' ')
		writeEnvString(sb, b.MD5, b.Empty&message.BsMD5 != 0)
		writeExtension(sb, b)
	}
	sb.WriteByte(')')
}

// writeExtension writes the extension data both kinds of part end with:
// " disposition language location".
func writeExtension(sb *strings.Builder, b *message.BodyStructure) {
	sb.WriteByte(' ')
	writeDisposition(sb, b)
	sb.WriteByte(' ')
	writeLanguage(sb, b.Language)
	sb.WriteByte(' ')
	writeEnvString(sb, b.Location, b.Empty&message.BsLocation != 0)
}

// writeBasicFields writes the fields a non-multipart body starts with
// in both BODY and BODYSTRUCTURE (RFC 3501 section 7.4.2 body-type-basic,
// body-fields): type, subtype, parameters, id, description, encoding,
// size.
func writeBasicFields(sb *strings.Builder, b *message.BodyStructure) {
	if b.Envelope != nil && b.Body != nil {
		// whatever case it was written in (Dovecot)
		sb.WriteString(`"message" "rfc822"`)
	} else {
		writeString(sb, b.Type)
		sb.WriteByte(' ')
		writeString(sb, b.Subtype)
	}
	sb.WriteByte(' ')
	writeParams(sb, b.Params)
	sb.WriteByte(' ')
	writeEnvString(sb, b.ID, b.Empty&message.BsID != 0)
	sb.WriteByte(' ')
	writeEnvString(sb, b.Description, b.Empty&message.BsDescription != 0)
	sb.WriteByte(' ')
	enc := b.Encoding
	if enc == "" {
		enc = "7bit"
	}
	writeString(sb, enc)
	sb.WriteByte(' ')
	sb.WriteString(strconv.FormatInt(b.Size, 10))
}

func writeParams(sb *strings.Builder, params [][2]string) {
	if len(params) == 0 {
		sb.WriteString("NIL")
		return
	}
	sb.WriteByte('(')
	for i, p := range params {
		if i > 0 {
			sb.WriteByte(' ')
		}
		writeString(sb, p[0])
		sb.WriteByte(' ')
		writeString(sb, p[1])
	}
	sb.WriteByte(')')
}

func writeDisposition(sb *strings.Builder, b *message.BodyStructure) {
	if b.Disposition == "" && b.Empty&message.BsDisposition == 0 {
		sb.WriteString("NIL")
		return
	}
	sb.WriteByte('(')
	writeString(sb, b.Disposition)
	sb.WriteByte(' ')
	writeParams(sb, b.DispositionParams)
	sb.WriteByte(')')
}

func writeLanguage(sb *strings.Builder, langs []string) {
	if len(langs) == 0 {
		sb.WriteString("NIL")
		return
	}
	sb.WriteByte('(')
	for i, l := range langs {
		if i > 0 {
			sb.WriteByte(' ')
		}
		writeString(sb, l)
	}
	sb.WriteByte(')')
}

// quoteIMAP renders s as an IMAP string: quoted, or a literal when it
// holds bytes a quoted string cannot carry.
func quoteIMAP(s string) string {
	var sb strings.Builder
	writeString(&sb, s)
	return sb.String()
}
