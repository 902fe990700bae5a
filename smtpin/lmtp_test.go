package smtpin

import (
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestLMTPPerRecipient: one list temp-fails, the other is delivered; each
// recipient gets its own reply (RFC 2033 section 4.2), a list named twice is
// delivered once but answered twice.
func TestLMTPPerRecipient(t *testing.T) {
	d := &fakeDeliverer{fail: func(list string) error {
		if list == "broken" {
			return errFakeTemp
		}
		return nil
	}}
	_, addr := start(t, d, &Options{LMTP: true, Lists: map[string]string{
		"good@lists.example":   "good",
		"good2@lists.example":  "good",
		"broken@lists.example": "broken",
	}})
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(nc)
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("test.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	rcpts := []string{"good@lists.example", "broken@lists.example", "good2@lists.example"}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, c.Rcpt("nobody@lists.example", nil), 550, smtp.EnhancedCode{5, 1, 1})
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, plainMsg)
	resp, err := w.CloseWithLMTPResponse()
	if resp["good@lists.example"] == nil || resp["good2@lists.example"] == nil {
		t.Errorf("successful recipients = %v, want good@ and good2@", resp)
	}
	var lerr smtp.LMTPDataError
	if !errors.As(err, &lerr) {
		t.Fatalf("DATA = %v, want per-recipient errors", err)
	}
	if len(lerr) != 1 || lerr["broken@lists.example"] == nil {
		t.Fatalf("failed recipients = %v, want only broken@", lerr)
	}
	if se := lerr["broken@lists.example"]; se.Code != 451 || strings.Contains(se.Message, "space") {
		t.Fatalf("broken@ reply = %d %q, want generic 451", se.Code, se.Message)
	}
	got := d.deliveries()
	if len(got) != 1 || got[0].list != "good" || got[0].raw != plainMsg {
		t.Fatalf("deliveries = %q, want one to good", got)
	}
}

// TestLMTPRaw checks the replies on the wire, and that SMTP greetings are
// refused on an LMTP port.
func TestLMTPRaw(t *testing.T) {
	d := &fakeDeliverer{}
	_, addr := start(t, d, &Options{LMTP: true})
	c := dialRaw(t, addr)
	c.expect("220 ")
	c.cmd("EHLO test.example", "500 ")
	c.cmd("LHLO test.example", "250 ")
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@localhost>", "250 ")
	c.cmd("RCPT TO:<DEMO@localhost>", "250 ")
	c.cmd("DATA", "354 ")
	c.send("Subject: x\r\n\r\nbody\r\n.\r\n")
	c.expect("250 2.0.0 <demo@localhost>")
	c.expect("250 2.0.0 <DEMO@localhost>")
	if n := len(d.deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
}

// TestLMTPUnixSocket: LMTP over a Unix socket, as Postfix's lmtp:unix:
// transport uses it, is allowed whatever the Networks.
func TestLMTPUnixSocket(t *testing.T) {
	d := &fakeDeliverer{}
	path := filepath.Join(t.TempDir(), "lmtp.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	s := New(d, &Options{LMTP: true, Logger: testLogger(t)})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(nc)
	defer c.Close()
	if err := c.Hello("test.example"); err != nil {
		t.Fatal(err)
	}
	if err := send(t, c, []string{"demo@localhost"}, plainMsg); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if n := len(d.deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
}
