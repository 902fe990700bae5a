package smtpin

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"mailswarm/internal/peertest"
)

func swaks(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	args = append([]string{"--server", host, "--port", port, "--from", "a@example.org", "--helo", "test.example", "--timeout", "30"}, args...)
	out, err := exec.Command("swaks", args...).CombinedOutput()
	return string(out), err
}

// TestSwaks: the real swaks delivers to us over SMTP and LMTP, and sees
// 550 for an unknown list.
func TestSwaks(t *testing.T) {
	peertest.Need(t, "swaks")
	for _, lmtp := range []bool{false, true} {
		t.Run("lmtp="+strconv.FormatBool(lmtp), func(t *testing.T) {
			d := &fakeDeliverer{}
			_, addr := start(t, d, &Options{LMTP: lmtp})
			var proto []string
			if lmtp {
				proto = []string{"--protocol", "LMTP"}
			}
			out, err := swaks(t, addr, append(proto, "--to", "demo@localhost", "--header", "Subject: from swaks", "--body", "hello from swaks\n.dot")...)
			if err != nil {
				t.Fatalf("swaks: %v\n%s", err, out)
			}
			got := d.deliveries()
			if len(got) != 1 || got[0].list != "demo" || !strings.Contains(got[0].raw, "Subject: from swaks\r\n") || !strings.Contains(got[0].raw, "\r\n.dot") {
				t.Fatalf("deliveries = %q\nswaks said:\n%s", got, out)
			}
			out, err = swaks(t, addr, append(proto, "--to", "nobody@localhost")...)
			if err == nil || !strings.Contains(out, "550 5.1.1") {
				t.Fatalf("swaks to unknown: %v\n%s", err, out)
			}
		})
	}
}
