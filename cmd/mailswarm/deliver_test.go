package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func deliver(t *testing.T, data, list string, msg []byte) (int, string) {
	t.Helper()
	cmd := exec.Command(buildBinary(t), "deliver", "--data", data, "--list", list)
	cmd.Stdin = bytes.NewReader(msg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	return exitCode(err), stderr.String()
}

// TestDeliverExitCodes checks deliver's sysexits: 0 durable and archived,
// 65 for mail that cannot be archived, 67 for an unknown list, 64 for bad
// usage.
func TestDeliverExitCodes(t *testing.T) {
	data := t.TempDir()
	seed := filepath.Join(t.TempDir(), "seed.eml")
	os.WriteFile(seed, []byte("From: a@example.org\nSubject: seed\nMessage-ID: <seed@x>\n\nseed\n"), 0o644)
	if _, stderr, err := mailswarm(t, "import", "--data", data, "--list", "l", seed); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	msg := []byte("From: b@example.org\nSubject: piped\nMessage-ID: <piped@x>\n\npiped\n")
	if code, stderr := deliver(t, data, "l", msg); code != 0 {
		t.Fatalf("deliver: exit %d (%s)", code, stderr)
	}
	out, stderr, err := mailswarm(t, "export", "--data", data, "--list", "l")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	if !bytes.Contains(out, msg) {
		t.Fatalf("delivered message not in export:\n%s", out)
	}
	for _, tc := range []struct {
		list string
		msg  []byte
		want int
	}{
		{"l", nil, exDataErr},
		{"nosuch", msg, exNoUser},
		{"", msg, exUsage},
	} {
		code, stderr := deliver(t, data, tc.list, tc.msg)
		if code != tc.want {
			t.Errorf("deliver --list %q (%d bytes): exit %d, want %d (%s)", tc.list, len(tc.msg), code, tc.want, stderr)
		}
		if strings.TrimSpace(stderr) == "" {
			t.Errorf("deliver --list %q: no message on stderr", tc.list)
		}
	}
	if _, stderr, err := mailswarm(t, "verify", "--data", data, "--list", "l"); err != nil {
		t.Fatalf("verify: %v\n%s", err, stderr)
	}
}
