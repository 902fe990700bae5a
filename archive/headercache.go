package archive

import (
	"strings"

	"mailswarm/message"
)

// cachedHeaderNames are the header fields mail clients ask for when they
// list a mailbox (mutt, Thunderbird, Apple Mail, mbsync, imap_bench):
// the index keeps them per message (msg.hdrs) so that such a FETCH reads
// no pack. Trace and signature fields, which are most of a header's
// bytes, are not among them.
var cachedHeaderNames = map[string]bool{
	"from": true, "sender": true, "reply-to": true, "to": true, "cc": true, "bcc": true,
	"subject": true, "date": true, "message-id": true, "in-reply-to": true, "references": true,
	"content-type": true, "content-description": true, "content-transfer-encoding": true,
	"mime-version": true, "list-id": true, "list-post": true, "list-subscribe": true,
	"list-unsubscribe": true, "list-archive": true, "mail-followup-to": true, "mail-reply-to": true,
	"newsgroups": true, "followup-to": true, "organization": true, "user-agent": true,
	"x-mailer": true, "priority": true, "x-priority": true, "importance": true, "lines": true,
	"x-label": true, "x-original-to": true, "delivered-to": true, "keywords": true,
	"x-mailing-list": true, "mailing-list": true, "x-newsreader": true, "return-path": true,
}

// CachedHeader reports whether the index keeps field name of every
// message (see cachedHeaders).
func CachedHeader(name string) bool { return cachedHeaderNames[strings.ToLower(name)] }

// cachedHeaders returns the lines of raw's header fields that
// CachedHeader names, in order, continuation lines included, with an
// empty line at the end: a header block message.ExtractSection reads as
// raw's own for HEADER.FIELDS of cached fields.
func cachedHeaders(raw []byte) []byte {
	return message.HeaderFields(raw, CachedHeader)
}
