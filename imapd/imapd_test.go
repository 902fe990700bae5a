package imapd_test

import (
	"context"
	"fmt"
	"net"
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
func (ts *testServer) start(t testing.TB, opts *imapd.Options) { ts.startHook(t, opts, nil) }

// startHook is start calling hook, if any, on the server before it serves.
func (ts *testServer) startHook(t testing.TB, opts *imapd.Options, hook func(*imapd.Server)) {
	t.Helper()
	o := imapd.Options{}
	if opts != nil {
		o = *opts
	}
	if o.LoginFailureDelay == 0 { // tests that fail logins need not wait 2 s each
		o.LoginFailureDelay = time.Millisecond
	}
	srv, err := imapd.New(ts.a, &o)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(srv)
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

// TestCommands: what a client sees for the common commands and the
// extensions imapd announces.
func TestCommands(t *testing.T) {
	ts := newTestServer(t, synthetic(5), nil)
	c := ts.dial(t, "alice")
	for _, tc := range []struct {
		cmd  string
		want []string
	}{
		{"CAPABILITY", []string{"IMAP4rev1", "IDLE", "NAMESPACE", "ESEARCH", "LIST-STATUS", "LIST-EXTENDED", "BINARY", "SPECIAL-USE", "UNSELECT", "CHILDREN", "LITERAL-", "ID"}},
		{`LIST "" "*"`, []string{`LIST (\HasNoChildren) "/" INBOX`, `LIST (\HasChildren) "/" "test"`, `LIST (\HasNoChildren) "/" "test/2006"`}},
		{`LIST "" "%"`, []string{`"test"`}},
		{`LSUB "" "*"`, []string{`"test/2006"`}},
		{`LIST "" "test/%" RETURN (STATUS (MESSAGES UIDNEXT))`, []string{`STATUS "test/2006" (MESSAGES 5 UIDNEXT 6)`}},
		{`LIST (SPECIAL-USE) "" "*"`, nil},
		{"NAMESPACE", []string{`NAMESPACE (("" "/")) NIL NIL`}},
		{"STATUS test (MESSAGES UNSEEN UIDNEXT UIDVALIDITY)", []string{"MESSAGES 5", "UNSEEN 5", "UIDNEXT 6", fmt.Sprintf("UIDVALIDITY %d", ts.l.UIDValidity("test"))}},
		{"SELECT test", []string{"5 EXISTS", "OK [UIDNEXT 6]", "OK [UNSEEN 1]", `PERMANENTFLAGS (\Seen \Answered \Flagged \Draft \*)`}},
		{"UID SEARCH RETURN (MIN MAX COUNT) SUBJECT number", []string{"ESEARCH (TAG", "UID MIN 1 MAX 5 COUNT 5"}},
		{"SEARCH BODY xylophone1", []string{"SEARCH 1 4"}},
		{"SEARCH NOT BODY xylophone1", []string{"SEARCH 2 3 5"}},
		{"SEARCH OR SUBJECT 2 FROM p5@", []string{"SEARCH 2 5"}},
		{"SEARCH LARGER 10000", []string{"SEARCH\n"}}, // none: exactly "SEARCH"
		{"SEARCH SMALLER 10000 LARGER 100", []string{"SEARCH 1 2 3 4 5\n"}},
		{"UNSELECT", nil},
	} {
		out := rawStrings(mustCmd(t, c, tc.cmd))
		if tc.want == nil && strings.TrimSpace(out) != "" && tc.cmd != "UNSELECT" {
			t.Errorf("%s: want nothing, got\n%s", tc.cmd, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s:\n%s\nwant %q", tc.cmd, out, w)
			}
		}
	}
	// UNSELECT left the selected state
	if _, _, err := c.Cmd("FETCH 1 (UID)"); err == nil {
		t.Error("FETCH after UNSELECT worked")
	}
}

// restart serves the same archive with a new server.
func (ts *testServer) restart(t testing.TB, opts *imapd.Options) {
	t.Helper()
	ts.srv.Close()
	ts.start(t, opts)
}
