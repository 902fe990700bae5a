package peertest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SwaksOptions say what [SwaksSend] sends where.
type SwaksOptions struct {
	// Server is "host:port".
	Server string
	// LMTP speaks LMTP (LHLO, one reply per recipient) instead of SMTP.
	LMTP bool
	// From is the envelope sender; empty means swaks' default.
	From string
	// To are the envelope recipients; at least one.
	To []string
	// Args are extra swaks arguments ("--tls", "--quit-after", "RCPT").
	Args []string
}

// SwaksSend sends msg, a whole message with CRLF line ends, with swaks,
// exactly as given: swaks adds a CRLF before the terminating "." unless
// the data already ends with one, so SwaksSend supplies it. It returns
// swaks' transcript and fails t when swaks reports failure (any
// non-2xx reply it did not expect).
func SwaksSend(t testing.TB, opts SwaksOptions, msg []byte) string {
	t.Helper()
	Need(t, "swaks")
	if len(opts.To) == 0 {
		t.Fatal("peertest: SwaksSend: no recipients")
	}
	data := bytes.Clone(msg)
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\r\n")) {
		data = append(data, "\r\n"...)
	}
	data = append(data, ".\r\n"...)
	file := filepath.Join(t.TempDir(), "swaks.eml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatalf("peertest: swaks: %v", err)
	}
	args := []string{"--server", opts.Server, "--to", strings.Join(opts.To, ","), "--data", "@" + file, "--helo", "swaks.example.com"}
	if opts.From != "" {
		args = append(args, "--from", opts.From)
	}
	if opts.LMTP {
		args = append(args, "--protocol", "LMTP")
	}
	args = append(args, opts.Args...)
	out, err := exec.Command("swaks", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("peertest: swaks %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
