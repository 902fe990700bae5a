// Package imapd serves the archive over IMAP (go-imap v2): each list a
// read-only mailbox, UIDs are article numbers. It imports archive; go-imap is
// used only here.
package imapd
