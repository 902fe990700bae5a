package smtpin

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// panicWatch is a slog handler that remembers any record about a panic
// (go-smtp recovers them and logs through Options.Logger).
type panicWatch struct{ seen atomic.Pointer[string] }

func (h *panicWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h *panicWatch) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *panicWatch) WithGroup(string) slog.Handler            { return h }
func (h *panicWatch) Handle(_ context.Context, r slog.Record) error {
	text := r.Message
	r.Attrs(func(a slog.Attr) bool {
		text += " " + a.Value.String()
		return true
	})
	if strings.Contains(text, "panic") {
		h.seen.Store(&text)
	}
	return nil
}

var replyLine = regexp.MustCompile(`^[2-5][0-9][0-9][ -]`)

// FuzzSession feeds arbitrary bytes as a client's whole input to a server
// on a real socket. The server must never panic, never hang (the client
// half-closes and the whole exchange has a deadline), and must answer only
// well-formed reply lines.
func FuzzSession(f *testing.F) {
	for _, seed := range []string{
		"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\nDATA\r\nSubject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n",
		"LHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\nRCPT TO:<fail@localhost>\r\nRCPT TO:<reject@localhost>\r\nDATA\r\nx\r\n.\r\n",
		"EHLO x\r\nMAIL FROM:<a@example.org> SIZE=99999999\r\nMAIL FROM:<> BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<DEMO@LOCALHOST>\r\nBDAT 5\r\nhelloBDAT 0 LAST\r\n",
		"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\nDATA\r\n\x00\xff\nbare\n.\n..\r\n.\r\nGARBAGE\r\n\r\nRSET\r\nVRFY x\r\nSTARTTLS\r\nAUTH PLAIN AGE=\r\n",
		"HELO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\nDATA\r\n" + strings.Repeat("z", 5000) + "\r\n.\r\n",
		"EHLO x\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\nBDAT 3\r\nabcRSET\r\nBDAT 2 LAST\r\nab",
		"",
		"\r\n\r\n\r\n\r\n\r\n",
	} {
		f.Add(false, []byte(seed))
		f.Add(true, []byte(strings.Replace(seed, "EHLO", "LHLO", 1)))
	}

	watch := &panicWatch{}
	d := &fakeDeliverer{fail: func(list string) error {
		switch list {
		case "fail":
			return errFakeTemp
		case "reject":
			return errFakeReject
		}
		return nil
	}}
	addrs := map[bool]string{}
	for _, lmtp := range []bool{false, true} {
		_, addrs[lmtp] = start(f, d, &Options{
			LMTP:          lmtp,
			Logger:        slog.New(watch),
			MaxSize:       4096,
			MaxLineLength: 2000,
			Lists: map[string]string{
				"demo@localhost":   "demo",
				"fail@localhost":   "fail",
				"reject@localhost": "reject",
			},
		})
	}

	f.Fuzz(func(t *testing.T, lmtp bool, input []byte) {
		// A fresh loopback source address per input: a long run would
		// otherwise exhaust ephemeral ports in TIME_WAIT.
		src := &net.TCPAddr{IP: net.IPv4(127, byte(1+rand.IntN(250)), byte(rand.IntN(256)), byte(1+rand.IntN(250)))}
		dialer := net.Dialer{LocalAddr: src, Timeout: 10 * time.Second}
		nc, err := dialer.Dial("tcp", addrs[lmtp])
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(20 * time.Second))
		go func() {
			nc.Write(input)
			nc.(*net.TCPConn).CloseWrite()
		}()
		r := bufio.NewReader(nc)
		for {
			line, err := r.ReadString('\n')
			if err == io.EOF && line == "" {
				break
			}
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("server hung on %q", input)
				}
				break // e.g. reset after the server hung up mid-write
			}
			if !replyLine.MatchString(line) || !strings.HasSuffix(line, "\r\n") {
				t.Fatalf("malformed reply %q to %q", line, input)
			}
		}
		if p := watch.seen.Load(); p != nil {
			t.Fatalf("server panicked on %q: %s", input, *p)
		}
		d.mu.Lock()
		d.got = nil // keep memory flat over a long run
		d.mu.Unlock()
	})
}
