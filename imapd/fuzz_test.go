package imapd_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailswarm/archive"
	"mailswarm/imapd"
)

// chanListener hands out the connections pushed into it.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return loopbackAddr }

var loopbackAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1143}

// loopbackConn is a pipe that says it comes from 127.0.0.1, so any login
// works as on a real loopback connection.
type loopbackConn struct{ net.Conn }

func (loopbackConn) RemoteAddr() net.Addr { return loopbackAddr }

// panicWatch fails the fuzz run if go-imap logs a recovered panic.
type panicWatch struct{ panics atomic.Int64 }

func (p *panicWatch) Enabled(context.Context, slog.Level) bool { return true }
func (p *panicWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, "panic") {
		p.panics.Add(1)
		println(r.Message)
	}
	return nil
}
func (p *panicWatch) WithAttrs([]slog.Attr) slog.Handler { return p }
func (p *panicWatch) WithGroup(string) slog.Handler      { return p }

var fuzzServer struct {
	once  sync.Once
	ln    *chanListener
	watch *panicWatch
	err   error
}

// FuzzSession feeds whole client sessions to the server: whatever the
// bytes, the server must not panic (go-imap recovers panics and logs
// them, so the log is watched) and must not hang the connection past
// the client hanging up.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"a LOGIN u p\r\nb SELECT test\r\nc FETCH 1:* (FLAGS UID ENVELOPE BODYSTRUCTURE BODY BODY.PEEK[1.2.MIME] BINARY[1]<0.5> BINARY.SIZE[1] RFC822)\r\nd LOGOUT\r\n",
		"a LOGIN u p\r\nb SELECT test/2006\r\nc UID SEARCH OR BODY xyl NOT SUBJECT message SMALLER 500 LARGER 10 SENTSINCE 1-Jan-2006\r\nd STORE 1:* +FLAGS (\\Seen $x)\r\ne SEARCH KEYWORD $x UNSEEN 2:* UID 1:3\r\n",
		"a LOGIN u p\r\nb EXAMINE test\r\nc IDLE\r\nDONE\r\nd FETCH * (BODY[HEADER.FIELDS (From)]<1.2>)\r\ne UID FETCH 4294967295:1 UID\r\n",
		"a LOGIN u p\r\nb LIST \"\" *\r\nc STATUS test (MESSAGES UNSEEN UIDNEXT)\r\nd LIST \"\" % RETURN (STATUS (MESSAGES))\r\ne NAMESPACE\r\nf SELECT INBOX\r\ng FETCH 1 BODY[]\r\n",
		"a AUTHENTICATE PLAIN AHUAcA==\r\nb SELECT test\r\nc SEARCH TEXT \"\"\r\nd SEARCH HEADER Received x\r\ne UNSELECT\r\nf CLOSE\r\n",
		// the connection layer (wire.go): ID with literals, broken ID, STARTTLS
		"a ID (\"name\" {3+}\r\nabc \"os\" NIL)\r\nb ID NIL\r\nc ID (\"x\"\r\nd ID (\"k\" \"v\\\"\" \"k2\" {9999+}\r\n\r\ne STARTTLS\r\nf CAPABILITY\r\ng LOGIN u {1}\r\np\r\nh ID NIL\r\n",
		// an ID over 64 KiB in literals, a refused literal (no "+"), an ID line over 4 KiB
		"a ID (\"k\" {10+}\r\n" + strings.Repeat("0123456789 {10+}\r\n", 4000) + "0123456789)\r\nb ID NIL\r\nc CAPABILITY\r\n",
		"a LOGIN u p\r\nb SELECT test\r\nc SEARCH SUBJECT {5000}\r\nd ID NIL\r\ne CAPABILITY\r\nf FOO {5}\r\ng ID NIL\r\nh SEARCH SUBJECT {3}\r\nabc\r\n",
		"a ID (" + strings.Repeat("\"k\" \""+strings.Repeat("v\\\"", 500)+"\" ", 29) + "\"k\" NIL)\r\nb CAPABILITY\r\n",
		// the carried go-imap's fixes: an over-long line, refused literals, APPEND before login, bad values
		"a LOGIN u p\r\nc SEARCH SUBJECT " + strings.Repeat("x", 51200) + "d STATUS test (MESSAGES) {4+}\r\nabcd\r\ne NOOP\r\n",
		"a APPEND test {100}\r\nb LOGIN {5000}\r\nc LOGIN {20+}\r\nd LOGIN u p\r\n\r\ne NOOP\r\n",
		"a AUTHENTICATE PLAIN !!!\r\nb LOGIN u p\r\nc SELECT &Jjo!-\r\nd FETCH 0:99999999999 FLAGS\r\ne SEARCH SINCE 99-Foo-2020\r\n",
	} {
		f.Add([]byte(s))
	}
	fuzzServer.once.Do(func() {
		a, err := archive.Open(&archive.Options{Dir: f.TempDir(), NoSync: true})
		if err != nil {
			fuzzServer.err = err
			return
		}
		l, err := a.Create("test", "test@example.org")
		if err != nil {
			fuzzServer.err = err
			return
		}
		msgs := append(synthetic(5), []byte("Content-Type: multipart/mixed\n\nno boundary\n"),
			[]byte("Content-Type: multipart/mixed; boundary=b\nSubject: =?utf-8?b?w6k=?=\n\n--b\nContent-Type: message/rfc822\n\nSubject: inner\n\n--b--\n"),
			[]byte("From: group: a@b, c@d;\nContent-Transfer-Encoding: x-weird\n\nbody\n"))
		if _, err := l.Add(context.Background(), msgs...); err != nil {
			fuzzServer.err = err
			return
		}
		fuzzServer.watch = &panicWatch{}
		srv, err := imapd.New(a, &imapd.Options{Logger: slog.New(fuzzServer.watch), Anonymous: true})
		if err != nil {
			fuzzServer.err = err
			return
		}
		fuzzServer.ln = &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
		go srv.Serve(fuzzServer.ln)
	})
	if fuzzServer.err != nil {
		f.Fatal(fuzzServer.err)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		client, server := net.Pipe()
		fuzzServer.ln.ch <- loopbackConn{server}
		go func() {
			client.SetWriteDeadline(time.Now().Add(2 * time.Second))
			client.Write(input)
			// end the session, unless the input left it inside IDLE or a literal
			client.Write([]byte("\r\nDONE\r\nzz LOGOUT\r\n"))
		}()
		client.SetReadDeadline(time.Now().Add(time.Second))
		var out bytes.Buffer
		io.Copy(&out, client)
		client.Close()
		if n := fuzzServer.watch.panics.Load(); n > 0 {
			t.Fatalf("server panicked (%d) on %q", n, input)
		}
	})
}
