package imapd_test

import (
	"encoding/base64"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"mailswarm/imapd"
	"mailswarm/internal/peertest"
)

// plain is an AUTHENTICATE PLAIN command with its initial response (RFC 4616).
func plain(user, pass string) string {
	return "AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass))
}

// authFails runs cmd on a new connection and wants NO [AUTHENTICATIONFAILED].
func authFails(t *testing.T, addr, cmd string) {
	t.Helper()
	c := peertest.IMAPDial(t, addr)
	_, status, err := c.Cmd(cmd)
	if err == nil || !strings.HasPrefix(status, "NO [AUTHENTICATIONFAILED]") {
		t.Errorf("%.60s: %q, want NO [AUTHENTICATIONFAILED]", cmd, status)
	}
}

// TestLoginConfiguredNeedsPassword: a [[user]] name needs its password on
// loopback too (a TLS terminator or ssh -L on the same host makes every
// client loopback); a name not configured still logs in with any
// password there unless RequireLogin.
func TestLoginConfiguredNeedsPassword(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, synthetic(1), &imapd.Options{Users: map[string]string{"alice": string(hash)}})
	authFails(t, ts.addr, "LOGIN alice WRONG")
	authFails(t, ts.addr, `LOGIN alice ""`)
	authFails(t, ts.addr, plain("alice", "WRONG"))

	peertest.IMAPDial(t, ts.addr).Login("alice", "secret")
	c := peertest.IMAPDial(t, ts.addr)
	mustCmd(t, c, plain("alice", "secret"))
	peertest.IMAPDial(t, ts.addr).Login("bob", "anything")
	c = peertest.IMAPDial(t, ts.addr)
	mustCmd(t, c, plain("bob", "anything"))
}

// TestLoginSameWorkUnknownOrWrong: where a password is needed, an unknown
// name costs one bcrypt check, at the configured hashes' cost, just as a
// wrong password does, so timing does not tell which names exist. The
// checks are counted through a hook, not timed.
func TestLoginSameWorkUnknownOrWrong(t *testing.T) {
	const cost = bcrypt.MinCost + 1 // neither MinCost nor DefaultCost
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), cost)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var costs []int
	hook := func(s *imapd.Server) {
		imapd.SetCompare(s, func(h, p []byte) error {
			c, err := bcrypt.Cost(h)
			if err != nil {
				c = -1
			}
			mu.Lock()
			costs = append(costs, c)
			mu.Unlock()
			return bcrypt.CompareHashAndPassword(h, p)
		})
	}
	ts := newTestServer(t, synthetic(1), nil)
	ts.srv.Close() // serve with the hook in place from the start
	ts.startHook(t, &imapd.Options{Users: map[string]string{"alice": string(hash)}, RequireLogin: true}, hook)

	for _, cmd := range []string{"LOGIN mallory secret", "LOGIN alice WRONG", plain("mallory", "secret"), plain("alice", "WRONG")} {
		mu.Lock()
		costs = nil
		mu.Unlock()
		authFails(t, ts.addr, cmd)
		mu.Lock()
		got := costs
		mu.Unlock()
		if len(got) != 1 || got[0] != cost {
			t.Errorf("%.40s: bcrypt checks at costs %v, want one at cost %d", cmd, got, cost)
		}
	}
	peertest.IMAPDial(t, ts.addr).Login("alice", "secret")
}
