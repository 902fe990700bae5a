package imapd_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"mailswarm/imapd"
	"mailswarm/internal/peertest"
)

// capsOf returns the capabilities of a "* CAPABILITY ..." line or of the
// [CAPABILITY ...] code of a status line.
func capsOf(t *testing.T, line string) []string {
	t.Helper()
	if rest, ok := strings.CutPrefix(line, "* CAPABILITY "); ok {
		return strings.Fields(rest)
	}
	_, rest, ok := strings.Cut(line, "[CAPABILITY ")
	if !ok {
		t.Fatalf("no capabilities in %q", line)
	}
	list, _, _ := strings.Cut(rest, "]")
	return strings.Fields(list)
}

// checkCaps: exactly one LITERAL variant (RFC 7888 §4: LITERAL- is the
// subset a server offers instead of LITERAL+, never beside it), and ID.
func checkCaps(t *testing.T, where string, caps []string) {
	t.Helper()
	n := 0
	for _, c := range caps {
		if c == "LITERAL+" || c == "LITERAL-" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%s: %d LITERAL capabilities in %q, want 1", where, n, caps)
	}
	if !slices.Contains(caps, "ID") {
		t.Errorf("%s: no ID in %q", where, caps)
	}
}

// TestCapabilityRaw reads the capability lists a client sees on a raw
// socket: greeting, CAPABILITY before and after LOGIN, LOGIN's OK.
// Before, every authenticated list held both LITERAL+ and LITERAL-, none
// held ID, and ID was answered BAD (before login: BYE and hang up).
func TestCapabilityRaw(t *testing.T) {
	ts := newTestServer(t, synthetic(2), nil)
	rc := dialRaw(t, ts.addr)
	greeting := rc.until("* OK", 5*time.Second)
	checkCaps(t, "greeting", capsOf(t, greeting[len(greeting)-1]))
	rc.send("a CAPABILITY")
	l := rc.until("a OK", 5*time.Second)
	checkCaps(t, "CAPABILITY before login", capsOf(t, l[0]))
	rc.send("b ID NIL")
	l = rc.until("b ", 5*time.Second)
	if !strings.HasPrefix(l[len(l)-1], "b OK") || len(l) != 2 || !strings.HasPrefix(l[0], `* ID ("name" "mailswarm"`) {
		t.Fatalf("ID before login: %q", l)
	}
	rc.send("c LOGIN u p")
	l = rc.until("c OK", 5*time.Second)
	checkCaps(t, "LOGIN OK", capsOf(t, l[len(l)-1]))
	rc.send("d CAPABILITY")
	l = rc.until("d OK", 5*time.Second)
	checkCaps(t, "CAPABILITY after login", capsOf(t, l[0]))
	// A literal in ID (RFC 2971 allows any string), pipelined after
	// another command, and a non-synchronizing literal (RFC 7888).
	rc.send(`e NOOP` + "\r\n" + `f ID ("name" {7}`)
	if l := rc.until("+ ", 5*time.Second); !slicesContain(l, "e OK NOOP completed") {
		t.Fatalf("NOOP before ID: %q", l)
	}
	rc.send(`rawtest "version" {3+}` + "\r\n" + `1.0)`)
	l = rc.until("f ", 5*time.Second)
	if !strings.HasPrefix(l[len(l)-1], "f OK") || !strings.HasPrefix(l[0], "* ID (") {
		t.Fatalf("ID with literals: %q", l)
	}
	rc.send(`g ID ("name"`)
	if l := rc.until("g ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "g BAD") {
		t.Fatalf("malformed ID: %q", l)
	}
	rc.send("h SELECT test")
	if l := rc.until("h OK", 5*time.Second); !slicesContain(l, "* 2 EXISTS") {
		t.Fatalf("SELECT after ID: %q", l)
	}
}

// TestIDClient: go-imap's own client sends ID (as Thunderbird, Apple Mail
// and K-9 do) before and after logging in, and reads the server's name.
func TestIDClient(t *testing.T) {
	ts := newTestServer(t, synthetic(2), nil)
	c, err := imapclient.DialInsecure(ts.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, step := range []string{"before login", "after login"} {
		if step == "after login" {
			if err := c.Login("u", "p").Wait(); err != nil {
				t.Fatal(err)
			}
		}
		caps, err := c.Capability().Wait()
		if err != nil {
			t.Fatal(err)
		}
		if !caps.Has(imap.CapID) {
			t.Errorf("%s: ID not offered: %v", step, caps)
		}
		id, err := c.ID(&imap.IDData{Name: "imapclient", Version: "2"}).Wait()
		if err != nil {
			t.Fatalf("ID %s: %v", step, err)
		}
		if id == nil || id.Name != "mailswarm" {
			t.Fatalf("ID %s = %+v, want name mailswarm", step, id)
		}
	}
	if _, err := c.Select("test", nil).Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestIDTLS: ID and the capability lists after STARTTLS and on implicit
// TLS, where STARTTLS is no longer (or never) offered.
func TestIDTLS(t *testing.T) {
	serverTLS, clientTLS := peertest.TLSPair(t)
	ts := newTestServer(t, synthetic(1), &imapd.Options{TLS: serverTLS})

	p := dialRaw(t, ts.addr)
	l := p.until("* OK", 5*time.Second)
	if caps := capsOf(t, l[0]); !slices.Contains(caps, "STARTTLS") {
		t.Fatalf("greeting does not offer STARTTLS: %q", caps)
	}
	p.send("a STARTTLS")
	p.until("a OK", 5*time.Second)
	tc := tls.Client(p.c, clientTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	s := &rawConn{t: t, c: tc, r: bufio.NewReader(tc)}
	for i, tag := range []string{"b", "d"} {
		s.send(tag + " CAPABILITY")
		caps := capsOf(t, s.until(tag+" OK", 5*time.Second)[0])
		checkCaps(t, "after STARTTLS", caps)
		if slices.Contains(caps, "STARTTLS") {
			t.Errorf("STARTTLS offered again after STARTTLS: %q", caps)
		}
		if i == 0 {
			s.send("c LOGIN u p")
			s.until("c OK", 5*time.Second)
		}
	}
	s.send("e ID NIL")
	if l := s.until("e ", 5*time.Second); !strings.HasPrefix(l[0], `* ID ("name" "mailswarm"`) {
		t.Fatalf("ID after STARTTLS: %q", l)
	}
	s.send("f STARTTLS")
	if l := s.until("f ", 5*time.Second); !strings.HasPrefix(l[0], "f BAD") {
		t.Fatalf("second STARTTLS: %q", l)
	}

	rc := dialImaps(t, ts, clientTLS)
	caps := capsOf(t, rc.until("* OK", 5*time.Second)[0])
	checkCaps(t, "imaps greeting", caps)
	if slices.Contains(caps, "STARTTLS") {
		t.Errorf("imaps greeting offers STARTTLS: %q", caps)
	}
	rc.send("a ID NIL")
	if l := rc.until("a ", 5*time.Second); !strings.HasPrefix(l[0], `* ID ("name" "mailswarm"`) {
		t.Fatalf("ID on imaps: %q", l)
	}
}

// TestSTARTTLSInjection: commands pipelined behind STARTTLS in plain text
// are the start of the TLS handshake to the server, never commands
// (CVE-2011-0411): the server must not answer them.
func TestSTARTTLSInjection(t *testing.T) {
	serverTLS, _ := peertest.TLSPair(t)
	ts := newTestServer(t, synthetic(1), &imapd.Options{TLS: serverTLS})
	p := dialRaw(t, ts.addr)
	p.until("* OK", 5*time.Second)
	p.send("a STARTTLS\r\nb ID NIL\r\nc CAPABILITY")
	p.until("a OK", 5*time.Second)
	for {
		l, err := p.readLine(5 * time.Second)
		if err != nil {
			break // the handshake failed on our plain text: hung up
		}
		if strings.HasPrefix(l, "* ") || strings.HasPrefix(l, "b ") || strings.HasPrefix(l, "c ") {
			t.Fatalf("answered a command injected after STARTTLS: %q", l)
		}
	}
}

// TestIDTooBig: a client streaming literals in one ID command (each
// {10+} within LITERAL-'s 4096 octets, so nothing refuses it alone) is
// refused with BAD [TOOBIG] once the command passes the limit, while it
// is still sending: the layer stops collecting there, so memory stays
// bounded whatever the client sends. The rest of the command is read and
// dropped, and the connection stays usable. Before, the layer collected
// the whole command (here 20,000 literals, 340 KB; a client could go on
// for ever) and answered only at its end.
func TestIDTooBig(t *testing.T) {
	ts := newTestServer(t, synthetic(1), nil)
	rc := dialRaw(t, ts.addr)
	rc.until("* OK", 5*time.Second)
	answered := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		var b strings.Builder
		b.WriteString(`a ID ("k" {10+}` + "\r\n")
		for range 20000 {
			b.WriteString(`0123456789 {10+}` + "\r\n")
		}
		if err := rc.trySend(strings.TrimSuffix(b.String(), "\r\n")); err != nil {
			sent <- err
			return
		}
		// end the command only once answered (or given up on)
		select {
		case <-answered:
		case <-time.After(10 * time.Second):
		}
		sent <- rc.trySend(`0123456789)`)
	}()
	l, err := rc.tryUntil("a ", 5*time.Second)
	close(answered)
	if err != nil {
		t.Fatalf("no answer to an ID of 340 KB while it was being sent: %v", err)
	}
	if !strings.HasPrefix(l[len(l)-1], "a BAD [TOOBIG]") {
		t.Fatalf("ID of 340 KB: %q, want a BAD [TOOBIG]", l)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	rc.send("b ID NIL")
	if l := rc.until("b ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "b OK") || !strings.HasPrefix(l[0], "* ID (") {
		t.Fatalf("ID after the refused one: %q", l)
	}
	// A synchronizing literal that would pass the limit is refused
	// before the client sends it.
	big := `c ID (` + strings.Repeat(`"k" "`+strings.Repeat("v", 1000)+`" `, 62) + `"k" {4000}`
	rc.send(big)
	if l := rc.until("c ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "c BAD [TOOBIG]") {
		t.Fatalf("ID over the limit at a synchronizing literal: %q", l)
	}
	rc.send("d LOGIN u p")
	rc.until("d OK", 5*time.Second)
}

// TestIDRefusedLiteral: imapserver refuses a synchronizing literal over
// 4096 octets outside APPEND without sending "+", so the client never
// sends it, and the next bytes are commands again. beta.8 as released
// dropped its own NO [TOOBIG] and waited for more of the command (the
// connection layer used to end the command for it; the carried go-imap
// answers at once). Before either, nothing was answered: the layer
// waited for the 5000 bytes to pass through, then would have passed the
// next commands through unseen (ID to imapserver, BAD; CAPABILITY not
// amended).
func TestIDRefusedLiteral(t *testing.T) {
	ts := newTestServer(t, synthetic(2), nil)
	rc := selected(t, ts.addr)
	rc.send("x SEARCH SUBJECT {5000}")
	if l := rc.until("x ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "x NO [TOOBIG]") || slicesContain(l, "+ Ready for literal data") {
		t.Fatalf("SEARCH with a literal of 5000: %q, want NO [TOOBIG]", l)
	}
	rc.send("b ID NIL")
	if l := rc.until("b ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "b OK") || !strings.HasPrefix(l[0], `* ID ("name" "mailswarm"`) {
		t.Fatalf("ID after a refused literal: %q", l)
	}
	rc.send("c CAPABILITY")
	checkCaps(t, "CAPABILITY after a refused literal", capsOf(t, rc.until("c OK", 5*time.Second)[0]))
	// a literal imapserver takes is still passed through whole
	rc.send("y SEARCH SUBJECT {9}")
	rc.until("+ ", 5*time.Second)
	rc.send("b ID NIL")
	if l := rc.until("y ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "y OK") {
		t.Fatalf("SEARCH with a literal: %q", l)
	}
	// refused after a literal taken, and a command answered before its
	// literal (BAD, unknown): the next line is a command either way
	rc.send("z SEARCH SUBJECT {3}")
	rc.until("+ ", 5*time.Second)
	rc.send("abc SUBJECT {4097}")
	if l := rc.until("z ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "z NO [TOOBIG]") {
		t.Fatalf("second literal of 4097: %q", l)
	}
	// a literal announced across the layer's 4 KiB reads ("{8" | "}"):
	// its octets are the literal, not an ID command
	long := "w SEARCH OR SUBJECT " + strings.Repeat("a", 4065) + " SUBJECT {8}"
	if strings.Index(long, "{") != 4094 {
		t.Fatalf("literal at %d", strings.Index(long, "{"))
	}
	rc.send(long)
	rc.until("+ ", 5*time.Second)
	rc.send("x ID NIL")
	if l := rc.until("w ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "w OK") {
		t.Fatalf("SEARCH with a literal after 4 KiB: %q", l)
	}
	rc.send("f FOO {5}")
	if l := rc.until("f ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "f BAD") {
		t.Fatalf("unknown command with a literal: %q", l)
	}
	rc.send("g ID NIL")
	if l := rc.until("g ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "g OK") || !strings.HasPrefix(l[0], "* ID (") {
		t.Fatalf("ID after the refused literals: %q", l)
	}
}

// TestIDLongLine: RFC 2971 §3.3 allows 30 pairs with values of up to
// 1024 octets, more than the layer's 4 KiB line buffer. Before, such a
// line went to imapserver, which answered BAD (before login: BYE).
func TestIDLongLine(t *testing.T) {
	ts := newTestServer(t, synthetic(1), nil)
	rc := dialRaw(t, ts.addr)
	rc.until("* OK", 5*time.Second)
	var b strings.Builder
	b.WriteString("a ID (")
	for i := range 30 {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, `"field-%02d" "%s\"%s"`, i, strings.Repeat("x", 500), strings.Repeat("y", 500))
	}
	b.WriteString(")")
	rc.send(b.String())
	if l := rc.until("a ", 5*time.Second); !strings.HasPrefix(l[len(l)-1], "a OK") || !strings.HasPrefix(l[0], `* ID ("name" "mailswarm"`) {
		t.Fatalf("ID of %d octets: %q", b.Len(), l)
	}
	rc.send("b CAPABILITY")
	checkCaps(t, "CAPABILITY after a long ID", capsOf(t, rc.until("b OK", 5*time.Second)[0]))
}
