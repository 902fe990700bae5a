package smtpin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
)

const plainMsg = "From: a@example.org\r\nTo: demo@localhost\r\nSubject: hi\r\nMessage-ID: <1@example.org>\r\n\r\nhello\r\n.dot line\r\n"

// send delivers one message with go-smtp's client and returns the DATA
// error (nil for 250).
func send(t *testing.T, c *smtp.Client, rcpts []string, msg string) error {
	t.Helper()
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := io.WriteString(w, msg); err != nil {
		t.Fatalf("write data: %v", err)
	}
	return w.Close()
}

func dial(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("test.example"); err != nil {
		t.Fatal(err)
	}
	return c
}

func wantCode(t *testing.T, err error, code int, enh smtp.EnhancedCode) *smtp.SMTPError {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want SMTP %d", err, code)
	}
	if se.Code != code || se.EnhancedCode != enh {
		t.Fatalf("reply = %d %v %q, want %d %v", se.Code, se.EnhancedCode, se.Message, code, enh)
	}
	return se
}

func TestDeliver(t *testing.T) {
	d := &fakeDeliverer{}
	_, addr := start(t, d, nil)
	c := dial(t, addr)
	if err := send(t, c, []string{"demo@localhost"}, plainMsg); err != nil {
		t.Fatalf("DATA = %v, want 250", err)
	}
	got := d.deliveries()
	if len(got) != 1 || got[0].list != "demo" || got[0].raw != plainMsg {
		t.Fatalf("deliveries = %q, want one to demo of %q", got, plainMsg)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
}

func TestRecipients(t *testing.T) {
	d := &fakeDeliverer{}
	_, addr := start(t, d, &Options{Lists: map[string]string{
		"dev@lists.example":       "dev",
		"users@lists.example":     "users",
		"dev-alias@lists.example": "dev",
	}})
	c := dial(t, addr)
	err := send(t, c, []string{"Dev@Lists.Example", "users@lists.example", "dev-alias@lists.example", "dev@lists.example"}, plainMsg)
	if err != nil {
		t.Fatalf("DATA = %v", err)
	}
	got := d.deliveries()
	var lists []string
	for _, g := range got {
		lists = append(lists, g.list)
	}
	if strings.Join(lists, ",") != "dev,users" {
		t.Fatalf("delivered to %v, want [dev users] (each list once)", lists)
	}
	// demo@localhost is only the default when no list is configured.
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("demo@localhost", nil), 550, smtp.EnhancedCode{5, 1, 1})
}

func TestUnknownRecipient(t *testing.T) {
	d := &fakeDeliverer{}
	_, addr := start(t, d, nil)
	c := dial(t, addr)
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("nobody@localhost", nil), 550, smtp.EnhancedCode{5, 1, 1})
	// The transaction goes on with the known recipient.
	if err := c.Rcpt("demo@localhost", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, plainMsg)
	if err := w.Close(); err != nil {
		t.Fatalf("DATA = %v", err)
	}
	if n := len(d.deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
}

func TestDeliverErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		opts *Options
		code int
		enh  smtp.EnhancedCode
	}{
		{"temp", errFakeTemp, nil, 451, smtp.EnhancedCode{4, 3, 0}},
		{"rejected", errFakeReject, nil, 554, smtp.EnhancedCode{5, 6, 0}},
		{"unclassified", errors.New("boom /secret/path"), nil, 451, smtp.EnhancedCode{4, 3, 0}},
		{"no classifier", errFakeReject, &Options{IsTempFail: func(error) bool { return false }}, 451, smtp.EnhancedCode{4, 3, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDeliverer{fail: func(string) error { return fmt.Errorf("spool: %w", tc.err) }}
			_, addr := start(t, d, tc.opts)
			c := dial(t, addr)
			se := wantCode(t, send(t, c, []string{"demo@localhost"}, plainMsg), tc.code, tc.enh)
			if strings.Contains(se.Message, "secret") || strings.Contains(se.Message, "spool") || strings.Contains(se.Message, "archive") {
				t.Errorf("reply %q leaks the error text", se.Message)
			}
			// The connection stays usable.
			if err := c.Noop(); err != nil {
				t.Fatalf("NOOP after failure: %v", err)
			}
		})
	}
}

func TestDeliverPanic(t *testing.T) {
	d := &fakeDeliverer{fail: func(string) error { panic("deliverer bug") }}
	_, addr := start(t, d, nil)
	c := dial(t, addr)
	wantCode(t, send(t, c, []string{"demo@localhost"}, plainMsg), 451, smtp.EnhancedCode{4, 3, 0})
	if err := c.Noop(); err != nil {
		t.Fatalf("NOOP after panic: %v", err)
	}
}

// TestTooLarge streams 50 MB at a 10 MiB limit: 552, nothing delivered, and
// the connection carries the next message.
func TestTooLarge(t *testing.T) {
	d := &fakeDeliverer{}
	_, addr := start(t, d, &Options{MaxSize: 10 << 20})
	c := dial(t, addr)
	if err := c.Mail("a@example.org", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("demo@localhost", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: big\r\n\r\n")
	line := []byte(strings.Repeat("x", 998) + "\r\n")
	total := 50_000_000
	if testing.Short() {
		total = 12 << 20
	}
	for n := 0; n < total; n += len(line) {
		if _, err := w.Write(line); err != nil {
			t.Fatalf("write at %d: %v", n, err)
		}
	}
	wantCode(t, w.Close(), 552, smtp.EnhancedCode{5, 3, 4})
	if n := len(d.deliveries()); n != 0 {
		t.Fatalf("%d deliveries of an oversized message, want 0", n)
	}
	if err := send(t, c, []string{"demo@localhost"}, plainMsg); err != nil {
		t.Fatalf("next message: %v", err)
	}
	if n := len(d.deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
}

// TestSizeParam: a declared SIZE over the limit is refused at MAIL
// (RFC 1870 section 6.1).
func TestSizeParam(t *testing.T) {
	_, addr := start(t, &fakeDeliverer{}, &Options{MaxSize: 1000})
	c := dialRaw(t, addr)
	c.hello()
	c.cmd("MAIL FROM:<a@example.org> SIZE=5000", "552 5.3.4")
	c.cmd("MAIL FROM:<a@example.org> SIZE=500", "250 ")
}

func TestMaxRecipients(t *testing.T) {
	_, addr := start(t, &fakeDeliverer{}, &Options{Logger: slog.New(slog.DiscardHandler)})
	c := dialRaw(t, addr)
	c.hello()
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	var b strings.Builder
	for range maxRecipients {
		b.WriteString("RCPT TO:<demo@localhost>\r\n")
	}
	c.send(b.String())
	for range maxRecipients {
		c.expect("250 ")
	}
	c.cmd("RCPT TO:<demo@localhost>", "452 4.5.3")
}
