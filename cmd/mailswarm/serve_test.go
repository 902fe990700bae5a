package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

// server is a running `mailswarm serve`.
type server struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	mu     *sync.Mutex
}

// writeConfig writes a config serving list dev for the given addresses
// on SMTP port smtpPort (and LMTP on lmtpPort when not zero).
func writeConfig(t *testing.T, data string, smtpPort, lmtpPort int, addrs ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "data = %q\n[smtp]\nlisten = \"127.0.0.1:%d\"\n", data, smtpPort)
	if lmtpPort != 0 {
		fmt.Fprintf(&b, "[lmtp]\nlisten = \"127.0.0.1:%d\"\n", lmtpPort)
	}
	fmt.Fprintf(&b, "[imap]\nlisten = \"\"\n[http]\nlisten = \"\"\n[[list]]\nname = \"dev\"\naddresses = [")
	for i, a := range addrs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", a)
	}
	b.WriteString("]\n")
	path := filepath.Join(t.TempDir(), "mailswarm.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

type lockedBuffer struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// startServe starts serve with cfg and waits until every one of ports
// accepts (serve opens its listeners one after another).
func startServe(t *testing.T, cfg string, ports ...int) *server {
	t.Helper()
	return startServeCmd(t, exec.Command(buildBinary(t), "serve", "--config", cfg), ports...)
}

// startServeCmd is startServe running cmd (serve under a wrapper).
func startServeCmd(t *testing.T, cmd *exec.Cmd, ports ...int) *server {
	t.Helper()
	s := &server{stderr: new(bytes.Buffer), mu: new(sync.Mutex)}
	s.cmd = cmd
	s.cmd.Stderr = lockedBuffer{s.mu, s.stderr}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, port := range ports {
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				s.cmd.Process.Kill()
				s.cmd.Wait()
				t.Fatalf("serve did not listen on %d: %v\n%s", port, err, s.log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return s
}

func (s *server) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// stop ends serve with SIGTERM (graceful: final commit) and waits.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v\n%s", err, s.log())
		}
	case <-time.After(60 * time.Second):
		s.cmd.Process.Kill()
		<-done
		t.Fatalf("serve did not stop on SIGTERM\n%s", s.log())
	}
}

var midRE = regexp.MustCompile(`(?mi)^Message-ID:\s*<([^>]+)>`)

// exportedIDs counts the Message-IDs in the list's export.
func exportedIDs(t *testing.T, data string) map[string]int {
	t.Helper()
	out, stderr, err := mailswarm(t, "export", "--data", data, "--list", "dev")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	ids := map[string]int{}
	for _, m := range midRE.FindAllSubmatch(out, -1) {
		ids[string(m[1])]++
	}
	return ids
}

// TestServeSwaksAndPostfix: swaks sends straight to serve; Debian's Postfix
// relays one message to our SMTP and delivers another over LMTP. Each
// arrives once.
func TestServeSwaksAndPostfix(t *testing.T) {
	peertest.Need(t, "swaks", "postfix")
	data := t.TempDir()
	smtpPort, lmtpPort := peertest.FreePort(t), peertest.FreePort(t)
	cfg := writeConfig(t, data, smtpPort, lmtpPort, "dev@lists.example.org", "dev@lmtp.example.org")
	srv := startServe(t, cfg, smtpPort)

	msg := func(id string) []byte {
		return fmt.Appendf(nil, "From: Sender <sender@example.net>\r\nTo: dev@lists.example.org\r\nSubject: %s\r\nMessage-ID: <%s>\r\n\r\nbody of %s\r\n", id, id, id)
	}
	peertest.SwaksSend(t, peertest.SwaksOptions{Server: fmt.Sprintf("127.0.0.1:%d", smtpPort),
		From: "sender@example.net", To: []string{"dev@lists.example.org"}}, msg("direct@test"))

	pf := peertest.PostfixStart(t, peertest.PostfixOptions{Transports: map[string]string{
		"lists.example.org": fmt.Sprintf("smtp:[127.0.0.1]:%d", smtpPort),
		"lmtp.example.org":  fmt.Sprintf("lmtp:inet:127.0.0.1:%d", lmtpPort),
	}})
	peertest.SwaksSend(t, peertest.SwaksOptions{Server: pf.SMTPAddr(), From: "sender@example.net",
		To: []string{"dev@lists.example.org"}}, msg("relayed@test"))
	peertest.SwaksSend(t, peertest.SwaksOptions{Server: pf.SMTPAddr(), From: "sender@example.net",
		To: []string{"dev@lmtp.example.org"}}, msg("lmtp@test"))
	if err := pf.WaitQueueEmpty(60 * time.Second); err != nil {
		t.Fatalf("postfix queue: %v\n%s", err, pf.Maillog())
	}
	srv.stop(t)
	ids := exportedIDs(t, data)
	for _, id := range []string{"direct@test", "relayed@test", "lmtp@test"} {
		if ids[id] != 1 {
			t.Errorf("%s archived %d times, want once\nmaillog:\n%s\nserve:\n%s", id, ids[id], pf.Maillog(), srv.log())
		}
	}
}

// TestServeKill9 sends from 16 concurrent clients while serve is killed
// with SIGKILL at random moments, at least twenty times: every message that
// got a 250 is archived exactly once, none twice, and verify passes.
func TestServeKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kills serve twenty times")
	}
	data := t.TempDir()
	port := peertest.FreePort(t)
	cfg := writeConfig(t, data, port, 0, "dev@lists.example.org")
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		sent  = map[string]bool{}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for s := range 16 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("s%d-n%d@crash", s, n)
				m := fmt.Sprintf("From: s%d@example.net\r\nTo: dev@lists.example.org\r\nSubject: crash %s\r\nMessage-ID: <%s>\r\n\r\nmessage %s\r\n", s, id, id, id)
				mu.Lock()
				sent[id] = true
				mu.Unlock()
				if err := smtp.SendMail(addr, nil, fmt.Sprintf("s%d@example.net", s), []string{"dev@lists.example.org"}, []byte(m)); err == nil {
					mu.Lock()
					acked[id] = true
					mu.Unlock()
				} else {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	kills := 0
	for kills < 20 {
		srv := startServe(t, cfg, port)
		time.Sleep(time.Duration(150+rng.IntN(500)) * time.Millisecond)
		srv.cmd.Process.Signal(syscall.SIGKILL)
		srv.cmd.Wait()
		kills++
	}
	close(stop)
	wg.Wait()
	srv := startServe(t, cfg, port)
	srv.stop(t) // commits what the spool holds
	if _, stderr, err := mailswarm(t, "verify", "--data", data, "--list", "dev"); err != nil {
		t.Fatalf("verify: %v\n%s", err, stderr)
	}
	ids := exportedIDs(t, data)
	lost, twice := 0, 0
	for id := range acked {
		if ids[id] == 0 {
			lost++
		}
	}
	for id, n := range ids {
		if n > 1 {
			twice++
		}
		if !sent[id] {
			t.Errorf("archived %s, which was never sent", id)
		}
	}
	t.Logf("%d kills, %d messages acknowledged, %d archived", kills, len(acked), len(ids))
	if len(acked) == 0 {
		t.Fatal("no message was acknowledged")
	}
	if lost > 0 || twice > 0 {
		t.Fatalf("%d acknowledged messages lost, %d archived more than once", lost, twice)
	}
}

// TestServeRejectsEmptyMessage: an empty DATA cannot be archived; serve
// answers 554 5.6.0, not a temporary 451 that would make the MTA retry.
func TestServeRejectsEmptyMessage(t *testing.T) {
	data := t.TempDir()
	port := peertest.FreePort(t)
	srv := startServe(t, writeConfig(t, data, port, 0, "dev@lists.example.org"), port)
	defer srv.stop(t)
	c, err := smtp.Dial(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@example.net"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("dev@lists.example.org"); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	var te *textproto.Error
	if err := w.Close(); !errors.As(err, &te) || te.Code != 554 || !strings.HasPrefix(te.Msg, "5.6.0") {
		t.Fatalf("empty message: %v, want 554 5.6.0", err)
	}
	if err := c.Mail("a@example.net"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("nobody@lists.example.org"); !errors.As(err, &te) || te.Code != 550 {
		t.Fatalf("unknown recipient: %v, want 550", err)
	}
}

// TestServeBadConfig: a configuration with several mistakes is refused
// with exit 2 and one message naming every problem.
func TestServeBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(cfg, []byte(`
[smtp]
listen = "nowhere"
[[list]]
name = "Bad Name"
addresses = ["not-an-address"]
[frobnicate]
x = 1
`), 0o644)
	_, stderr, err := mailswarm(t, "serve", "--config", cfg)
	if code := exitCode(err); code != 2 {
		t.Fatalf("serve with a bad config: exit %d, want 2\n%s", code, stderr)
	}
	for _, want := range []string{"smtp.listen", "list[0].name", "list[0].addresses[0]", "frobnicate"} {
		if !strings.Contains(string(stderr), want) {
			t.Errorf("error message does not name %s:\n%s", want, stderr)
		}
	}
}
