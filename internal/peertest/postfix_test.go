package peertest

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// sink is a minimal SMTP (or, with lmtp, LMTP) server that accepts every
// message and keeps its data, dot-unstuffed, CRLF line ends intact.
type sink struct {
	ln   net.Listener
	lmtp bool
	wg   sync.WaitGroup

	mu   sync.Mutex
	msgs []sinkMsg
}

type sinkMsg struct {
	rcpts []string
	data  []byte
}

func startSink(t *testing.T, lmtp bool) *sink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{ln: ln, lmtp: lmtp}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *sink) addr() string { return s.ln.Addr().String() }

func (s *sink) messages() []sinkMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slicesClone(s.msgs)
}

func slicesClone(m []sinkMsg) []sinkMsg { return append([]sinkMsg(nil), m...) }

func (s *sink) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	reply := func(lines ...string) bool {
		for _, l := range lines {
			w.WriteString(l + "\r\n")
		}
		return w.Flush() == nil
	}
	reply("220 sink ESMTP")
	var rcpts []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimRight(line, "\r\n"))
		verb, _, _ := strings.Cut(cmd, " ")
		switch verb {
		case "EHLO", "LHLO":
			reply("250-sink", "250-8BITMIME", "250 PIPELINING")
		case "HELO", "NOOP":
			reply("250 ok")
		case "MAIL":
			rcpts = nil
			reply("250 ok")
		case "RCPT":
			rcpts = append(rcpts, strings.TrimRight(line[len("RCPT TO:"):], "\r\n"))
			reply("250 ok")
		case "RSET":
			rcpts = nil
			reply("250 ok")
		case "DATA":
			reply("354 go on")
			var data bytes.Buffer
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				data.WriteString(strings.TrimPrefix(l, ".")) // RFC 5321 4.5.2
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, sinkMsg{rcpts: rcpts, data: data.Bytes()})
			s.mu.Unlock()
			n := 1
			if s.lmtp {
				n = len(rcpts) // RFC 2033 4.2: one reply per recipient
			}
			for range n {
				reply("250 stored")
			}
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 unknown")
		}
	}
}

// testBody has what a relay could damage: a leading dot, 8-bit UTF-8, a
// From_ line, trailing spaces, an empty line at the end.
const testBody = "Line one.\r\n" +
	".A line that starts with a dot\r\n" +
	"..two dots\r\n" +
	"From the start of a line\r\n" +
	"Grüße, naïve café \r\n" +
	"\r\n"

func TestPostfixRelaysOnce(t *testing.T) {
	Need(t, "postfix", "swaks")
	smtpSink := startSink(t, false)
	lmtpSink := startSink(t, true)
	pf := PostfixStart(t, PostfixOptions{
		Transports: map[string]string{
			"lists.example.org": "smtp:[127.0.0.1]:" + portOf(t, smtpSink.addr()),
			"lmtp.example.org":  "lmtp:inet:127.0.0.1:" + portOf(t, lmtpSink.addr()),
		},
	})

	for _, tc := range []struct {
		rcpt string
		sink *sink
	}{
		{"dev@lists.example.org", smtpSink},
		{"dev@lmtp.example.org", lmtpSink},
	} {
		msg := "From: Alice <alice@example.com>\r\n" +
			"To: " + tc.rcpt + "\r\n" +
			"Subject: peertest relay\r\n" +
			"Date: Mon, 23 Nov 2026 12:00:00 +0000\r\n" +
			"Message-ID: <relay-" + tc.rcpt + ">\r\n" +
			"MIME-Version: 1.0\r\n" +
			"Content-Type: text/plain; charset=utf-8\r\n" +
			"Content-Transfer-Encoding: 8bit\r\n" +
			"\r\n" + testBody
		// swaks sends the file as DATA, adding a line ".\r\n" unless the
		// data ends with it (which would add a CRLF to the message).
		file := filepath.Join(t.TempDir(), "msg.eml")
		if err := os.WriteFile(file, []byte(msg+".\r\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("swaks", "--server", pf.SMTPAddr(), "--from", "alice@example.com",
			"--to", tc.rcpt, "--data", "@"+file, "--helo", "client.example.com").CombinedOutput()
		if err != nil {
			t.Fatalf("swaks to %s: %v\n%s", tc.rcpt, err, out)
		}
		if err := pf.WaitQueueEmpty(30 * time.Second); err != nil {
			t.Fatalf("%v\nmaillog:\n%s", err, pf.Maillog())
		}
		// A duplicate would come in the same queue run; give it a moment.
		time.Sleep(300 * time.Millisecond)
		got := tc.sink.messages()
		if len(got) != 1 {
			t.Fatalf("sink for %s has %d messages, want 1\nmaillog:\n%s", tc.rcpt, len(got), pf.Maillog())
		}
		if want := "<" + tc.rcpt + ">"; len(got[0].rcpts) != 1 || !strings.HasPrefix(got[0].rcpts[0], want) {
			t.Errorf("recipients = %q, want [%s]", got[0].rcpts, want)
		}
		// Postfix prepends its Received: header and keeps the rest.
		data := string(got[0].data)
		if !strings.HasPrefix(data, "Received: ") || !strings.HasSuffix(data, "\r\n"+msg) {
			t.Errorf("relayed message is not the sent one after a Received: header:\n got %q\nwant ...%q", data, msg)
		}
	}
	if log := pf.Maillog(); !strings.Contains(log, "status=sent") {
		t.Errorf("maillog has no status=sent:\n%s", log)
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}
