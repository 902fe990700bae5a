package smtpin

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

// cutMsg is the message the probe sent: 72,099 bytes, cut after 24,033.
var cutMsg = func() string {
	var b strings.Builder
	b.WriteString("From: a@example.org\r\nTo: demo@localhost\r\nSubject: cut\r\nMessage-ID: <cut@example.org>\r\n\r\n")
	for i := 0; b.Len() < 72099-80; i++ {
		fmt.Fprintf(&b, "line %05d of a long message that a client will not finish sending\r\n", i)
	}
	for b.Len() < 72099-2 {
		b.WriteByte('z')
	}
	b.WriteString("\r\n")
	return b.String()
}()

const cutAt = 24033

// waitNoConns waits until the server has closed every client connection,
// which go-smtp does only after the command in progress (and so any
// delivery) is done. Bounded: 10 s.
func waitNoConns(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open 10 s after the client went away", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCutShort: a client that goes away (FIN or RST) partway through a
// message, in BDAT (RFC 3030) or DATA, over SMTP and LMTP, never gets the
// part that arrived archived; the same message sent again in full is
// archived once. A half-closed client reads no 250, only a 4xx or nothing.
func TestCutShort(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		for _, mode := range []string{"BDAT", "DATA"} {
			for _, how := range []string{"FIN", "RST", "close"} {
				name := fmt.Sprintf("%s/%s/%s", map[bool]string{false: "smtp", true: "lmtp"}[lmtp], mode, how)
				t.Run(name, func(t *testing.T) { testCutShort(t, lmtp, mode, how) })
			}
		}
	}
}

func testCutShort(t *testing.T, lmtp bool, mode, how string) {
	d := &fakeDeliverer{}
	s, addr := start(t, d, &Options{LMTP: lmtp})
	hello := func(c *rawClient) {
		c.greet(lmtp)
		c.cmd("MAIL FROM:<a@example.org>", "250 ")
		c.cmd("RCPT TO:<demo@localhost>", "250 ")
	}

	c := dialRaw(t, addr)
	hello(c)
	if mode == "BDAT" {
		c.send(fmt.Sprintf("BDAT %d LAST\r\n", len(cutMsg)) + cutMsg[:cutAt])
	} else {
		c.cmd("DATA", "354 ")
		c.send(cutMsg[:cutAt])
	}
	tc := c.nc.(*net.TCPConn)
	switch how {
	case "FIN":
		// Half-close: the client can still read what the server says.
		if err := tc.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(c.r)
		if !strings.HasPrefix(string(rest), "421 4.4.2 ") || strings.Contains(string(rest), "250 ") {
			t.Errorf("cut-short message answered %q, want 421 4.4.2", rest)
		}
		tc.Close()
	case "RST":
		tc.SetLinger(0)
		tc.Close()
	case "close":
		tc.Close()
	}
	waitNoConns(t, s)
	if got := d.deliveries(); len(got) != 0 {
		t.Fatalf("cut-short message delivered: %d bytes of %d", len(got[0].raw), len(cutMsg))
	}

	// The client's retry, in full, is archived once.
	c = dialRaw(t, addr)
	hello(c)
	if mode == "BDAT" {
		c.send(fmt.Sprintf("BDAT %d LAST\r\n", len(cutMsg)) + cutMsg)
	} else {
		c.cmd("DATA", "354 ")
		c.send(cutMsg + ".\r\n")
	}
	c.expect("250 ")
	got := d.deliveries()
	if len(got) != 1 || got[0].raw != cutMsg {
		t.Fatalf("after the retry: %d deliveries, want 1 of the whole message", len(got))
	}
}

// TestCutShortBetweenChunks: a client that goes away after a full BDAT
// chunk that is not the LAST gets nothing archived either.
func TestCutShortBetweenChunks(t *testing.T) {
	d := &fakeDeliverer{}
	s, addr := start(t, d, nil)
	c := dialRaw(t, addr)
	c.hello()
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@localhost>", "250 ")
	c.send(fmt.Sprintf("BDAT %d\r\n", cutAt) + cutMsg[:cutAt])
	c.expect("250 ")
	c.nc.(*net.TCPConn).CloseWrite()
	io.ReadAll(c.r)
	waitNoConns(t, s)
	if n := len(d.deliveries()); n != 0 {
		t.Fatalf("%d deliveries of an unfinished message, want 0", n)
	}
}

// TestBDATTimeout: a client that stalls inside a BDAT chunk gets 421 4.4.2
// and is disconnected, like one that stalls in DATA; nothing is delivered.
// (go-smtp v0.26.0 answered 554 5.0.0, a permanent failure, and read on.)
func TestBDATTimeout(t *testing.T) {
	d := &fakeDeliverer{}
	s, addr := start(t, d, &Options{ReadTimeout: 300 * time.Millisecond, DataTimeout: 300 * time.Millisecond})
	c := dialRaw(t, addr)
	c.hello()
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@localhost>", "250 ")
	c.send("BDAT 100 LAST\r\nSubject: slow\r\n")
	c.expect("421 4.4.2")
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("connection still open after 421")
	}
	waitNoConns(t, s)
	if n := len(d.deliveries()); n != 0 {
		t.Fatalf("%d deliveries of a broken message, want 0", n)
	}
}

// TestCutShortTLS: under STARTTLS, a client that ends its side with a TLS
// close_notify inside a BDAT chunk or DATA (the TLS layer then reports a
// clean EOF) gets nothing delivered either, and a 421 4.4.2.
func TestCutShortTLS(t *testing.T) {
	srvTLS, cliTLS := peertest.TLSPair(t)
	for _, mode := range []string{"BDAT", "DATA"} {
		t.Run(mode, func(t *testing.T) {
			d := &fakeDeliverer{}
			s, addr := start(t, d, &Options{TLS: srvTLS})
			c := dialRaw(t, addr)
			c.hello()
			c.cmd("STARTTLS", "220 ")
			tc := tls.Client(c.nc, cliTLS)
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			c = &rawClient{t: t, nc: tc, r: bufio.NewReader(tc)}
			c.cmd("EHLO test.example", "250 ")
			c.cmd("MAIL FROM:<a@example.org>", "250 ")
			c.cmd("RCPT TO:<demo@localhost>", "250 ")
			if mode == "BDAT" {
				c.send(fmt.Sprintf("BDAT %d LAST\r\n", len(cutMsg)) + cutMsg[:cutAt])
			} else {
				c.cmd("DATA", "354 ")
				c.send(cutMsg[:cutAt])
			}
			if err := tc.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			rest, _ := io.ReadAll(c.r)
			if !strings.HasPrefix(string(rest), "421 4.4.2 ") {
				t.Errorf("cut-short message answered %q, want 421 4.4.2", rest)
			}
			tc.Close()
			waitNoConns(t, s)
			if got := d.deliveries(); len(got) != 0 {
				t.Fatalf("cut-short message delivered: %d bytes of %d", len(got[0].raw), len(cutMsg))
			}
		})
	}
}
