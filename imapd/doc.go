// Package imapd serves the archive over IMAP (go-imap v2): each list a
// read-only mailbox, UIDs are article numbers. It imports archive and
// message; go-imap is used only here.
//
// The IMAP wire syntax is written here: message parses ENVELOPE and
// BODYSTRUCTURE into plain values, archive caches them (binary encoded)
// in the index, and format.go renders them for FETCH.
package imapd
