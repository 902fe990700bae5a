package imapd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"mailswarm/imapd"
)

// warnLog records what a server logs at WARN and above.
type warnLog struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnLog) WithAttrs([]slog.Attr) slog.Handler           { return w }
func (w *warnLog) WithGroup(string) slog.Handler                { return w }
func (w *warnLog) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
	w.lines = append(w.lines, s)
	return nil
}

func (w *warnLog) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

// TestClientMistakes: a malformed value in a command is the client's
// mistake: BAD [CLIENTBUG], nothing logged above INFO. Before (go-imap
// beta.8 unpatched) each was NO [SERVERBUG] "Internal server error"
// with a WARN line: bad number sets, invalid modified UTF-7, bad dates,
// bad SASL base64 in an initial response.
func TestClientMistakes(t *testing.T) {
	log := &warnLog{}
	ts := newTestServer(t, synthetic(3), &imapd.Options{Logger: slog.New(log)})
	pre := dialRaw(t, ts.addr)
	pre.until("* OK", 5*time.Second)
	pre.send("x AUTHENTICATE PLAIN !!!notbase64")
	if l := pre.until("x ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "x BAD") {
		t.Errorf("AUTHENTICATE PLAIN with bad base64: %q, want BAD", l)
	}
	rc := selected(t, ts.addr)
	for _, cmd := range []string{
		"FETCH 0 FLAGS",
		"FETCH 1:99999999999 FLAGS",
		"UID FETCH 0:* FLAGS",
		"STATUS &Jjo!- (MESSAGES)",
		"SELECT &AGE-bad",
		"SEARCH SINCE 99-Foo-2020",
		"SEARCH BEFORE 1-Jan-20x6",
		"SEARCH " + strings.Repeat("(", 1001) + "ALL" + strings.Repeat(")", 1001),
		"STORE 1 +FLAGS (" + strings.Repeat("(", 1001),
	} {
		rc.send("c " + cmd)
		l := rc.until("c ", 5*time.Second)
		if last := l[len(l)-1]; !strings.HasPrefix(last, "c BAD") || strings.Contains(last, "SERVERBUG") {
			t.Errorf("%.40s: %q, want BAD", cmd, last)
		}
	}
	rc.send("n NOOP")
	rc.until("n OK", 5*time.Second)
	// a line that is no command at all: go-imap closes the connection
	bad := dialRaw(t, ts.addr)
	bad.until("* OK", 5*time.Second)
	bad.send(" (((")
	for range 10 {
		if _, err := bad.readLine(5 * time.Second); err != nil {
			break
		}
	}
	time.Sleep(100 * time.Millisecond) // its log line, if any, is written after the close
	if w := log.all(); len(w) > 0 {
		t.Errorf("client mistakes logged as the server's: %q", w)
	}
}

// TestOverlongLine: a command line over imapserver's 50 KiB is refused
// whole: BAD [TOOBIG] once, and nothing of the rest of the line is read
// as a command. Before, the decoder stopped at 50 KiB and what followed
// on the line was parsed as new commands: a STATUS placed there ran.
func TestOverlongLine(t *testing.T) {
	ts := newTestServer(t, synthetic(3), nil)
	rc := loggedIn(t, dialRaw(t, ts.addr))
	// where beta.8 resumed after stopping at 50 KiB: a command
	head := "c SEARCH SUBJECT "
	hidden := "d STATUS test (MESSAGES)"
	line := head + strings.Repeat("x", 50*1024+2-len(head)) + hidden
	rc.send(line)
	l := rc.until("c ", 10*time.Second)
	if last := l[len(l)-1]; !strings.HasPrefix(last, "c BAD [TOOBIG]") {
		t.Errorf("over-long SEARCH: %q, want BAD [TOOBIG]", last)
	}
	rc.send("e NOOP")
	l = rc.until("e ", 5*time.Second)
	for _, s := range l {
		if strings.HasPrefix(s, "* STATUS") || strings.HasPrefix(s, "d ") || strings.Contains(s, "Unknown command") {
			t.Errorf("the rest of an over-long line was read as commands: %q", l)
			break
		}
	}
	if !strings.HasPrefix(l[len(l)-1], "e OK") {
		t.Errorf("NOOP after an over-long line: %q", l)
	}
	// a non-synchronizing literal at the end of the over-long line is
	// part of it too
	rc.send(head + strings.Repeat("x", 60000) + " {30+}")
	rc.send("f STATUS test (MESSAGES)\r\nxxxx")
	rc.send("g NOOP")
	l = rc.until("g ", 10*time.Second)
	if !strings.HasPrefix(l[0], "c BAD [TOOBIG]") || slicesContain(l, "* STATUS") || !strings.HasPrefix(l[len(l)-1], "g OK") {
		t.Errorf("over-long line ending in a literal: %q", l)
	}
	// and with the limit falling inside the literal's announcement
	// ("{3" | "0+}"): before, the decoder had eaten its start and the
	// literal's lines ran as commands
	for n := 50*1024 - 30; n < 50*1024+10; n++ {
		rc.send(head + strings.Repeat("x", n-len(head)) + " SUBJECT {30+}")
		rc.send("f STATUS test (MESSAGES)\r\nxxxx")
		rc.send("g NOOP")
		l = rc.until("g ", 10*time.Second)
		if slicesContain(l, "* STATUS") || strings.HasPrefix(l[0], "f ") || !strings.HasPrefix(l[len(l)-1], "g OK") {
			t.Fatalf("line of %d bytes ending in a literal: %q", n+len(" SUBJECT {30+}"), l)
		}
	}
}

// TestLiteralRefusals: literals the server will not take are refused at
// once and never read as commands.
func TestLiteralRefusals(t *testing.T) {
	ts := newTestServer(t, synthetic(1), nil)

	// a synchronizing literal over 4 KiB in LOGIN: NO [TOOBIG] at once
	// (before the connection layer and the patch: a 30 s wait)
	rc := dialRaw(t, ts.addr)
	rc.until("* OK", 5*time.Second)
	rc.send("a LOGIN {4294967295}")
	if l := rc.until("a ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "a NO [TOOBIG]") {
		t.Errorf("LOGIN {4294967295}: %q, want NO [TOOBIG]", l)
	}

	// APPEND before login: refused before "+" (before: "+ Ready for
	// literal data" and 100 MiB read, then NO)
	rc.send("b APPEND test {104857600}")
	l := rc.until("b ", 5*time.Second)
	if len(l) != 1 || !strings.HasPrefix(l[0], "b BAD") {
		t.Errorf("APPEND before login: %q, want BAD without +", l)
	}
	rc.send("c NOOP")
	rc.until("c OK", 5*time.Second)

	// a malformed APPEND after login gets an answer (go-imap returned a
	// nil error there: no answer at all, the client waited for ever)
	rc.send("l LOGIN u p")
	rc.until("l OK", 5*time.Second)
	rc.send("m APPEND test {3+}")
	rc.send("abc garbage")
	if l := rc.until("m ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "m BAD") {
		t.Errorf("APPEND with garbage after its literal: %q, want BAD", l)
	}

	// a non-synchronizing literal over LITERAL-'s 4096 octets: refused,
	// and the connection closed rather than its octets read as commands
	// (before: its lines ran as commands)
	for _, cmd := range []string{"d LOGIN {5000+}", "d APPEND test {5000+}"} {
		rc := dialRaw(t, ts.addr)
		rc.until("* OK", 5*time.Second)
		rc.send(cmd)
		rc.trySend(strings.Repeat("e CAPABILITY\r\n", 5000/14))
		var got []string
		for range 100 {
			s, err := rc.readLine(5 * time.Second)
			if err != nil { // EOF, or a reset: the server closed with our octets unread
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Errorf("%s: still open after %q", cmd, got)
				}
				break
			}
			got = append(got, s)
		}
		refused := len(got) > 0 && strings.HasPrefix(got[0], "d BAD")
		if !refused || len(got) != 2 || !strings.HasPrefix(got[1], "* BYE") {
			t.Errorf("%s: %q, want BAD and the connection closed", cmd, got)
		}
	}
}

// dialFrom connects to addr from the loopback address local.
func dialFrom(t *testing.T, local, addr string) *rawConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, r: bufio.NewReader(c)}
}

// TestPreAuthShare: one address holds at most MaxPreAuthPerClient
// connections that have not logged in; others are not affected, and a
// login frees the slot. Before, only the 1,000 connections in all were
// counted: one address could hold them all without logging in.
func TestPreAuthShare(t *testing.T) {
	ts := newTestServer(t, synthetic(1), &imapd.Options{MaxConns: 40, MaxPreAuthPerClient: 3})
	var held []*rawConn
	for range 3 {
		rc := dialFrom(t, "127.0.0.1", ts.addr)
		rc.until("* OK", 5*time.Second)
		held = append(held, rc)
	}
	over := dialFrom(t, "127.0.0.1", ts.addr)
	if l, _ := over.readLine(5 * time.Second); !strings.HasPrefix(l, "* BYE [UNAVAILABLE]") {
		t.Fatalf("fourth connection from one address not logged in: %q, want BYE", l)
	}
	other := dialFrom(t, "127.0.0.2", ts.addr)
	other.until("* OK", 5*time.Second)
	held[0].send("a LOGIN u p")
	held[0].until("a OK", 5*time.Second)
	// the logged-in connection no longer counts
	waitGreeting(t, ts.addr, "after a login")
}

// TestLoginTimeout: a connection that does not log in is closed after
// LoginTimeout whatever it sends (before: a NOOP every 29 s held it
// forever); one that logged in is not.
func TestLoginTimeout(t *testing.T) {
	ts := newTestServer(t, synthetic(1), &imapd.Options{LoginTimeout: time.Second})
	in := loggedIn(t, dialRaw(t, ts.addr))
	rc := dialRaw(t, ts.addr)
	rc.until("* OK", 5*time.Second)
	var got []string
	closed := false
	for i := range 100 { // NOOP every 100 ms, for at most 10 s
		if err := rc.trySend(fmt.Sprintf("n%d NOOP", i)); err != nil {
			closed = true
			break
		}
		l, err := rc.tryUntil(fmt.Sprintf("n%d ", i), 5*time.Second)
		got = append(got, l...)
		if err != nil {
			closed = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !closed || !slicesContainPrefix(got, "* BYE") {
		t.Fatalf("NOOPs without login: closed %v, read %q; want BYE and the connection closed", closed, got)
	}
	in.send("b NOOP")
	in.until("b OK", 5*time.Second)
}

func slicesContainPrefix(lines []string, p string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// TestInternalErrorLogged: a failure of the server is answered with
// generic text, and logged once with the user, mailbox and command.
// Before, the NO text carried the error itself (SQL errors, file paths:
// 11 sites) and nothing was logged.
func TestInternalErrorLogged(t *testing.T) {
	log := &warnLog{}
	ts := newTestServer(t, synthetic(3), &imapd.Options{Logger: slog.New(log)})
	rc := dialRaw(t, ts.addr)
	rc.until("* OK", 5*time.Second)
	rc.send("a LOGIN someone p")
	rc.until("a OK", 5*time.Second)
	rc.send("s SELECT test")
	rc.until("s OK", 5*time.Second)
	ts.a.Close() // every read of the archive fails from here
	rc.send("c UID FETCH 1:* (BODY.PEEK[])")
	l := rc.until("c ", 5*time.Second)
	if last := l[len(l)-1]; last != "c NO [SERVERBUG] Internal error, logged on the server" {
		t.Errorf("FETCH on a closed archive: %q", l)
	}
	w := log.all()
	if len(w) != 1 || !strings.Contains(w[0], "user=someone") || !strings.Contains(w[0], "mailbox=test") || !strings.Contains(w[0], "command=UID FETCH") {
		t.Errorf("logged: %q, want one line with user, mailbox and command", w)
	}
}

// TestLoginBrakes: password checks run one at a time on a 2-core machine
// (half the cores), and a failed login is answered no sooner than
// LoginFailureDelay. Before, 8 clients guessing at once ran 8 bcrypt
// checks at once, and a wrong password was answered at once.
func TestLoginBrakes(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, synthetic(1), nil)
	ts.srv.Close() // serve with the hook in place from the start
	var running, most atomic.Int64
	ts.startHook(t, &imapd.Options{Users: map[string]string{"alice": string(hash)}, RequireLogin: true,
		LoginFailureDelay: 300 * time.Millisecond}, func(s *imapd.Server) {
		imapd.SetCompare(s, func(h, p []byte) error {
			n := running.Add(1)
			defer running.Add(-1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(50 * time.Millisecond)
			return bcrypt.CompareHashAndPassword(h, p)
		})
	})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			rc := dialRaw(t, ts.addr)
			rc.tryUntil("* OK", 5*time.Second)
			start := time.Now()
			rc.trySend(fmt.Sprintf("a LOGIN alice wrong%d", i))
			l, err := rc.tryUntil("a ", 20*time.Second)
			if err != nil || !strings.HasPrefix(l[len(l)-1], "a NO") {
				t.Errorf("wrong password: %q, %v", l, err)
			} else if d := time.Since(start); d < 300*time.Millisecond {
				t.Errorf("wrong password answered after %v, before LoginFailureDelay (300ms)", d)
			}
		})
	}
	wg.Wait()
	if want := int64(max(1, runtime.GOMAXPROCS(0)/2)); most.Load() > want {
		t.Errorf("%d password checks ran at once, want at most %d", most.Load(), want)
	}
}

// TestShutdownDuringFailedLogin: Shutdown does not wait out a failed
// login's delay (before, it did: with the delay over the deadline,
// Shutdown returned "context deadline exceeded").
func TestShutdownDuringFailedLogin(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, synthetic(1), nil)
	ts.srv.Close()
	var checked atomic.Int64
	ts.startHook(t, &imapd.Options{Users: map[string]string{"alice": string(hash)}, LoginFailureDelay: time.Minute},
		func(s *imapd.Server) {
			imapd.SetCompare(s, func(h, p []byte) error {
				defer checked.Add(1)
				return bcrypt.CompareHashAndPassword(h, p)
			})
		})
	rc := dialRaw(t, ts.addr)
	rc.until("* OK", 5*time.Second)
	rc.send("a LOGIN alice wrong")
	for i := 0; checked.Load() == 0 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // into the delay
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown during a failed login's delay: %v", err)
	}
}

// TestAnonymousKeepsPreAuthShare: AUTHENTICATE ANONYMOUS takes no
// password, so it does not leave the address's share of connections
// without one (before, anyone could log in anonymously and hold every
// slot from one address).
func TestAnonymousKeepsPreAuthShare(t *testing.T) {
	ts := newTestServer(t, synthetic(1), &imapd.Options{Anonymous: true, MaxConns: 40, MaxPreAuthPerClient: 2})
	for i := range 2 {
		rc := dialRaw(t, ts.addr)
		rc.until("* OK", 5*time.Second)
		rc.send(fmt.Sprintf("a%d AUTHENTICATE ANONYMOUS =", i))
		rc.until(fmt.Sprintf("a%d OK", i), 5*time.Second)
	}
	over := dialRaw(t, ts.addr)
	if l, _ := over.readLine(5 * time.Second); !strings.HasPrefix(l, "* BYE [UNAVAILABLE]") {
		t.Errorf("third connection after two anonymous logins from one address: %q, want BYE", l)
	}
}
