package peertest

import (
	"bufio"
	"bytes"
	"net"
	"slices"
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

	mu    sync.Mutex
	msgs  []sinkMsg
	conns map[net.Conn]bool
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
	s.run(t)
	return s
}

// run accepts connections on s.ln until t ends.
func (s *sink) run(t *testing.T) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := s.ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.conns == nil {
				s.conns = map[net.Conn]bool{}
			}
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		s.ln.Close()
		s.mu.Lock()
		for c := range s.conns { // a client may cache its connection
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
}

func (s *sink) addr() string { return s.ln.Addr().String() }

func (s *sink) messages() []sinkMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

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
		SwaksSend(t, SwaksOptions{Server: pf.SMTPAddr(), From: "alice@example.com", To: []string{tc.rcpt}}, []byte(msg))
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

// TestPostfixDeferredThenFlushed starts the destination only after Postfix
// has failed to reach it, as an interop test that starts mailswarm late
// would.
func TestPostfixDeferredThenFlushed(t *testing.T) {
	Need(t, "postfix", "swaks")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := portOf(t, ln.Addr().String())
	ln.Close() // nothing listens yet
	pf := PostfixStart(t, PostfixOptions{
		Transports: map[string]string{"late.example.org": "lmtp:inet:127.0.0.1:" + port},
	})
	msg := "From: a@example.com\r\nTo: x@late.example.org\r\nSubject: late\r\nMessage-ID: <late@example.com>\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\n\r\nbody\r\n"
	SwaksSend(t, SwaksOptions{Server: pf.SMTPAddr(), From: "a@example.com", To: []string{"x@late.example.org"}}, []byte(msg))

	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(pf.Maillog(), "status=deferred") {
		if time.Now().After(deadline) {
			t.Fatalf("no deferral logged:\n%s", pf.Maillog())
		}
		time.Sleep(100 * time.Millisecond)
	}
	s := &sink{lmtp: true}
	s.ln, err = net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Skipf("port %s was taken meanwhile: %v", port, err)
	}
	s.run(t)
	if err := pf.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := pf.WaitQueueEmpty(30 * time.Second); err != nil {
		t.Fatalf("%v\nmaillog:\n%s", err, pf.Maillog())
	}
	if got := s.messages(); len(got) != 1 || !strings.HasSuffix(string(got[0].data), "\r\n"+msg) {
		t.Fatalf("sink has %q, want the one message", got)
	}
}

func TestSwaksSendLMTPDirect(t *testing.T) {
	Need(t, "swaks")
	s := startSink(t, true)
	msg := "Subject: direct\r\n\r\n.dot\r\nno final newline"
	SwaksSend(t, SwaksOptions{Server: s.addr(), LMTP: true, From: "a@example.com", To: []string{"x@example.org", "y@example.org"}}, []byte(msg))
	got := s.messages()
	if len(got) != 1 || string(got[0].data) != msg+"\r\n" || len(got[0].rcpts) != 2 {
		t.Fatalf("sink has %q, want %q to two recipients", got, msg+"\r\n")
	}
}
