// Package imapd serves the archive over IMAP (go-imap v2): each list a
// read-only mailbox, UIDs are article numbers. It imports archive; go-imap is
// used only here. wire.go is a thin connection layer under go-imap's
// imapserver: it answers ID (RFC 2971), which imapserver does not know,
// adds ID to the capability lists imapserver writes and does STARTTLS
// itself so that it keeps reading plain text after it.
package imapd
