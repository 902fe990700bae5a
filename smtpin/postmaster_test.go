package smtpin

import (
	"strings"
	"testing"
)

// TestPostmasterRefused: with no postmaster list configured, RCPT
// TO:<postmaster> (RFC 5321 section 4.5.1, with or without one of our
// domains) is refused with a 550 that says why, not a 501 syntax error, and
// the transaction goes on.
func TestPostmasterRefused(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		d := &fakeDeliverer{}
		_, addr := start(t, d, &Options{LMTP: lmtp})
		c := dialRaw(t, addr)
		c.greet(lmtp)
		c.cmd("MAIL FROM:<a@example.org>", "250 ")
		for _, rcpt := range []string{"<postmaster>", "<Postmaster>", "<POSTMASTER@localhost>"} {
			got := c.cmd("RCPT TO:"+rcpt, "550 5.1.1 ")
			if !strings.Contains(got, "postmaster") {
				t.Errorf("lmtp=%v: RCPT TO:%s = %q, want a 550 about postmaster mail", lmtp, rcpt, got)
			}
		}
		// Elsewhere's postmaster is just an unknown recipient (no relaying).
		c.cmd("RCPT TO:<postmaster@elsewhere.example>", "550 5.1.1 No such list")
		c.cmd("RCPT TO:<demo@localhost>", "250 ")
		c.cmd("DATA", "354 ")
		c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
		c.expect("250 ")
		if got := d.deliveries(); len(got) != 1 || got[0].list != "demo" {
			t.Fatalf("lmtp=%v: deliveries %q, want one to demo", lmtp, got)
		}
	}
}

// TestPostmasterList: with Options.Postmaster, RCPT TO:<postmaster> (any
// case, bare or at one of our domains) is accepted and the message goes to
// that list, once, over SMTP and LMTP; a list's own postmaster@ address
// stays that list's.
func TestPostmasterList(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		d := &fakeDeliverer{}
		_, addr := start(t, d, &Options{LMTP: lmtp, Postmaster: "admin", Lists: map[string]string{
			"dev@lists.example":      "dev",
			"postmaster@own.example": "own",
			"announce@other.example": "announce",
		}})
		c := dialRaw(t, addr)
		c.greet(lmtp)
		c.cmd("MAIL FROM:<a@example.org>", "250 ")
		for _, rcpt := range []string{"<Postmaster>", "<postmaster@LISTS.example>", "<postmaster@other.example>", "<postmaster@localhost>"} {
			c.cmd("RCPT TO:"+rcpt, "250 ")
		}
		c.cmd("RCPT TO:<postmaster@elsewhere.example>", "550 5.1.1 No such list")
		c.cmd("DATA", "354 ")
		c.send("Subject: abuse report\r\n\r\nbody\r\n.\r\n")
		n := 1
		if lmtp {
			n = 4 // one reply per accepted recipient (RFC 2033 section 4.2)
		}
		for range n {
			c.expect("250 ")
		}
		c.cmd("MAIL FROM:<a@example.org>", "250 ")
		c.cmd("RCPT TO:<postmaster@own.example>", "250 ")
		c.cmd("DATA", "354 ")
		c.send("Subject: own\r\n\r\nbody\r\n.\r\n")
		c.expect("250 ")
		got := d.deliveries()
		if len(got) != 2 || got[0].list != "admin" || got[1].list != "own" {
			t.Fatalf("lmtp=%v: deliveries %q, want one to admin, then one to own", lmtp, got)
		}
	}
}
