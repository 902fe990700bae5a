package smtpin

import (
	"testing"

	"mailswarm/internal/peertest"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"
)

func TestStartTLS(t *testing.T) {
	srvTLS, cliTLS := peertest.TLSPair(t)
	d := &fakeDeliverer{}
	_, addr := start(t, d, &Options{TLS: srvTLS})
	c, err := smtp.DialStartTLS(addr, cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.TLSConnectionState(); !ok {
		t.Fatal("no TLS after STARTTLS")
	}
	if err := send(t, c, []string{"demo@localhost"}, plainMsg); err != nil {
		t.Fatalf("DATA over TLS: %v", err)
	}
	if got := d.deliveries(); len(got) != 1 || got[0].raw != plainMsg {
		t.Fatalf("deliveries = %q", got)
	}
}

// TestAuth: with users configured, MAIL needs AUTH (530), AUTH is offered
// only under TLS, a wrong password is 535, and the right one delivers.
func TestAuth(t *testing.T) {
	srvTLS, cliTLS := peertest.TLSPair(t)
	d := &fakeDeliverer{}
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := start(t, d, &Options{TLS: srvTLS, Users: map[string]string{"mailman": string(hash), "plain": "s3cret"}})

	// In clear: no AUTH offered, MAIL refused.
	plain := dial(t, addr)
	if ok, _ := plain.Extension("AUTH"); ok {
		t.Error("AUTH offered without TLS")
	}
	wantCode(t, plain.Mail("a@example.org", nil), 530, smtp.EnhancedCode{5, 7, 0})

	c, err := smtp.DialStartTLS(addr, cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN" {
		t.Fatalf("AUTH extension = %v %q, want PLAIN", ok, mechs)
	}
	wantCode(t, c.Mail("a@example.org", nil), 530, smtp.EnhancedCode{5, 7, 0})
	wantCode(t, c.Auth(sasl.NewPlainClient("", "mailman", "wrong")), 535, smtp.EnhancedCode{5, 7, 8})
	wantCode(t, c.Auth(sasl.NewPlainClient("", "nobody", "s3cret")), 535, smtp.EnhancedCode{5, 7, 8})
	// A value that is not a bcrypt hash is not a password either.
	wantCode(t, c.Auth(sasl.NewPlainClient("", "plain", "s3cret")), 535, smtp.EnhancedCode{5, 7, 8})
	if err := c.Auth(sasl.NewPlainClient("", "mailman", "s3cret")); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	if err := send(t, c, []string{"demo@localhost"}, plainMsg); err != nil {
		t.Fatalf("DATA after AUTH: %v", err)
	}
	if n := len(d.deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
}

// TestShutdownTLS: an idle client under TLS also gets 421.
func TestShutdownTLS(t *testing.T) {
	srvTLS, cliTLS := peertest.TLSPair(t)
	s, addr := start(t, &fakeDeliverer{}, &Options{TLS: srvTLS})
	c, err := smtp.DialStartTLS(addr, cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server side of the handshake may still be running when
	// DialStartTLS returns; a shutdown then fails the handshake instead.
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(t.Context()) }()
	if err := <-done; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	var se *smtp.SMTPError
	if err := c.Noop(); !errorsAs(err, &se) || se.Code != 421 {
		t.Fatalf("NOOP after shutdown = %v, want 421", err)
	}
}
