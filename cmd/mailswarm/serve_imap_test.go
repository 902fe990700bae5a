package main

import (
	"bufio"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"mailswarm/archive"
	"mailswarm/config"
	"mailswarm/internal/peertest"
)

// TestServeSMTPToIMAPIdle: a message sent to serve's SMTP port shows up
// as EXISTS on an IMAP client idling on the list, and SIGTERM ends the
// IMAP session with BYE.
func TestServeSMTPToIMAPIdle(t *testing.T) {
	data := t.TempDir()
	smtpPort, imapPort := peertest.FreePort(t), peertest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "mailswarm.toml")
	text := fmt.Sprintf("data = %q\n[smtp]\nlisten = \"127.0.0.1:%d\"\n[imap]\nlisten = \"127.0.0.1:%d\"\n[http]\nlisten = \"\"\n"+
		"[[list]]\nname = \"dev\"\naddresses = [\"dev@example.org\"]\n", data, smtpPort, imapPort)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, cfg, smtpPort, imapPort)
	defer func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			s.cmd.Wait()
		}
	}()

	until, send := idleOnEmpty(t, s, imapPort, "dev")

	msg := "From: a@example.org\r\nTo: dev@example.org\r\nSubject: idle test\r\nMessage-ID: <idle@example.org>\r\n\r\nhello\r\n"
	if err := smtp.SendMail(fmt.Sprintf("127.0.0.1:%d", smtpPort), nil, "a@example.org", []string{"dev@example.org"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	acked := time.Now()
	until("* 1 EXISTS")
	t.Logf("EXISTS %v after the SMTP 250 (an idle list commits after a 20 ms linger)", time.Since(acked))
	send("DONE")
	until("c OK")
	send("d FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)])")
	if lines := until("d OK"); !strings.Contains(strings.Join(lines, "\n"), "Subject: idle test") {
		t.Fatalf("FETCH: %q", lines)
	}
	s.stop(t)
	until("* BYE")
}

// idleOnEmpty logs in to serve s's IMAP port, selects mailbox (which must
// be empty) and starts IDLE as tag c. until reads lines until one starts
// with prefix (20 s at most) and returns them; send writes one command
// line. The connection closes with the test.
func idleOnEmpty(t *testing.T, s *server, imapPort int, mailbox string) (until func(prefix string) []string, send func(line string)) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", imapPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	until = func(prefix string) []string {
		t.Helper()
		var lines []string
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v (read %q)\n%s", prefix, err, lines, s.log())
			}
			lines = append(lines, strings.TrimRight(l, "\r\n"))
			if strings.HasPrefix(l, prefix) {
				return lines
			}
		}
	}
	send = func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	until("* OK")
	send("a LOGIN reader x")
	until("a OK")
	send("b SELECT " + mailbox)
	if lines := until("b OK"); !strings.Contains(strings.Join(lines, "\n"), "* 0 EXISTS") {
		t.Fatalf("SELECT %s: %q", mailbox, lines)
	}
	send("c IDLE")
	until("+")
	return until, send
}

// TestServeIMAPRequireLogin: imap_require_login reaches the IMAP server:
// with it a loopback client must log in as a [[user]], without it any
// other name logs in (and a [[user]] name needs its password either way).
func TestServeIMAPRequireLogin(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a, err := archive.Open(&archive.Options{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, require := range []bool{false, true} {
		cfg := config.Default()
		cfg.Users = []config.User{{Name: "alice", PasswordHash: string(hash)}}
		cfg.IMAPRequireLogin = require
		srv, err := newIMAP(cfg, a, userHashes(cfg))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		for _, tc := range []struct {
			user, pass string
			ok         bool
		}{{"alice", "secret", true}, {"alice", "wrong", false}, {"bob", "any", !require}} {
			c := peertest.IMAPDial(t, ln.Addr().String())
			_, status, err := c.Cmd("LOGIN " + tc.user + " " + tc.pass)
			if (err == nil) != tc.ok {
				t.Errorf("imap_require_login = %v: LOGIN %s %s: %q, want ok %v", require, tc.user, tc.pass, status, tc.ok)
			}
			c.Close()
		}
		srv.Close()
	}
}

// TestServeIMAPLimits: the [imap] caps reach the server: one connection
// not logged in per address, 1 s to log in.
func TestServeIMAPLimits(t *testing.T) {
	a, err := archive.Open(&archive.Options{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cfg := config.Default()
	cfg.IMAPLimits = config.IMAPLimits{MaxPreAuthPerClient: 1, LoginTimeout: time.Second}
	srv, err := newIMAP(cfg, a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	greeting := func() (*bufio.Reader, net.Conn) {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return bufio.NewReader(c), c
	}
	first, _ := greeting()
	if l, _ := first.ReadString('\n'); !strings.HasPrefix(l, "* OK") {
		t.Fatalf("first connection: %q", l)
	}
	second, _ := greeting()
	if l, _ := second.ReadString('\n'); !strings.HasPrefix(l, "* BYE [UNAVAILABLE]") {
		t.Errorf("second connection not logged in from one address with max_preauth_per_client = 1: %q", l)
	}
	if l, err := first.ReadString('\n'); !strings.HasPrefix(l, "* BYE") {
		t.Errorf("after login_timeout = 1s: %q, %v; want BYE", l, err)
	}
}
