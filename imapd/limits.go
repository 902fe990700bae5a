package imapd

import (
	"errors"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailswarm/archive"
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

	// maxKeywordLen is the longest keyword, in octets. Dovecot refuses
	// keywords over 50 (mail_max_keyword_length: "NO [CANNOT] Keyword
	// length too long") and clients live with that; Thunderbird's are
	// $label1..$label5, $Junk, $NotJunk, Junk, NonJunk, $Forwarded,
	// $MDNSent, $Phishing and tags named by the user.
	maxKeywordLen = 128

	// maxKeywords is the number of distinct keywords one user may have
	// on one list. Cyrus allows 128 per mailbox for all users together
	// (MAX_USER_FLAGS); a Thunderbird with its default tags uses 12.
	maxKeywords = 128

	// The keyword text one user keeps on one list is at most
	// keywordBytesBase plus keywordBytesPerArticle for each article
	// (space-separated, as stored). Thunderbird's junk controls put
	// "NonJunk $NotJunk" (16 octets) on every message, and a tag or two
	// more fits in 128; the base leaves room for many keywords on a few
	// articles. A 71,000-article list allows 9.3 MB per user, where
	// 128 keywords of 128 octets on every article would be 1.2 GB.
	keywordBytesBase       = 256 << 10
	keywordBytesPerArticle = 128
)

// flagLimits are the limits on what a STORE may make user state keep on
// a list whose highest article number is maxUID.
func flagLimits(maxUID uint32) archive.FlagLimits {
	return archive.FlagLimits{
		MaxKeywords:     maxKeywords,
		MaxKeywordBytes: keywordBytesBase + keywordBytesPerArticle*int64(maxUID),
	}
}

var errKeywordLen = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTooBig,
	Text: "Keywords are at most 128 octets"}

// limitError answers a STORE that archive refused for a flag limit (RFC
// 5530 LIMIT: the operation would exceed a server-defined limit), or
// returns nil for any other error.
func limitError(err error) *imap.Error {
	switch {
	case errors.Is(err, archive.ErrTooManyKeywords):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
			Text: "At most 128 distinct keywords per user and list; nothing was changed"}
	case errors.Is(err, archive.ErrKeywordBytes):
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
			Text: "Too much keyword text for this list; nothing was changed"}
	}
	return nil
}

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

// keywordsAtLimit returns the user's keywords on st when they have as
// many as maxKeywords, nil otherwise. Then SELECT lists them in FLAGS and
// PERMANENTFLAGS without \*, which would say that new keywords may be
// created (RFC 9051 section 7.1, PERMANENTFLAGS); a client then knows
// which keywords it can still set. Below the limit \* stays.
func (ss *session) keywordsAtLimit(st *listState) ([]imap.Flag, error) {
	kws, err := st.users.Keywords(ss.ctx, ss.user, false)
	if err != nil || len(kws) < maxKeywords {
		return nil, err
	}
	// The summary may keep keywords removed since: count them exactly.
	if kws, err = st.users.Keywords(ss.ctx, ss.user, true); err != nil || len(kws) < maxKeywords {
		return nil, err
	}
	out := make([]imap.Flag, len(kws))
	for i, k := range kws {
		out[i] = imap.Flag(k)
	}
	return out, nil
}
