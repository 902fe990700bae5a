package imapd_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"mailswarm/imapd"
	"mailswarm/internal/peertest"
)

// orKeys is "OR k1 OR k2 ... k(n)" for the keys given.
func orKeys(keys []string) string {
	if len(keys) == 1 {
		return keys[0]
	}
	return "OR " + keys[0] + " " + orKeys(keys[1:])
}

// twoLetterBodies returns n distinct "BODY xy" keys: two-letter needles
// are too short for the trigram index, so each reads every message.
func twoLetterBodies(n int) []string {
	const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	var keys []string
	for i := 0; len(keys) < n; i++ {
		keys = append(keys, "BODY "+string(alnum[i/len(alnum)%len(alnum)])+string(alnum[i%len(alnum)]))
	}
	return keys
}

// TestSearchLimits: the hostile SEARCH of issue 11 — 1,000 OR'd
// two-letter BODY keys, 11 KB — is refused at once with NO [LIMIT]
// naming the limit, as are deep nesting and too many text keys; a
// handful of keys, as clients send, is answered. Before, it ran 1,000
// scans of the list (75 s of two cores on a big list).
func TestSearchLimits(t *testing.T) {
	ts := newTestServer(t, synthetic(50), nil)
	rc := selected(t, ts.addr)
	probe := "c SEARCH " + orKeys(twoLetterBodies(1000))
	if len(probe) < 10<<10 {
		t.Fatalf("probe is %d bytes, want the issue's 11 KB", len(probe))
	}
	for _, tc := range []struct {
		cmd, want string
	}{
		{probe, "c NO [LIMIT]"},
		// 40 text keys, flat: more than a client sends
		{"d SEARCH " + strings.Join(twoLetterBodies(40), " "), "d NO [LIMIT] SEARCH has more than"},
		// NOT NOT ... 100 deep: no text key, only nesting
		{"e SEARCH " + strings.Repeat("NOT ", 100) + "SEEN", "e NO [LIMIT] SEARCH nests"},
		// 200 ORs of cheap keys: each side walks the scope (before:
		// answered, 2,900 of them took 20.9 s on 10,000 messages)
		{"h SEARCH " + strings.Repeat("OR LARGER 1 SEEN ", 200) + "ALL", "h NO [LIMIT] SEARCH has more than 128 criteria"},
		// Thunderbird's quick filter on two words, mutt's ~b
		{"f SEARCH OR OR OR OR FROM xy TO xy CC xy SUBJECT xy BODY xy OR OR OR OR FROM ab TO ab CC ab SUBJECT ab BODY ab", "f OK"},
		{"g UID SEARCH BODY xylophone1 NOT DELETED", "g OK"},
	} {
		rc.send(tc.cmd)
		lines, err := rc.tryUntil(tc.cmd[:2], 30*time.Second)
		if err != nil {
			t.Fatalf("%.60s...: %v", tc.cmd, err)
		}
		if got := lines[len(lines)-1]; !strings.HasPrefix(got, tc.want) {
			t.Errorf("%.60s...: got %q, want %q", tc.cmd, got, tc.want)
		}
	}
	if n := ts.srv.SearchReads(); n > 2*50*10 {
		t.Errorf("SEARCH read %d messages: the refused commands read some", n)
	}
}

// TestSearchDuplicateKeys: a key repeated reads each message once, not
// once per repetition. Before, 500 × "BODY of" read the 50 messages 500
// times (25,000 reads).
func TestSearchDuplicateKeys(t *testing.T) {
	ts := newTestServer(t, synthetic(50), nil)
	c := ts.dial(t, "u")
	mustCmd(t, c, "SELECT test")
	out := rawStrings(mustCmd(t, c, "SEARCH"+strings.Repeat(" BODY of", 500)+strings.Repeat(" TEXT qz", 500)))
	if !strings.Contains(out, "SEARCH\n") {
		t.Errorf("SEARCH: %s, want none (no message has \"qz\")", out)
	}
	if n := ts.srv.SearchReads(); n > 2*50*2 {
		t.Errorf("SEARCH read %d messages, want at most %d (each message once per distinct key)", n, 2*50*2)
	}
}

// slowSearch is a SEARCH within the limits that reads every message of
// slowList 30 times (a few seconds).
func slowSearch() (cmd string, reads int64) {
	var keys []string
	for _, x := range "abcdefghijklmnopqrstuvwxyz" {
		keys = append(keys, "BODY q"+string(x)) // no "q" in the bodies
	}
	keys = append(keys, "BODY jx", "BODY jz", "BODY xq", "BODY zx")
	return "c SEARCH " + orKeys(keys), int64(len(keys)) * slowListSize
}

const slowListSize = 3000

func slowList() [][]byte {
	para := strings.Repeat("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod\n", 30)
	var msgs [][]byte
	for i := 1; i <= slowListSize; i++ {
		msgs = append(msgs, fmt.Appendf(nil, "From: p%d@example.org\nSubject: s %d\nMessage-ID: <m%d@example.org>\n\n%s", i, i, i, para))
	}
	return msgs
}

// startSlowSearch sends slowSearch on a new connection and waits until
// the server reads messages for it.
func startSlowSearch(t *testing.T, ts *testServer) (rc *rawConn, before, total int64) {
	t.Helper()
	return startSlowSearchOn(t, ts, selected(t, ts.addr))
}

// startSlowSearchOn is startSlowSearch on rc, selected.
func startSlowSearchOn(t *testing.T, ts *testServer, rc *rawConn) (_ *rawConn, before, total int64) {
	t.Helper()
	before = ts.srv.SearchReads()
	cmd, reads := slowSearch()
	rc.send(cmd)
	for deadline := time.Now().Add(30 * time.Second); ts.srv.SearchReads() == before; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("SEARCH did not start reading messages in 30 s")
		}
	}
	return rc, before, before + reads
}

// waitSessions waits (up to d) until the server has no session open and
// says whether it got there.
func waitSessions(srv *imapd.Server, d time.Duration) bool {
	for deadline := time.Now().Add(d); srv.Sessions() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// TestSearchClientGone: a client that sends a slow SEARCH and hangs up
// (FIN, then RST) stops the search: the session ends before the search
// has read what it would have. go-imap does not read while a command
// runs; the connection layer watches the socket (wire.go). Before, the
// search ran to its end (90,000 reads, seconds of CPU) for nobody.
func TestSearchClientGone(t *testing.T) {
	ts := newTestServer(t, slowList(), nil)
	for _, how := range []string{"FIN", "RST"} {
		rc, before, total := startSlowSearch(t, ts)
		if how == "RST" {
			rc.c.(*net.TCPConn).SetLinger(0)
		}
		rc.c.Close()
		if !waitSessions(ts.srv, 60*time.Second) {
			t.Fatalf("%s: session still open 60 s after the client hung up", how)
		}
		if n := ts.srv.SearchReads(); n >= total {
			t.Errorf("%s: the search read all its %d messages after the client hung up", how, total-before)
		} else {
			t.Logf("%s: stopped after %d reads of %d", how, n-before, total-before)
		}
	}
}

// TestSearchClientGoneTLS: the same under implicit TLS, where the
// socket to watch is under the TLS layer.
func TestSearchClientGoneTLS(t *testing.T) {
	serverTLS, clientTLS := peertest.TLSPair(t)
	ts := newTestServer(t, slowList(), &imapd.Options{TLS: serverTLS})
	rc := selectOn(t, dialImaps(t, ts, clientTLS))
	_, before, total := startSlowSearchOn(t, ts, rc)
	rc.c.Close() // close_notify, then FIN
	if !waitSessions(ts.srv, 60*time.Second) {
		t.Fatal("session still open 60 s after the client hung up")
	}
	if n := ts.srv.SearchReads(); n >= total {
		t.Errorf("the search read all its %d messages after the client hung up", total-before)
	}
}

// TestSearchShutdown: Shutdown during a slow SEARCH stops it and returns
// once the session has ended. Before, Shutdown returned with the search
// still running on the archive its caller was about to close.
func TestSearchShutdown(t *testing.T) {
	ts := newTestServer(t, slowList(), nil)
	_, _, total := startSlowSearch(t, ts)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Shutdown did not return in 60 s")
	}
	if n := ts.srv.Sessions(); n > 0 {
		t.Errorf("Shutdown returned with %d session(s) still running", n)
	}
	if !waitSessions(ts.srv, 60*time.Second) {
		t.Fatal("session still open 60 s after Shutdown")
	}
	if n := ts.srv.SearchReads(); n >= total {
		t.Errorf("the search read all its %d messages after Shutdown", total)
	}
}

// TestSearchOrAll: an OR whose first side matches everything matches
// everything. Before, "OR ALL BODY xylophone1" answered only the
// messages with xylophone1 (the first side's "every message" was taken
// for none).
func TestSearchOrAll(t *testing.T) {
	ts := newTestServer(t, synthetic(5), nil)
	c := ts.dial(t, "u")
	mustCmd(t, c, "SELECT test")
	for _, q := range []string{"SEARCH OR ALL BODY xylophone1", "SEARCH OR BODY xylophone1 ALL", "SEARCH NOT OR ALL BODY xylophone1"} {
		want := "SEARCH 1 2 3 4 5\n"
		if strings.HasPrefix(q, "SEARCH NOT") {
			want = "SEARCH\n"
		}
		if out := rawStrings(mustCmd(t, c, q)); !strings.Contains(out, want) {
			t.Errorf("%s: %q, want %q", q, out, want)
		}
	}
}
