// Package imapd serves the archive over IMAP4rev1 (RFC 3501) on go-imap
// v2's protocol engine: each list a read-only mailbox NAME and each year of
// it a child NAME/YYYY, UIDs are article numbers, UIDVALIDITY comes from
// the list key (docs/IMAP.md says what a client sees).
//
// It owns the IMAP side only: mailbox views (view.go: runs of consecutive
// UIDs in memory, extended from archive events, never changed once a
// session holds them), FETCH (fetch.go), SEARCH as set algebra over the
// index (search.go), per-user flags through archive.UserState (flags.go),
// IDLE, logins and TLS, and the IMAP wire syntax of ENVELOPE, BODY,
// BODYSTRUCTURE and strings (format.go): message parses ENVELOPE and
// BODYSTRUCTURE into plain values, archive caches them (binary encoded) in
// the index, imapd writes the protocol. It keeps nothing on disk of its
// own: messages, cached structures and flags (users.sqlite3) are the
// archive's.
//
// It imports archive and message; go-imap is used only here and none of
// its types leave the package. Only cmd/mailswarm imports imapd.
//
// FETCH bypasses go-imap's FetchWriter. That writer takes ENVELOPE and
// BODYSTRUCTURE as go-imap values (a parsed Date, parameters in a map,
// subjects it Q-encodes), so it cannot send the raw header values RFC 3501
// asks for and Dovecot sends, its helpers panic on a multipart without a
// boundary, and it flushes the socket after every message. Fetch writes
// the untagged responses itself, from the index's cached values and the
// packs, in 64 KiB writes on the connection go-imap hands out; go-imap has
// parsed the command and writes nothing until Fetch returns, then sends
// the tagged reply. What go-imap parsed but does not export (which
// obsolete item names, RFC822, RFC822.HEADER, RFC822.TEXT, the client
// used, and whether it asked for BODY, BODYSTRUCTURE or both) is read from
// the FetchWriter's unexported fields by reflection (inspectWriter);
// TestFetchItemNames fails if a go-imap upgrade renames them. Expunge
// likewise looks at its writer by reflection to tell CLOSE (no
// connection: nothing to do) from EXPUNGE (refused: read-only).
//
// wire.go is a thin connection layer under go-imap's imapserver: it
// answers ID (RFC 2971), which imapserver does not know, adds ID to the
// capability lists imapserver writes, and does STARTTLS itself so that it
// keeps reading plain text after it.
package imapd
