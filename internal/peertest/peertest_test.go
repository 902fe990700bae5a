package peertest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckTool(t *testing.T) {
	if err := checkTool("sh"); err != nil {
		t.Errorf("checkTool(%q) = %v, want nil", "sh", err)
	}
	if err := checkTool("mailswarm-no-such-tool"); err == nil {
		t.Errorf("checkTool(%q) = nil, want an error", "mailswarm-no-such-tool")
	}
	if _, err := exec.LookPath("perl"); err == nil {
		if err := checkTool("perl:Mailswarm::NoSuchModule"); err == nil {
			t.Errorf("checkTool(perl:Mailswarm::NoSuchModule) = nil, want an error")
		}
		if err := checkTool("perl:strict"); err != nil {
			t.Errorf("checkTool(perl:strict) = %v, want nil", err)
		}
	}
	if _, err := exec.LookPath("python3"); err == nil {
		if err := checkTool("python3:mailswarm_no_such_module"); err == nil {
			t.Errorf("checkTool(python3:mailswarm_no_such_module) = nil, want an error")
		}
		if err := checkTool("python3:imaplib"); err != nil {
			t.Errorf("checkTool(python3:imaplib) = %v, want nil", err)
		}
	}
}

func TestSharedDirEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MAILSWARM_SHARED", dir)
	if got := SharedDir(t); got != dir {
		t.Errorf("SharedDir with MAILSWARM_SHARED=%s = %s", dir, got)
	}
	t.Setenv("MAILSWARM_SHARED", filepath.Join(dir, "missing"))
	if _, err := findShared(); err == nil {
		t.Errorf("findShared with a missing MAILSWARM_SHARED = nil error")
	}
}

func TestCorpora(t *testing.T) {
	files := Corpora(t)
	var sawDefault, sawEdge bool
	for _, f := range files {
		if !filepath.IsAbs(f) {
			t.Errorf("Corpora: %s is not absolute", f)
		}
		if strings.HasSuffix(f, filepath.FromSlash("notmuch-test/default.mboxrd.gz")) {
			sawDefault = true
		}
		if strings.HasSuffix(f, filepath.FromSlash("mbox-edge-cases/mailarc-1.txt")) {
			sawEdge = true
		}
		if strings.Contains(f, "LICENSES") || strings.HasSuffix(f, ".md") {
			t.Errorf("Corpora lists %s, which is no corpus", f)
		}
	}
	if !sawDefault || !sawEdge {
		t.Errorf("Corpora = %v: want notmuch-test/default.mboxrd.gz and mbox-edge-cases/mailarc-1.txt", files)
	}
}

func TestFreePort(t *testing.T) {
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Errorf("FreePort = %d", p)
	}
}

func TestPIStrip(t *testing.T) {
	in := "Delivered-To: a@b\r\nSubject: x\r\nX-Original-To: a@b,\r\n\tc@d\r\nstatus: RO\r\nTo: e@f\r\n\r\nLines: 3\r\n"
	want := "Subject: x\r\nTo: e@f\r\n\r\nLines: 3\r\n"
	if got := string(PIStrip([]byte(in))); got != want {
		t.Errorf("PIStrip(%q) = %q, want %q", in, got, want)
	}
}

func TestSplitMboxrd(t *testing.T) {
	in := "From a@b Thu Jan  1 00:00:00 1970\nSubject: one\n\n>From here\n>>From there\n\n" +
		"From b@c Thu Jan  1 00:00:00 1970\nSubject: two\n\nbody\n\n"
	got := splitMboxrd([]byte(in))
	want := []string{
		"Subject: one\n\nFrom here\n>From there\n",
		"Subject: two\n\nbody\n",
	}
	if len(got) != len(want) {
		t.Fatalf("splitMboxrd: %d messages, want %d: %q", len(got), len(want), got)
	}
	for i := range want {
		if string(got[i]) != want[i] {
			t.Errorf("splitMboxrd message %d = %q, want %q", i, got[i], want[i])
		}
	}
}

// TestPublicInboxRoundTrip imports the notmuch corpus with public-inbox,
// serves it with public-inbox-imapd and fetches it back with python's
// imaplib: the helpers other packages' interop tests stand on.
func TestPublicInboxRoundTrip(t *testing.T) {
	Need(t, "public-inbox", "git", "sqlite3", "python3")
	mbox := Corpus(t, "notmuch-test/default.mboxrd.gz")
	orig := ReadMboxrd(t, mbox)
	if len(orig) != 53 {
		t.Fatalf("ReadMboxrd(default) = %d messages, want 53", len(orig))
	}
	// 53 messages, 52 Message-IDs: the repeated one is an exact copy, which
	// public-inbox drops.
	const want = 52
	inbox, n := PIImportMbox(t, mbox)
	if n != want {
		t.Fatalf("PIImportMbox(default) kept %d messages, want %d", n, want)
	}

	byContent := make(map[string]bool, len(orig))
	for _, m := range orig {
		// public-inbox drops Delivered-To, X-Original-To and the like
		byContent[string(PIStrip(m))] = true
	}
	check := func(t *testing.T, name, dir string) {
		port := PIStartIMAPD(t, name, dir, name+"@example.org")
		msgs := PIIMAPFetchAll(t, port, PIMailbox(name, 0))
		if len(msgs) != want {
			t.Fatalf("PIIMAPFetchAll = %d messages, want %d", len(msgs), want)
		}
		seen := make(map[string]bool)
		for i, m := range msgs {
			lf := string(bytes.ReplaceAll(m, []byte("\r\n"), []byte("\n")))
			if !byContent[lf] {
				t.Errorf("message %d (%d bytes) is not byte-identical to any mbox message less PIDroppedHeaders:\n%.300s", i+1, len(m), lf)
			}
			if seen[lf] {
				t.Errorf("message %d fetched twice", i+1)
			}
			seen[lf] = true
		}
	}
	t.Run("imported", func(t *testing.T) { check(t, "notmuch", inbox) })

	// A bare copy of epoch 0 beside inbox.lock, as a mailswarm list holds
	// it, indexed from scratch by PIIndex.
	t.Run("reindexed", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "git"), 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, nil, "git", "clone", "-q", "--mirror", filepath.Join(inbox, "git", "0.git"), filepath.Join(dir, "git", "0.git"))
		if err := os.WriteFile(filepath.Join(dir, "inbox.lock"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if got := PIIndex(t, dir); got != want {
			t.Fatalf("PIIndex = %d messages, want %d", got, want)
		}
		check(t, "copy", dir)
	})
}
