package imapd_test

import (
	"bufio"
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"mailswarm/imapd"
	"mailswarm/internal/peertest"
)

// Implicit TLS (ServeTLS) and STARTTLS on the plain listener.
func TestTLS(t *testing.T) {
	serverTLS, clientTLS := peertest.TLSPair(t)
	ts := newTestServer(t, synthetic(3), &imapd.Options{TLS: serverTLS})

	// imaps
	rc := loggedIn(t, dialImaps(t, ts, clientTLS))
	rc.send("b SELECT test")
	if l := rc.until("b OK", 5*time.Second); !slicesContain(l, "* 3 EXISTS") {
		t.Fatalf("imaps SELECT: %q", l)
	}

	// STARTTLS on the plain port
	p := dialRaw(t, ts.addr)
	if l := p.until("* OK", 5*time.Second); !strings.Contains(l[0], "STARTTLS") {
		t.Fatalf("greeting does not offer STARTTLS: %q", l)
	}
	p.send("a STARTTLS")
	p.until("a OK", 5*time.Second)
	tc := tls.Client(p.c, clientTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	s := &rawConn{t: t, c: tc, r: bufio.NewReader(tc)}
	s.send("b LOGIN u p")
	s.until("b OK", 5*time.Second)
	s.send("c FETCH 1:* (UID)") // not selected: BAD, then a real command
	s.until("c ", 5*time.Second)
	s.send("d EXAMINE test")
	if l := s.until("d OK", 5*time.Second); !slicesContain(l, "* 3 EXISTS") {
		t.Fatalf("EXAMINE after STARTTLS: %q", l)
	}
}
