package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"mailswarm/internal/peertest"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nonsense"},
		{"import", "--list", "x", "file"},
		{"import", "--data", t.TempDir(), "--list", "x"},
		{"import", "--data", t.TempDir(), "--list", "Bad Name", "f"},
		{"export", "--data", t.TempDir(), "--list", "x", "--since", "yesterday"},
		{"verify", "--data", t.TempDir()},
		{"stats", "--bogus"},
	} {
		_, stderr, err := mailswarm(t, args...)
		if c := exitCode(err); c != 2 {
			t.Errorf("mailswarm %q: exit %d, want 2 (stderr %q)", args, c, stderr)
		}
		if len(stderr) == 0 {
			t.Errorf("mailswarm %q: no message on stderr", args)
		}
	}
	if _, stderr, err := mailswarm(t, "verify", "--data", t.TempDir(), "--list", "nosuch"); exitCode(err) != 1 || !strings.Contains(string(stderr), "unknown list") {
		t.Errorf("verify of a missing list: exit %d, stderr %q; want 1 and 'unknown list'", exitCode(err), stderr)
	}
}

func TestImportStatsExport(t *testing.T) {
	data := t.TempDir()
	mbox := peertest.Corpus(t, "notmuch-test/lkml.mboxrd.gz")
	_, stderr, err := mailswarm(t, "import", "--data", data, "--list", "lkml", "--address", "lkml@example.org", mbox)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if !strings.Contains(string(stderr), "imported ") || !strings.Contains(string(stderr), "duplicates ") {
		t.Fatalf("import summary missing: %q", stderr)
	}
	out, stderr, err := mailswarm(t, "stats", "--data", data, "--json")
	if err != nil {
		t.Fatalf("stats: %v\n%s", err, stderr)
	}
	var st struct {
		Lists []struct {
			Name        string `json:"name"`
			Messages    int64  `json:"messages"`
			Epochs      int    `json:"epochs"`
			LastArticle int64  `json:"last_article"`
			Bytes       int64  `json:"bytes"`
		} `json:"lists"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("stats output %q: %v", out, err)
	}
	if len(st.Lists) != 1 || st.Lists[0].Name != "lkml" || st.Lists[0].Messages == 0 ||
		st.Lists[0].Epochs != 1 || st.Lists[0].LastArticle != st.Lists[0].Messages || st.Lists[0].Bytes == 0 {
		t.Fatalf("stats = %+v", st)
	}
	exp, stderr, err := mailswarm(t, "export", "--data", data, "--list", "lkml")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	if n := strings.Count("\n"+string(exp), "\nFrom mboxrd@z "); int64(n) != st.Lists[0].Messages {
		t.Fatalf("export has %d messages, stats says %d", n, st.Lists[0].Messages)
	}
	// A window that holds nothing exports nothing.
	exp, _, err = mailswarm(t, "export", "--data", data, "--list", "lkml", "--since", "1990-01-01", "--until", "1990-12-31")
	if err != nil || len(exp) != 0 {
		t.Fatalf("export of 1990: %d bytes, %v", len(exp), err)
	}
	if _, stderr, err := mailswarm(t, "reindex", "--data", data, "--list", "lkml"); err != nil {
		t.Fatalf("reindex: %v\n%s", err, stderr)
	}
	if _, stderr, err := mailswarm(t, "verify", "--data", data, "--list", "lkml"); err != nil {
		t.Fatalf("verify: %v\n%s", err, stderr)
	}
}

// TestVerifyDetectsDamage flips a byte in a pack: verify must fail.
func TestVerifyDetectsDamage(t *testing.T) {
	data := t.TempDir()
	mbox := peertest.Corpus(t, "notmuch-test/default.mboxrd.gz")
	if _, stderr, err := mailswarm(t, "import", "--data", data, "--list", "d", mbox); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	packs, _ := filepath.Glob(filepath.Join(data, "lists", "d", "git", "0.git", "objects", "pack", "*.pack"))
	if len(packs) == 0 {
		t.Fatal("no packs")
	}
	b, err := os.ReadFile(packs[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x55
	if err := os.WriteFile(packs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := mailswarm(t, "verify", "--data", data, "--list", "d")
	if exitCode(err) != 1 {
		t.Fatalf("verify of a damaged pack: exit %d, want 1 (stderr %q)", exitCode(err), stderr)
	}
}
