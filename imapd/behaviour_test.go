package imapd_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"mailswarm/imapd"
	"mailswarm/internal/peertest"
)

// rawConn is a line-level IMAP connection for what peertest's client
// does not do: IDLE, unsolicited responses, reading the greeting.
type rawConn struct {
	t    testing.TB
	c    net.Conn
	r    *bufio.Reader
	lock sync.Mutex
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// dialImaps serves implicit TLS (ServeTLS) of ts on a new loopback
// listener and connects to it with clientTLS.
func dialImaps(t testing.TB, ts *testServer, clientTLS *tls.Config) *rawConn {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.srv.ServeTLS(ln)
	c, err := tls.Dial("tcp", ln.Addr().String(), clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// loggedIn reads the greeting on rc and logs in as "u".
func loggedIn(t testing.TB, rc *rawConn) *rawConn {
	t.Helper()
	rc.until("* OK", 5*time.Second)
	rc.send("a LOGIN u p")
	rc.until("a OK", 5*time.Second)
	return rc
}

// selected logs in on a raw connection and selects "test".
func selected(t testing.TB, addr string) *rawConn {
	t.Helper()
	return selectOn(t, dialRaw(t, addr))
}

// selectOn logs in on rc and selects "test".
func selectOn(t testing.TB, rc *rawConn) *rawConn {
	t.Helper()
	loggedIn(t, rc)
	rc.send("b SELECT test")
	rc.until("b OK", 5*time.Second)
	return rc
}

// waitGreeting connects to addr again and again, for at most 5 s, until
// the server greets with "* OK" rather than BYE (a slot freed a moment
// after what frees it is answered); after says what came before.
func waitGreeting(t *testing.T, addr, after string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, _ := dialRaw(t, addr).readLine(5 * time.Second)
		if strings.HasPrefix(l, "* OK") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q, want a greeting", after, l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (rc *rawConn) send(line string) {
	rc.t.Helper()
	rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.c.Write([]byte(line + "\r\n")); err != nil {
		rc.t.Fatal(err)
	}
}

// readLine reads one line (without CRLF) within d.
func (rc *rawConn) readLine(d time.Duration) (string, error) {
	rc.c.SetReadDeadline(time.Now().Add(d))
	s, err := rc.r.ReadString('\n')
	return strings.TrimRight(s, "\r\n"), err
}

// until reads lines until one has the prefix, returning all lines read;
// it fails the test on error (test goroutine only).
func (rc *rawConn) until(prefix string, d time.Duration) []string {
	rc.t.Helper()
	lines, err := rc.tryUntil(prefix, d)
	if err != nil {
		rc.t.Fatal(err)
	}
	return lines
}

// tryUntil is until returning the error (any goroutine).
func (rc *rawConn) tryUntil(prefix string, d time.Duration) ([]string, error) {
	var lines []string
	deadline := time.Now().Add(d)
	for {
		l, err := rc.readLine(time.Until(deadline))
		if err != nil {
			return lines, fmt.Errorf("waiting for %q: %v (read %q)", prefix, err, lines)
		}
		lines = append(lines, l)
		if strings.HasPrefix(l, prefix) {
			return lines, nil
		}
	}
}

// trySend is send returning the error (any goroutine).
func (rc *rawConn) trySend(line string) error {
	rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := rc.c.Write([]byte(line + "\r\n"))
	return err
}

func TestIdleReportsNewMail(t *testing.T) {
	ts := newTestServer(t, synthetic(5), nil)
	rc := dialRaw(t, ts.addr)
	rc.until("* OK", 5*time.Second)
	rc.send(`a LOGIN bob x`)
	rc.until("a OK", 5*time.Second)
	rc.send(`b SELECT test`)
	rc.until("b OK", 5*time.Second)
	rc.send(`c IDLE`)
	rc.until("+", 5*time.Second)

	// one message
	start := time.Now()
	more := synthetic(60)
	if _, err := ts.l.Add(context.Background(), more[5]); err != nil {
		t.Fatal(err)
	}
	rc.until("* 6 EXISTS", 5*time.Second)
	t.Logf("EXISTS %v after the archive returned", time.Since(start))

	// many at once: the count jumps, and sequence numbers stay right
	if _, err := ts.l.Add(context.Background(), more[6:]...); err != nil {
		t.Fatal(err)
	}
	rc.until("* 60 EXISTS", 5*time.Second)
	rc.send("DONE")
	rc.until("c OK", 5*time.Second)
	rc.send(`d FETCH 60 (UID ENVELOPE)`)
	lines := rc.until("d OK", 5*time.Second)
	if !strings.Contains(lines[0], "* 60 FETCH (UID 60 ") || !strings.Contains(lines[0], `"message number 60"`) {
		t.Fatalf("FETCH 60 after the jump: %q", lines)
	}
	// a year mailbox sees its new mail too
	rc.send(`e SELECT test/2006`)
	lines = rc.until("e OK", 5*time.Second)
	if !slicesContain(lines, "* 60 EXISTS") {
		t.Fatalf("SELECT test/2006: %q", lines)
	}
}

func slicesContain(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// Without IDLE, new mail shows up at the next command (NOOP).
func TestNoopReportsNewMail(t *testing.T) {
	ts := newTestServer(t, synthetic(3), nil)
	c := ts.dial(t, "u")
	mustCmd(t, c, "SELECT test")
	if _, err := ts.l.Add(context.Background(), synthetic(4)[3]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out := rawStrings(mustCmd(t, c, "NOOP"))
		if strings.Contains(out, "4 EXISTS") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no EXISTS after NOOP: %q", out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestReadOnlyCommands(t *testing.T) {
	ts := newTestServer(t, synthetic(3), nil)
	c := ts.dial(t, "u")
	mustCmd(t, c, "SELECT test")
	for _, cmd := range []string{
		"APPEND test {3+}\r\nabc",
		"COPY 1 INBOX",
		"UID COPY 1 INBOX",
		"MOVE 1 INBOX",
		"EXPUNGE",
		"CREATE foo",
		"DELETE test",
		"RENAME test foo",
		`STORE 1 +FLAGS (\Deleted)`,
	} {
		_, status, err := c.Cmd(cmd)
		if err == nil || !strings.HasPrefix(status, "NO") {
			t.Errorf("%s: %q, want NO", cmd, status)
		}
	}
	// CLOSE expunges nothing and succeeds; the messages are all there
	mustCmd(t, c, "CLOSE")
	out := rawStrings(mustCmd(t, c, "SELECT test"))
	if !strings.Contains(out, "3 EXISTS") {
		t.Fatalf("after CLOSE: %s", out)
	}
	// EXAMINE is read-only: STORE is refused
	mustCmd(t, c, "EXAMINE test")
	if _, status, err := c.Cmd(`STORE 1 +FLAGS (\Seen)`); err == nil {
		t.Fatalf("STORE in EXAMINE: %q", status)
	}
}

// The obsolete fetch items answer under their own names, and BODY and
// BODYSTRUCTURE each in their form (go-imap does not export which the
// client asked; imapd reads it by reflection, which this locks).
func TestFetchItemNames(t *testing.T) {
	ts := newTestServer(t, synthetic(2), nil)
	c := ts.dial(t, "u")
	mustCmd(t, c, "SELECT test")
	for cmd, want := range map[string][]string{
		"FETCH 1 (RFC822)":             {"RFC822 {"},
		"FETCH 1 (RFC822.HEADER)":      {"RFC822.HEADER {"},
		"FETCH 1 (RFC822.TEXT)":        {"RFC822.TEXT {"},
		"FETCH 1 (BODY.PEEK[])":        {"BODY[] {"},
		"FETCH 1 (BODY)":               {`BODY ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 31 2)`},
		"FETCH 1 (BODYSTRUCTURE)":      {`BODYSTRUCTURE ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 31 2 NIL NIL NIL NIL)`},
		"FETCH 1 (BODY BODYSTRUCTURE)": {`BODY ("text"`, `BODYSTRUCTURE ("text"`},
		"FETCH 1 (BODY.PEEK[]<5.10>)":  {"BODY[]<5> {10}\r\n Person 1 "},
		"FETCH 1 (BINARY.PEEK[1])":     {"BINARY[1] ~{31}\r\nbody of message 1\r\nxylophone1\r\n"},
		"FETCH 1 (BINARY.SIZE[1])":     {"BINARY.SIZE[1] 31"},
		"FETCH 1 (BODY.PEEK[1.MIME])":  {"BODY[1.MIME] {"},
		"FETCH 1 (BODY.PEEK[2])":       {"BODY[2] {0}"},
		"FETCH 1 FAST":                 {"FLAGS (", "INTERNALDATE ", "RFC822.SIZE 183"},
		"UID FETCH 2 (FLAGS)":          {"UID 2", "FLAGS ()"},
		"FETCH 1:* (UID)":              {"1 FETCH (UID 1)", "2 FETCH (UID 2)"},
		"UID FETCH 9:* (UID)":          {"2 FETCH (UID 2)"},
		"FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT (Subject Date To Message-ID)])": {"BODY[HEADER.FIELDS.NOT (Subject Date To Message-ID)] {35}\r\nFrom: Person 1 <p1@example.org>\r\n\r\n"},
	} {
		out := rawStrings(mustCmd(t, c, cmd))
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s:\n%s\nwant %q", cmd, out, w)
			}
		}
	}
}

func TestFlagsPerUser(t *testing.T) {
	ts := newTestServer(t, synthetic(4), nil)
	a := ts.dial(t, "alice")
	mustCmd(t, a, "SELECT test")
	mustCmd(t, a, `STORE 2 +FLAGS (\Flagged $Important)`)
	mustCmd(t, a, `FETCH 3 (BODY[TEXT])`) // sets \Seen
	a.Close()

	a2 := ts.dial(t, "alice")
	mustCmd(t, a2, "SELECT test")
	out := rawStrings(mustCmd(t, a2, `FETCH 1:* (FLAGS)`))
	for _, w := range []string{`2 FETCH (FLAGS (\Flagged $Important))`, `3 FETCH (FLAGS (\Seen))`, `1 FETCH (FLAGS ())`} {
		if !strings.Contains(out, w) {
			t.Errorf("alice again:\n%s\nwant %q", out, w)
		}
	}
	if got := rawStrings(mustCmd(t, a2, `SEARCH KEYWORD $important`)); !strings.Contains(got, "SEARCH 2") {
		t.Errorf("SEARCH KEYWORD: %s", got)
	}
	st := rawStrings(mustCmd(t, a2, `STATUS test (UNSEEN)`))
	if !strings.Contains(st, "UNSEEN 3") {
		t.Errorf("STATUS: %s", st)
	}
	mustCmd(t, a2, `STORE 2 -FLAGS (\Flagged)`)
	mustCmd(t, a2, `STORE 1 FLAGS (\Answered)`)

	b := ts.dial(t, "bob")
	mustCmd(t, b, "SELECT test")
	out = rawStrings(mustCmd(t, b, `FETCH 1:* (FLAGS)`))
	if strings.Contains(out, `\`) || strings.Contains(out, "$") {
		t.Errorf("bob sees alice's flags:\n%s", out)
	}
	// flags live apart from the index: a reindex (with the server
	// stopped, as the command runs) keeps them
	ts.srv.Close()
	if err := ts.l.Reindex(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ts.restart(t, nil)
	a3 := ts.dial(t, "alice")
	mustCmd(t, a3, "SELECT test")
	out = rawStrings(mustCmd(t, a3, `FETCH 1:2 (FLAGS)`))
	if !strings.Contains(out, `1 FETCH (FLAGS (\Answered))`) || !strings.Contains(out, `2 FETCH (FLAGS ($Important))`) {
		t.Errorf("after reindex:\n%s", out)
	}
}

func TestLoginRules(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, synthetic(2), &imapd.Options{Users: map[string]string{"carol": string(hash)}, RequireLogin: true, Anonymous: true})
	c := peertest.IMAPDial(t, ts.addr)
	if _, status, err := c.Cmd(`LOGIN carol wrong`); err == nil {
		t.Fatalf("wrong password accepted: %s", status)
	}
	if _, status, err := c.Cmd(`LOGIN mallory secret`); err == nil {
		t.Fatalf("unknown user accepted: %s", status)
	}
	c.Login("carol", "secret")
	mustCmd(t, c, "SELECT test")
	mustCmd(t, c, `STORE 1 +FLAGS (\Seen)`)

	// AUTHENTICATE ANONYMOUS: read-only, no flags
	an := peertest.IMAPDial(t, ts.addr)
	mustCmd(t, an, "AUTHENTICATE ANONYMOUS dHJhY2U=")
	out := rawStrings(mustCmd(t, an, "SELECT test"))
	if strings.Contains(out, "PERMANENTFLAGS (") && !strings.Contains(out, "PERMANENTFLAGS ()") {
		t.Errorf("anonymous SELECT offers permanent flags:\n%s", out)
	}
	if _, status, err := an.Cmd(`STORE 1 +FLAGS (\Seen)`); err == nil {
		t.Fatalf("anonymous STORE: %s", status)
	}
	out = rawStrings(mustCmd(t, an, "FETCH 1 (FLAGS BODY[TEXT])"))
	if !strings.Contains(out, "FLAGS ()") {
		t.Errorf("anonymous fetch: %s", out)
	}
}

func TestConnectionLimitAndShutdown(t *testing.T) {
	ts := newTestServer(t, synthetic(2), &imapd.Options{MaxConns: 2})
	a := dialRaw(t, ts.addr)
	a.until("* OK", 5*time.Second)
	b := dialRaw(t, ts.addr)
	b.until("* OK", 5*time.Second)
	c := dialRaw(t, ts.addr)
	if l := c.until("* BYE", 5*time.Second); !strings.Contains(l[0], "Too many") {
		t.Fatalf("third connection: %q", l)
	}
	a.send("x LOGOUT")
	a.until("x OK", 5*time.Second)
	// a slot is free again
	waitGreeting(t, ts.addr, "after LOGOUT")
	// shutdown says BYE to a connected, idle client
	b.send("y LOGIN u p")
	b.until("y OK", 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	lines := b.until("* BYE", 5*time.Second)
	t.Logf("on shutdown: %q", lines)
}

var uidValidityRE = regexp.MustCompile(`UIDVALIDITY (\d+)`)

// UIDVALIDITY comes from the list key: the same across restarts, and
// different for the list and its years.
func TestUIDValidityStable(t *testing.T) {
	ts := newTestServer(t, synthetic(2), nil)
	c := ts.dial(t, "u")
	v1 := uidValidityRE.FindString(rawStrings(mustCmd(t, c, "SELECT test")))
	v2 := uidValidityRE.FindString(rawStrings(mustCmd(t, c, "SELECT test/2006")))
	if v1 == "" || v1 == v2 {
		t.Fatalf("UIDVALIDITY list %q year %q", v1, v2)
	}
	want := fmt.Sprintf("UIDVALIDITY %d", ts.l.UIDValidity("test"))
	if v1 != want {
		t.Fatalf("%s, want %s", v1, want)
	}
}

// Years follow arrival but never go back: a message whose clock says an
// earlier year than its predecessor's stays in its predecessor's year, so
// each year is one contiguous run of UIDs.
func TestYearMailboxes(t *testing.T) {
	var msgs [][]byte
	for i, y := range []int{2004, 2004, 2006, 2005, 2006, 2009} {
		msgs = append(msgs, fmt.Appendf(nil, "From: a@b\nSubject: s%d\nDate: Mon, 3 Jan %d 10:00:00 +0000\nMessage-ID: <y%d@x>\n\nbody\n", i, y, i))
	}
	ts := newTestServer(t, msgs, nil)
	c := ts.dial(t, "u")
	list := rawStrings(mustCmd(t, c, `LIST "" "test/*"`))
	for _, w := range []string{`"test/2004"`, `"test/2006"`, `"test/2009"`} {
		if !strings.Contains(list, w) {
			t.Errorf("LIST lacks %s:\n%s", w, list)
		}
	}
	if strings.Contains(list, "2005") {
		t.Errorf("a year went back:\n%s", list)
	}
	for box, want := range map[string]string{"test/2004": "SEARCH 1 2", "test/2006": "SEARCH 3 4 5", "test/2009": "SEARCH 6"} {
		mustCmd(t, c, "EXAMINE "+box)
		if got := rawStrings(mustCmd(t, c, "UID SEARCH ALL")); !strings.Contains(got, want+"\n") {
			t.Errorf("%s: %s, want %s", box, got, want)
		}
	}
	// sequence numbers in a year start at 1; UIDs stay article numbers
	mustCmd(t, c, "EXAMINE test/2006")
	if got := rawStrings(mustCmd(t, c, "FETCH 1 (UID)")); !strings.Contains(got, "1 FETCH (UID 3)") {
		t.Errorf("FETCH 1 in test/2006: %s", got)
	}
	st := rawStrings(mustCmd(t, c, `STATUS test/2006 (MESSAGES UIDNEXT)`))
	if !strings.Contains(st, "MESSAGES 3") || !strings.Contains(st, "UIDNEXT 6") {
		t.Errorf("STATUS: %s", st)
	}
	if _, _, err := c.Cmd("SELECT test/2005"); err == nil {
		t.Error("SELECT test/2005 worked")
	}
}

// SELECT's [UNSEEN n] names the first message without \Seen, and is
// left out when every message is seen.
func TestFirstUnseen(t *testing.T) {
	ts := newTestServer(t, synthetic(4), nil)
	c := ts.dial(t, "u")
	mustCmd(t, c, "SELECT test")
	for _, step := range []struct{ store, want string }{
		{`STORE 1 +FLAGS (\Flagged)`, "[UNSEEN 1]"},
		{`STORE 1:2 +FLAGS (\Seen)`, "[UNSEEN 3]"},
		{`STORE 4 +FLAGS (\Seen)`, "[UNSEEN 3]"},
		{`STORE 3 +FLAGS (\Seen)`, ""},
	} {
		mustCmd(t, c, step.store)
		out := rawStrings(mustCmd(t, c, "SELECT test"))
		if step.want == "" && strings.Contains(out, "UNSEEN") || step.want != "" && !strings.Contains(out, step.want) {
			t.Errorf("after %s, SELECT:\n%s\nwant %q", step.store, out, step.want)
		}
	}
}
