package archive

import (
	"strconv"
	"strings"
)

// FormatBody renders b in the non-extended form IMAP's BODY fetch item
// returns (RFC 3501 section 7.4.2): BODYSTRUCTURE without extension data.
func FormatBody(b *BodyStructure) string {
	var sb strings.Builder
	writeBasicBody(&sb, b, 0)
	return sb.String()
}

func writeBasicBody(sb *strings.Builder, b *BodyStructure, depth int) {
	sb.WriteByte('(')
	if strings.EqualFold(b.Type, "multipart") {
		for i := range b.Children {
			if depth > 1000 {
				break
			}
			writeBasicBody(sb, &b.Children[i], depth+1)
		}
		if len(b.Children) == 0 {
			sb.WriteString(`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)`)
		}
		sb.WriteByte(' ')
		sub := b.Subtype
		if sub == "" {
			sub = "x-unknown"
		}
		writeString(sb, sub)
		sb.WriteByte(')')
		return
	}
	writeString(sb, b.Type)
	sb.WriteByte(' ')
	sub := b.Subtype
	if sub == "" {
		sub = "unknown"
	}
	writeString(sb, sub)
	sb.WriteByte(' ')
	writeParams(sb, b.Params)
	sb.WriteByte(' ')
	writeNString(sb, b.ID)
	sb.WriteByte(' ')
	writeNString(sb, b.Description)
	sb.WriteByte(' ')
	enc := b.Encoding
	if enc == "" {
		enc = "7bit"
	}
	writeString(sb, enc)
	sb.WriteByte(' ')
	sb.WriteString(strconv.FormatInt(b.Size, 10))
	if b.Envelope != nil && b.Body != nil && depth <= 1000 {
		sb.WriteByte(' ')
		writeEnvelope(sb, b.Envelope)
		sb.WriteByte(' ')
		writeBasicBody(sb, b.Body, depth+1)
		sb.WriteByte(' ')
		sb.WriteString(strconv.FormatInt(b.Lines, 10))
	} else if strings.EqualFold(b.Type, "text") {
		sb.WriteByte(' ')
		sb.WriteString(strconv.FormatInt(b.Lines, 10))
	}
	sb.WriteByte(')')
}

// QuoteIMAP renders s as an IMAP string: quoted, or a literal when it
// holds bytes a quoted string cannot carry.
func QuoteIMAP(s string) string {
	var sb strings.Builder
	writeString(&sb, s)
	return sb.String()
}
