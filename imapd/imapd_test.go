package imapd_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailswarm/archive"
	"mailswarm/imapd"
	"mailswarm/internal/peertest"
)

// testServer is an archive with one list "test" holding msgs, served by
// imapd on 127.0.0.1.
type testServer struct {
	a    *archive.Archive
	l    *archive.List
	srv  *imapd.Server
	addr string
}

func newTestServer(t testing.TB, msgs [][]byte, opts *imapd.Options) *testServer {
	t.Helper()
	a, err := archive.Open(&archive.Options{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.Create("test", "test@example.org")
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) > 0 {
		if _, err := l.Add(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { a.Close() }) // after the server's cleanup
	ts := &testServer{a: a, l: l}
	ts.start(t, opts)
	return ts
}

// start serves the archive with a new server, closed at cleanup.
func (ts *testServer) start(t testing.TB, opts *imapd.Options) {
	t.Helper()
	srv, err := imapd.New(ts.a, opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ts.srv, ts.addr = srv, ln.Addr().String()
}

func (ts *testServer) dial(t testing.TB, user string) *peertest.IMAPConn {
	c := peertest.IMAPDial(t, ts.addr)
	c.Login(user, "any")
	return c
}

func mustCmd(t testing.TB, c *peertest.IMAPConn, cmd string) []peertest.IMAPResp {
	t.Helper()
	u, _, err := c.Cmd(cmd)
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return u
}

func rawStrings(rs []peertest.IMAPResp) string {
	var b strings.Builder
	for _, r := range rs {
		b.Write(r.Raw)
		b.WriteByte('\n')
	}
	return b.String()
}

func synthetic(n int) [][]byte {
	var out [][]byte
	for i := 1; i <= n; i++ {
		out = append(out, fmt.Appendf(nil, "From: Person %d <p%d@example.org>\nTo: test@example.org\nSubject: message number %d\nDate: Mon, 2 Jan 2006 15:04:%02d +0000\nMessage-ID: <m%d@example.org>\n\nbody of message %d\nxylophone%d\n", i, i, i, i%60, i, i, i%3))
	}
	return out
}

func TestSmoke(t *testing.T) {
	ts := newTestServer(t, synthetic(5), nil)
	c := ts.dial(t, "alice")
	t.Log(rawStrings(mustCmd(t, c, `LIST "" "*"`)))
	t.Log(rawStrings(mustCmd(t, c, `SELECT test`)))
	t.Log(rawStrings(mustCmd(t, c, `FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)`)))
	t.Log(rawStrings(mustCmd(t, c, `UID FETCH 2 (BODY.PEEK[HEADER.FIELDS (Subject From)] BODY[TEXT]<0.10> RFC822.SIZE)`)))
	t.Log(rawStrings(mustCmd(t, c, `SEARCH BODY xylophone1`)))
	t.Log(rawStrings(mustCmd(t, c, `UID SEARCH UNSEEN`)))
	t.Log(rawStrings(mustCmd(t, c, `FETCH 3 (RFC822)`)))
	t.Log(rawStrings(mustCmd(t, c, `STORE 1 +FLAGS (\Flagged $label1)`)))
	t.Log(rawStrings(mustCmd(t, c, `UID SEARCH RETURN (MIN MAX COUNT) SUBJECT number`)))
	t.Log(rawStrings(mustCmd(t, c, `STATUS test (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)`)))
	_ = os.Stdout
	_ = filepath.Join
	_ = time.Now
}

// restart serves the same archive with a new server.
func (ts *testServer) restart(t testing.TB, opts *imapd.Options) {
	t.Helper()
	ts.srv.Close()
	ts.start(t, opts)
}
