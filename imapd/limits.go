package imapd

import (
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
)

// Limits on what one user may make the server keep. Flags are kept per
// user name (on loopback any name logs in) and per article, in the
// list's users.sqlite3: without limits a 40 KB user name and 1,000
// keywords in one STORE grew it by 250 MB in 7 s. Each limit is far
// above what a real client reaches.
const (
	// maxUserName is the longest user name, in octets. Logins are user
	// names or email addresses, and an address is at most 254 octets
	// (RFC 5321 section 4.5.3.1.3: a path of 256 with its brackets).
	maxUserName = 255
)

var errUserName = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed,
	Text: "User names are 1 to 255 octets of UTF-8 without control characters"}

// checkUserName refuses names that could never be configured (config
// allows the same ones): empty, longer than maxUserName, not UTF-8, or
// with control characters. It runs before any password check: no
// configured name is refused here, so its speed tells nothing.
func checkUserName(name string) error {
	if name == "" {
		return imapserver.ErrAuthFailed
	}
	if len(name) > maxUserName || !utf8.ValidString(name) {
		return errUserName
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errUserName
		}
	}
	return nil
}
