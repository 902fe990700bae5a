package imapserver_test

// Tests of the fixes mailswarm carries (MAILSWARM.md), in upstream's
// terms: imapmemserver over a loopback socket, raw protocol lines.

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

type rawClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func startServer(t *testing.T) *rawClient {
	mem := imapmemserver.New()
	user := imapmemserver.NewUser("user", "pass")
	if err := user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(user)
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return mem.NewSession(), nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &rawClient{t: t, c: c, r: bufio.NewReader(c)}
	rc.until("* OK")
	return rc
}

func (rc *rawClient) send(s string) {
	rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := rc.c.Write([]byte(s + "\r\n")); err != nil {
		rc.t.Fatal(err)
	}
}

// until reads lines up to one starting with prefix; it returns them all.
func (rc *rawClient) until(prefix string) []string {
	rc.t.Helper()
	var lines []string
	rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		l, err := rc.r.ReadString('\n')
		if err != nil {
			rc.t.Fatalf("waiting for %q: %v (read %q)", prefix, err, lines)
		}
		lines = append(lines, strings.TrimRight(l, "\r\n"))
		if strings.HasPrefix(l, prefix) {
			return lines
		}
	}
}

func TestMalformedValueIsClientBug(t *testing.T) {
	rc := startServer(t)
	rc.send("a LOGIN user pass")
	rc.until("a OK")
	rc.send("b SELECT INBOX")
	rc.until("b OK")
	for _, cmd := range []string{"FETCH 0 FLAGS", "STATUS &Jjo!- (MESSAGES)", "SEARCH SINCE 99-Foo-2020"} {
		rc.send("c " + cmd)
		if l := rc.until("c "); !strings.HasPrefix(l[len(l)-1], "c BAD [CLIENTBUG]") {
			t.Errorf("%s: %q, want BAD [CLIENTBUG]", cmd, l)
		}
	}
}

func TestOverlongLineDiscarded(t *testing.T) {
	rc := startServer(t)
	rc.send("a LOGIN user pass")
	rc.until("a OK")
	head := "c SEARCH SUBJECT "
	rc.send(head + strings.Repeat("x", 50*1024+2-len(head)) + "d STATUS INBOX (MESSAGES)")
	if l := rc.until("c "); !strings.HasPrefix(l[len(l)-1], "c BAD [TOOBIG]") {
		t.Errorf("over-long line: %q", l)
	}
	rc.send("e NOOP")
	if l := rc.until("e "); len(l) != 1 || !strings.HasPrefix(l[0], "e OK") {
		t.Errorf("after an over-long line: %q, want only e OK", l)
	}
	// a non-synchronizing literal at the end of the line belongs to it,
	// also when the limit falls inside its announcement
	for n := 50*1024 - 30; n < 50*1024+10; n++ {
		rc.send(head + strings.Repeat("x", n-len(head)) + " SUBJECT {30+}")
		rc.send("f STATUS INBOX (MESSAGES)\r\nxxx")
		rc.send("g NOOP")
		l := rc.until("g ")
		for _, s := range l {
			if strings.HasPrefix(s, "* STATUS") || strings.HasPrefix(s, "f ") {
				t.Fatalf("line of %d bytes ending in a literal: %q", n+len(" SUBJECT {30+}"), l)
			}
		}
	}
}

func TestRefusedLiterals(t *testing.T) {
	rc := startServer(t)
	rc.send("a LOGIN {5000}")
	if l := rc.until("a "); !strings.HasPrefix(l[len(l)-1], "a NO [TOOBIG]") {
		t.Errorf("LOGIN with a synchronizing literal of 5000: %q", l)
	}
	rc.send("b APPEND INBOX {100}")
	if l := rc.until("b "); len(l) != 1 || !strings.HasPrefix(l[0], "b BAD") {
		t.Errorf("APPEND before login: %q, want BAD without +", l)
	}
	rc.send("m LOGIN user pass")
	rc.until("m OK")
	rc.send("n APPEND INBOX {3+}")
	rc.send("abc garbage")
	if l := rc.until("n "); !strings.HasPrefix(l[len(l)-1], "n BAD") {
		t.Errorf("APPEND with garbage after its literal: %q, want BAD", l)
	}
	rc = startServer(t)
	rc.send("c LOGIN {5000+}")
	rc.send(strings.Repeat("d LOGIN user pass\r\n", 5000/19+1))
	l := rc.until("* BYE")
	if len(l) != 2 || !strings.HasPrefix(l[0], "c BAD [TOOBIG]") {
		t.Errorf("LOGIN with a non-synchronizing literal of 5000: %q", l)
	}
}
