package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
	"mailswarm/message"
)

// smtpConn speaks SMTP or LMTP by hand to a running serve.
type smtpConn struct {
	t  *testing.T
	nc *net.TCPConn
	r  *bufio.Reader
}

func dialSMTP(t *testing.T, port int, lmtp bool) *smtpConn {
	t.Helper()
	nc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	t.Cleanup(func() { nc.Close() })
	c := &smtpConn{t: t, nc: nc.(*net.TCPConn), r: bufio.NewReader(nc)}
	c.expect("220 ")
	if lmtp {
		c.cmd("LHLO test.example", "250 ")
	} else {
		c.cmd("EHLO test.example", "250 ")
	}
	return c
}

func (c *smtpConn) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// expect reads one reply (the last line of a multi-line one) and fails
// unless it starts with prefix.
func (c *smtpConn) expect(prefix string) {
	c.t.Helper()
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply: %v (got %q), want %q", err, line, prefix)
		}
		if len(line) >= 4 && line[3] == '-' {
			continue
		}
		if !strings.HasPrefix(line, prefix) {
			c.t.Fatalf("reply %q, want %q", line, prefix)
		}
		return
	}
}

func (c *smtpConn) cmd(line, prefix string) {
	c.t.Helper()
	c.send(line + "\r\n")
	c.expect(prefix)
}

// cutOff half-closes the connection and reads what the server still says
// until it closes its side too (so it is done with the message).
func (c *smtpConn) cutOff() {
	c.t.Helper()
	if err := c.nc.CloseWrite(); err != nil {
		c.t.Fatal(err)
	}
	rest, _ := io.ReadAll(c.r)
	if bytes.Contains(rest, []byte("250 ")) {
		c.t.Errorf("cut-short message answered %q", rest)
	}
	c.nc.Close()
}

// longMessage is a 72,099-byte message, as in the probe that found the
// BDAT bug.
func longMessage(id string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "From: Sender <sender@example.net>\r\nTo: dev@lists.example.org\r\nSubject: %s\r\nMessage-ID: <%s>\r\nDate: Thu, 03 Dec 2026 08:00:00 +0000\r\n\r\n", id, id)
	for i := 0; b.Len() < 72099-80; i++ {
		fmt.Fprintf(&b, "line %05d of a long message that a client will not finish sending\r\n", i)
	}
	for b.Len() < 72099-2 {
		b.WriteByte('z')
	}
	b.WriteString("\r\n")
	return b.String()
}

// TestServeSMTPIngestEdges runs serve and checks, in the archive itself:
// a message cut short by the client (FIN inside BDAT LAST over SMTP and
// LMTP, inside DATA over SMTP) is not archived and its full retry is,
// once; DATA keeps the CR after a stuffing dot, byte for byte in the
// export; RCPT TO:<postmaster> reaches the list named by postmaster.
func TestServeSMTPIngestEdges(t *testing.T) {
	data := t.TempDir()
	smtpPort, lmtpPort := peertest.FreePort(t), peertest.FreePort(t)
	cfg := writeConfig(t, data, smtpPort, lmtpPort, "dev@lists.example.org")
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// A top-level key, so before the tables.
	if err := os.WriteFile(cfg, append([]byte("postmaster = \"dev\"\n"), text...), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServe(t, cfg, smtpPort, lmtpPort)

	begin := func(port int, lmtp bool, rcpt string) *smtpConn {
		c := dialSMTP(t, port, lmtp)
		c.cmd("MAIL FROM:<sender@example.net>", "250 ")
		c.cmd("RCPT TO:<"+rcpt+">", "250 ")
		return c
	}
	const cutAt = 24033
	for _, tc := range []struct {
		id   string
		port int
		lmtp bool
		bdat bool
	}{
		{"cut-bdat-smtp@test", smtpPort, false, true},
		{"cut-bdat-lmtp@test", lmtpPort, true, true},
		{"cut-data-smtp@test", smtpPort, false, false},
	} {
		msg := longMessage(tc.id)
		c := begin(tc.port, tc.lmtp, "dev@lists.example.org")
		if tc.bdat {
			c.send(fmt.Sprintf("BDAT %d LAST\r\n", len(msg)) + msg[:cutAt])
		} else {
			c.cmd("DATA", "354 ")
			c.send(msg[:cutAt])
		}
		c.cutOff()
		// The client's retry, whole.
		c = begin(tc.port, tc.lmtp, "dev@lists.example.org")
		if tc.bdat {
			c.send(fmt.Sprintf("BDAT %d LAST\r\n", len(msg)) + msg)
		} else {
			c.cmd("DATA", "354 ")
			c.send(msg + ".\r\n")
		}
		c.expect("250 ")
		c.cmd("QUIT", "221 ")
	}

	// "\r\n.\r" + text: the dot goes (RFC 5321 section 4.5.2), the CR
	// stays; a CR before a line's CRLF is data.
	dotHdr := "From: Sender <sender@example.net>\r\nTo: dev@lists.example.org\r\nSubject: dots\r\nMessage-ID: <dotcr@test>\r\nDate: Thu, 03 Dec 2026 08:00:00 +0000\r\n\r\n"
	c := begin(smtpPort, false, "dev@lists.example.org")
	c.cmd("DATA", "354 ")
	c.send(dotHdr + "A\r\n.\rB\r\n..C\r\nD\r\r\n.\r\n")
	c.expect("250 ")
	wantDot := dotHdr + "A\r\n\rB\r\n.C\r\nD\r\r\n"

	c.cmd("MAIL FROM:<sender@example.net>", "250 ")
	c.cmd("RCPT TO:<Postmaster>", "250 ")
	c.cmd("DATA", "354 ")
	c.send("From: Sender <sender@example.net>\r\nTo: postmaster\r\nSubject: abuse\r\nMessage-ID: <postmaster@test>\r\n\r\nreport\r\n.\r\n")
	c.expect("250 ")
	c.cmd("QUIT", "221 ")
	srv.stop(t)

	ids := exportedIDs(t, data)
	for _, id := range []string{"cut-bdat-smtp@test", "cut-bdat-lmtp@test", "cut-data-smtp@test", "dotcr@test", "postmaster@test"} {
		if ids[id] != 1 {
			t.Errorf("%s archived %d times, want once\n%s", id, ids[id], srv.log())
		}
	}
	out, stderr, err := mailswarm(t, "export", "--data", data, "--list", "dev")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	got := map[string]string{}
	err = message.ReadMbox(bytes.NewReader(out), message.MboxRD, func(m []byte) error {
		if mm := midRE.FindSubmatch(m); mm != nil {
			got[string(mm[1])] = string(m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got["dotcr@test"] != wantDot {
		t.Errorf("archived %q,\nwant %q", got["dotcr@test"], wantDot)
	}
	for _, id := range []string{"cut-bdat-smtp@test", "cut-bdat-lmtp@test", "cut-data-smtp@test"} {
		if g := got[id]; g != longMessage(id) {
			t.Errorf("%s archived with %d bytes, want %d", id, len(g), len(longMessage(id)))
		}
	}
}
