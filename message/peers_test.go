package message

import (
	"flag"
	"os"
	"testing"
)

// The tests that compare this package with peer programs (public-inbox's
// MboxReader and import through perl, Dovecot's mbox2maildir.py) take
// about 30 s of the 50 s `go test ./message` took with them on two busy
// cores, so a plain run skips them and stays a fast loop for parser work.
// They run with -peers, and always under CI (CI set in the environment,
// as .ci/run does), where a missing peer then fails rather than skips.
// imapd's Dovecot oracle covers ENVELOPE and BODYSTRUCTURE.
var peers = flag.Bool("peers", false, "also compare with the peer programs (public-inbox, mbox2maildir.py)")

// withPeers reports whether the peer comparisons run.
func withPeers() bool { return *peers || os.Getenv("CI") != "" }

// needPeers skips t unless the peer comparisons run.
func needPeers(t testing.TB) {
	t.Helper()
	if !withPeers() {
		t.Skip("compares with a peer program: run with -args -peers (always under CI)")
	}
}

// missing skips t for want of a peer program or the corpora, or fails it
// under CI, where .ci/run has installed them: a comparison CI never runs
// is a defect (this package cannot import internal/peertest, which does
// the same for the other packages).
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}
