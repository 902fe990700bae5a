// Package message reads mail: it parses one message (Parse: Message-IDs,
// references, subject, sender, date, the IMAP ENVELOPE and BODYSTRUCTURE
// values, the decoded text, the public-inbox content hash used for
// dedup), extracts FETCH sections (ExtractSection, BinarySection),
// matches SEARCH text (Fold, MatchHeader, MatchBody), encodes the
// ENVELOPE and BODYSTRUCTURE values compactly for storage (codec.go), and
// reads and writes mbox files and reads Maildirs (ReadMbox, MboxWriter,
// WalkMaildir).
//
// It is lenient: Parse never fails, broken mail is read as far as it goes
// and Parsed.Problems says what was odd. Where a result must agree with a
// peer, the code follows that peer and says so: ENVELOPE and
// BODYSTRUCTURE are Dovecot 2.3's (envelope_dovecot.go,
// bodystructure_dovecot.go, checked against a running Dovecot by imapd's
// TestDovecotOracle), the content hash, From and mbox splitting are
// public-inbox 1.9's (contenthash.go, address.go, mbox.go). The two
// address parsers are named for whose semantics they follow
// (publicInboxAddresses, dovecotAddresses; see address.go).
//
// It does no I/O beyond the readers it is given and the paths
// WalkMaildir reads, keeps no state between calls, and imports nothing
// of mailswarm's (nor do its tests: `go test ./message` runs on its own).
// The IMAP wire syntax is not here: imapd writes it. archive (which
// stores what Parse computes and imports with the readers), imapd
// (sections, SEARCH matching, the stored values) and cmd import it;
// go-message (charset decoding) is used only here.
package message
