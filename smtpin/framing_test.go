package smtpin

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestDotStuffing: DATA is dot-unstuffed (RFC 5321 section 4.5.2) and
// nothing else: a CR after a leading dot is kept, and a CR before the
// CRLF that ends a line is data, so "\r\r\n.\r\n" ends the message.
// (A server that missed that end would answer 421 after DataTimeout.)
func TestDotStuffing(t *testing.T) {
	for _, tc := range []struct{ name, sent, want string }{
		{"dot CR text", "A\r\n.\rB\r\n", "A\r\n\rB\r\n"},
		{"dot CR CR LF", "A\r\n.\r\r\nB\r\n", "A\r\n\r\r\nB\r\n"},
		{"CR before CRLF", "A\r\r\n", "A\r\r\n"},
		{"CR CR before CRLF", "A\r\r\r\nB\r\r\n", "A\r\r\r\nB\r\r\n"},
		{"dot lines", "..A\r\n...\r\n.B\r\n", ".A\r\n..\r\nB\r\n"},
		{"bare LF dot", "A\n.\nB\r\n", "A\n.\nB\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, lmtp := range []bool{false, true} {
				d := &fakeDeliverer{}
				_, addr := start(t, d, &Options{LMTP: lmtp, DataTimeout: 5 * time.Second})
				c := dialRaw(t, addr)
				c.greet(lmtp)
				c.cmd("MAIL FROM:<a@example.org>", "250 ")
				c.cmd("RCPT TO:<demo@localhost>", "250 ")
				c.cmd("DATA", "354 ")
				hdr := "Subject: dots\r\n\r\n"
				c.send(hdr + tc.sent + ".\r\n")
				c.expect("250 ")
				c.cmd("NOOP", "250 ")
				got := d.deliveries()
				if len(got) != 1 || got[0].raw != hdr+tc.want {
					t.Fatalf("lmtp=%v: sent %q, delivered %q, want %q", lmtp, tc.sent, got, hdr+tc.want)
				}
			}
		})
	}
}

// TestLongCommandLine: a command line over MaxLineLength gets 500 5.4.0 and
// the connection closes; the rest of the line is never read as commands.
func TestLongCommandLine(t *testing.T) {
	d := &fakeDeliverer{}
	_, addr := start(t, d, &Options{MaxLineLength: 1000})
	c := dialRaw(t, addr)
	c.hello()
	c.send("NOOP " + strings.Repeat("x", 2000) + "MAIL FROM:<a@example.org>\r\n")
	c.expect("500 5.4.0")
	// EOF or a reset (the server closed with input unread), and no reply.
	if rest, _ := io.ReadAll(c.r); len(rest) != 0 {
		t.Fatalf("after 500: %q, want the connection closed", rest)
	}
}
