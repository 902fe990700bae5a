package imapd_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailswarm/internal/peertest"
)

// usersBytes is the size of the list's user state on disk, WAL included.
func (ts *testServer) usersBytes(t *testing.T) int64 {
	t.Helper()
	var n int64
	for _, suffix := range []string{"", "-wal"} {
		fi, err := os.Stat(filepath.Join(ts.l.Dir(), "users.sqlite3"+suffix))
		if err == nil {
			n += fi.Size()
		} else if !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	return n
}

// TestHostileUserName: a 40 KB user name (the probe's) is refused on
// loopback, by LOGIN and by AUTHENTICATE PLAIN; 255 octets log in.
func TestHostileUserName(t *testing.T) {
	ts := newTestServer(t, synthetic(1), nil)
	// Any refusal will do for 40 KB (limits on lines before login may
	// answer first); what must not happen is an OK.
	c := peertest.IMAPDial(t, ts.addr)
	if _, status, err := c.Cmd("LOGIN " + peertest.IMAPQuote(strings.Repeat("u", 40<<10)) + " x"); err == nil {
		t.Errorf("LOGIN with a 40 KB name: %q, want a refusal", status)
	}
	authFails(t, ts.addr, plain(strings.Repeat("u", 1000), "x")) // base64 of 40 KB would pass the 50 KiB line limit
	authFails(t, ts.addr, "LOGIN "+peertest.IMAPQuote(strings.Repeat("u", 256))+" x")
	// A control character, in a literal (the client does not wait for
	// the continuation; the server reads the literal all the same).
	authFails(t, ts.addr, "LOGIN {3}\r\na\x01b x")
	peertest.IMAPDial(t, ts.addr).Login(strings.Repeat("u", 255), "x")
}

// TestHostileKeywords: the probe's STORE of 1,000 keywords is refused
// with NO [LIMIT] and leaves users.sqlite3 as it was (it grew it by
// megabytes); an over-long keyword is NO [TOOBIG]; a Thunderbird's
// keywords are kept.
func TestHostileKeywords(t *testing.T) {
	ts := newTestServer(t, synthetic(20), nil)
	c := ts.dial(t, "alice")
	mustCmd(t, c, "SELECT test")
	mustCmd(t, c, `STORE 1 +FLAGS (\Seen)`) // the user state exists: measure growth, not creation
	before := ts.usersBytes(t)

	kws := make([]string, 1000)
	for i := range kws {
		kws[i] = fmt.Sprintf("$hostile-keyword-%04d-%s", i, strings.Repeat("x", 20))
	}
	_, status, err := c.Cmd("STORE 1:* +FLAGS (" + strings.Join(kws, " ") + ")")
	if err == nil || !strings.HasPrefix(status, "NO [LIMIT]") {
		t.Errorf("STORE of 1,000 keywords: %q, want NO [LIMIT]", status)
	}
	out := rawStrings(mustCmd(t, c, "FETCH 1:* (FLAGS)"))
	if strings.Contains(out, "$hostile") {
		t.Errorf("keywords stored after a refused STORE:\n%.300s", out)
	}
	// A refused STORE writes nothing; a page or two of WAL is the bound.
	// (Before the limits it grew by 927,000 bytes here.)
	grew := ts.usersBytes(t) - before
	t.Logf("users.sqlite3 grew by %d bytes", grew)
	if grew > 64<<10 {
		t.Errorf("users.sqlite3 grew by %d bytes, want at most 64 KiB", grew)
	}

	_, status, err = c.Cmd("STORE 1 +FLAGS (" + strings.Repeat("k", 129) + ")")
	if err == nil || !strings.HasPrefix(status, "NO [TOOBIG]") {
		t.Errorf("STORE of a 129-octet keyword: %q, want NO [TOOBIG]", status)
	}

	// What Thunderbird sets (tags $label1..5, junk state, $Forwarded,
	// $MDNSent), on every message.
	tb := `$label1 $label2 $label3 $label4 $label5 $Junk $NotJunk Junk NonJunk $Forwarded $MDNSent $Phishing`
	mustCmd(t, c, "STORE 1:* +FLAGS ("+tb+")")
	out = rawStrings(mustCmd(t, c, "FETCH 20 (FLAGS)"))
	if !strings.Contains(out, "$MDNSent") {
		t.Errorf("Thunderbird's keywords not kept:\n%s", out)
	}
}

// TestKeywordLimitPermanentFlags: up to the limit of distinct keywords
// a user may create more (PERMANENTFLAGS has \*); at the limit, a new
// keyword is NO [LIMIT] and PERMANENTFLAGS lists the user's keywords
// instead of \* (RFC 9051 section 7.1: \* means new keywords may be
// created). Removing keywords makes room again.
func TestKeywordLimitPermanentFlags(t *testing.T) {
	ts := newTestServer(t, synthetic(3), nil)
	c := ts.dial(t, "alice")
	if out := rawStrings(mustCmd(t, c, "SELECT test")); !strings.Contains(out, `\*)]`) {
		t.Fatalf("SELECT:\n%s\nwant \\* in PERMANENTFLAGS", out)
	}
	var kws []string
	for i := range 128 {
		kws = append(kws, fmt.Sprintf("k%03d", i))
	}
	mustCmd(t, c, "STORE 1 +FLAGS ("+strings.Join(kws[:64], " ")+")")
	mustCmd(t, c, "STORE 2 +FLAGS ("+strings.Join(kws[64:], " ")+")")
	mustCmd(t, c, "STORE 3 +FLAGS (K000 k127)") // known, in any case
	if _, status, err := c.Cmd("STORE 3 +FLAGS (one-more)"); err == nil || !strings.HasPrefix(status, "NO [LIMIT]") {
		t.Errorf("a 129th keyword: %q, want NO [LIMIT]", status)
	}
	out := rawStrings(mustCmd(t, c, "SELECT test"))
	if strings.Contains(out, `\*`) || !strings.Contains(out, "k127") {
		t.Errorf("SELECT at the limit:\n%.400s\nwant the keywords and no \\* in PERMANENTFLAGS", out)
	}
	// Another user has room of its own.
	b := ts.dial(t, "bob")
	mustCmd(t, b, "SELECT test")
	mustCmd(t, b, "STORE 1 +FLAGS (one-more)")

	mustCmd(t, c, "STORE 2 FLAGS (\\Seen)") // drops 64 keywords
	mustCmd(t, c, "STORE 3 +FLAGS (one-more)")
	if out := rawStrings(mustCmd(t, c, "SELECT test")); !strings.Contains(out, `\*)]`) {
		t.Errorf("SELECT below the limit:\n%.400s\nwant \\* in PERMANENTFLAGS", out)
	}
}

// TestKeywordBytesLimit: keywords one user keeps on a list are bounded
// in bytes as well as in number: 100 keywords of 100 octets on each of
// 40 articles (400 KB) pass the count and length limits but not the
// byte budget (256 KiB + 128 octets per article).
func TestKeywordBytesLimit(t *testing.T) {
	ts := newTestServer(t, synthetic(40), nil)
	c := ts.dial(t, "alice")
	mustCmd(t, c, "SELECT test")
	mustCmd(t, c, `STORE 1 +FLAGS (\Seen)`)
	before := ts.usersBytes(t)
	kws := make([]string, 100)
	for i := range kws {
		kws[i] = fmt.Sprintf("k%03d%s", i, strings.Repeat("x", 96))
	}
	_, status, err := c.Cmd("STORE 1:* +FLAGS (" + strings.Join(kws, " ") + ")")
	if err == nil || !strings.HasPrefix(status, "NO [LIMIT]") {
		t.Errorf("STORE of 400 KB of keywords: %q, want NO [LIMIT]", status)
	}
	if grew := ts.usersBytes(t) - before; grew > 64<<10 {
		t.Errorf("users.sqlite3 grew by %d bytes, want at most 64 KiB", grew)
	}
	mustCmd(t, c, "STORE 1:10 +FLAGS ("+strings.Join(kws, " ")+")") // 100 KB: within
}
