package message

import (
	"bytes"
	"strings"
)

// Envelope is the IMAP ENVELOPE of a message (RFC 3501 section 7.4.2),
// holding what the server sends, computed as Dovecot 2.3 does (see
// docs/IMAP-DOVECOT.md):
//
//   - Date, In-Reply-To and Message-ID are the raw header values (not
//     decoded) with the blanks after the colon skipped and line breaks
//     removed; trailing blanks stay;
//   - Subject and display names are raw too, but every run of blanks is
//     one space and leading and trailing blanks are gone;
//   - for each string field the last occurrence wins; the address lists
//     of repeated From, To, ... fields are joined, as if comma-separated;
//   - NUL bytes become U+FFFD.
//
// A field that is absent is "" and sent as NIL; one present with an empty
// value is "" with its bit set in Empty and sent as "".
type Envelope struct {
	Date, Subject                      string
	From, Sender, ReplyTo, To, Cc, Bcc []EnvelopeAddress
	InReplyTo, MessageID               string
	Empty                              uint8 // EnvDate, EnvSubject, EnvInReplyTo, EnvMessageID
}

// Bits of Envelope.Empty.
const (
	EnvDate uint8 = 1 << iota
	EnvSubject
	EnvInReplyTo
	EnvMessageID
)

// EnvelopeAddress is one address of an ENVELOPE address list. Name is the
// display name as written (quotes removed, encoded words kept, blanks
// collapsed). A group is a GroupStart address whose Mailbox is the group
// name, then its members, then a GroupEnd address with all fields empty
// (RFC 3501 section 7.4.2). Missing or broken parts of a mailbox are
// filled in as Dovecot does (MISSING_MAILBOX, MISSING_DOMAIN,
// SYNTAX_ERROR, INVALID_ROUTE), so that an address is never mistaken for
// a group marker on the wire.
type EnvelopeAddress struct {
	Name, AdrList, Mailbox, Host string
	GroupStart, GroupEnd         bool
	NameEmpty                    bool // a display name present but empty (or only blanks): sent as ""
}

const (
	missingMailbox = "MISSING_MAILBOX"
	missingDomain  = "MISSING_DOMAIN"
)

// parseEnvelope builds the ENVELOPE from a header block. Sender and
// Reply-To default to From when absent or empty (RFC 3501 section 7.4.2).
func parseEnvelope(h header) Envelope {
	var e Envelope
	str := func(name string, bit uint8) string {
		v, ok := h.last(name)
		if !ok {
			return ""
		}
		var s string
		if bit == EnvSubject {
			s = forHumans(headerValue(v))
		} else {
			s = noLF(headerValue(v))
		}
		if s == "" {
			e.Empty |= bit
		}
		return s
	}
	addrs := func(name string) []EnvelopeAddress {
		var out []EnvelopeAddress
		for _, v := range h.all(name) {
			out = append(out, dovecotAddresses(v)...)
		}
		for i := range out {
			if out[i].Name != "" {
				out[i].Name = forHumans(out[i].Name)
				out[i].NameEmpty = out[i].Name == ""
			}
		}
		return out
	}
	e.Date = str("Date", EnvDate)
	e.Subject = str("Subject", EnvSubject)
	e.From = addrs("From")
	e.Sender = addrs("Sender")
	e.ReplyTo = addrs("Reply-To")
	e.To = addrs("To")
	e.Cc = addrs("Cc")
	e.Bcc = addrs("Bcc")
	e.InReplyTo = str("In-Reply-To", EnvInReplyTo)
	e.MessageID = str("Message-ID", EnvMessageID)
	if len(e.Sender) == 0 {
		e.Sender = e.From
	}
	if len(e.ReplyTo) == 0 {
		e.ReplyTo = e.From
	}
	return e
}

// headerValue returns a field's value as Dovecot's header parser gives
// it (MESSAGE_HEADER_PARSER_FLAG_SKIP_INITIAL_LWSP, DROP_CR): the blanks
// after the colon skipped (all but one when the first line is only
// blanks), CR before each LF dropped, NUL as U+FFFD.
func headerValue(v []byte) string {
	first := v
	if i := bytes.IndexByte(v, '\n'); i >= 0 {
		first = v[:i]
	}
	first = bytes.TrimSuffix(first, []byte("\r"))
	pos := 0
	for pos < len(first) && (first[pos] == ' ' || first[pos] == '\t') {
		pos++
	}
	if pos == len(first) && pos > 0 {
		pos = 1
	}
	v = v[pos:]
	if bytes.IndexByte(v, 0) < 0 && bytes.IndexByte(v, '\r') < 0 {
		return string(v)
	}
	b := make([]byte, 0, len(v)+8)
	for i, c := range v {
		switch {
		case c == 0:
			b = append(b, nulReplacement...)
		case c == '\r' && i+1 < len(v) && v[i+1] == '\n':
		default:
			b = append(b, c)
		}
	}
	return string(b)
}

// noLF removes CR and LF, putting a space where the next line does not
// start with a blank: Dovecot's imap_append_nstring_nolf.
func noLF(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\r' && c != '\n' {
			b = append(b, c)
			continue
		}
		if i+1 < len(s) {
			if n := s[i+1]; n != ' ' && n != '\t' && n != '\r' && n != '\n' && n != 0 {
				b = append(b, ' ')
			}
		}
	}
	return string(b)
}

// forHumans is Dovecot's imap_append_string_for_humans: CR and LF are
// dropped, each run of spaces and tabs becomes one space, leading and
// trailing blanks go, NUL becomes 0x80.
func forHumans(s string) string {
	b := make([]byte, 0, len(s))
	lastLWSP := true
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b = append(b, 0x80)
			lastLWSP = false
		case ' ', '\t':
			if !lastLWSP {
				b = append(b, ' ')
			}
			lastLWSP = true
		case '\r', '\n':
		default:
			b = append(b, c)
			lastLWSP = false
		}
	}
	if lastLWSP && len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return string(b)
}
