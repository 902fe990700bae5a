package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

// testMbox writes an mboxrd of n messages with ids <prefix-i@test> and
// returns its path.
func testMbox(t *testing.T, prefix string, n int) string {
	t.Helper()
	var b strings.Builder
	day := time.Date(2024, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range n {
		d := day.Add(time.Duration(i) * 7 * time.Hour)
		fmt.Fprintf(&b, "From mboxrd@z Thu Jan  1 00:00:00 1970\nFrom: Poster %d <p%d@example.net>\nTo: dev@example.org\n"+
			"Subject: %s message %d\nDate: %s\nMessage-ID: <%s-%d@test>\n\nbody %d\n\n",
			i%5, i%5, prefix, i, d.Format(time.RFC1123Z), prefix, i, i)
	}
	path := filepath.Join(t.TempDir(), prefix+".mbox")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// gitMirror runs `git clone --mirror src dst`: what a user gets cloning a
// lore.kernel.org list's epochs.
func gitMirror(t *testing.T, src, dst string) {
	t.Helper()
	peertest.Need(t, "git")
	if out, err := exec.Command("git", "clone", "-q", "--mirror", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("git clone --mirror: %v\n%s", err, out)
	}
}

func exportList(t *testing.T, data, list string) []byte {
	t.Helper()
	out, stderr, err := mailswarm(t, "export", "--data", data, "--list", list)
	if err != nil {
		t.Fatalf("export %s: %v\n%s", list, err, stderr)
	}
	return out
}

// TestImportMirrorClone: a directory X/git/0.git made by `git clone
// --mirror` of a public-inbox epoch (no inbox.lock, no msgmap.sqlite3) is
// imported as a public-inbox inbox: the same messages as the original,
// none of git's files archived as mail.
func TestImportMirrorClone(t *testing.T) {
	data := t.TempDir()
	const n = 40
	if _, stderr, err := mailswarm(t, "import", "--data", data, "--list", "orig", testMbox(t, "orig", n)); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	x := t.TempDir()
	gitMirror(t, filepath.Join(data, "lists", "orig", "git", "0.git"), filepath.Join(x, "git", "0.git"))
	_, stderr, err := mailswarm(t, "import", "--data", data, "--list", "copy", x)
	if err != nil {
		t.Fatalf("import of the mirror: %v\n%s", err, stderr)
	}
	if !strings.Contains(string(stderr), fmt.Sprintf("adopted %d,", n)) || !strings.Contains(string(stderr), "malformed (kept) 0") {
		t.Errorf("import of the mirror said %q; want %d adopted, none malformed", stderr, n)
	}
	orig, cp := exportList(t, data, "orig"), exportList(t, data, "copy")
	if !bytes.Equal(orig, cp) {
		t.Errorf("export of the imported mirror differs from the original: %d messages, want %d",
			bytes.Count(cp, []byte("\nFrom mboxrd@z "))+1, bytes.Count(orig, []byte("\nFrom mboxrd@z "))+1)
	}
	if _, stderr, err := mailswarm(t, "verify", "--data", data, "--list", "copy"); err != nil {
		t.Errorf("verify: %v\n%s", err, stderr)
	}
}

// TestImportRefusesRepoWithoutMail: a directory holding nothing but a bare
// repository (below a subdirectory) is not mail: import exits non-zero,
// creates no list and commits nothing to an existing one.
func TestImportRefusesRepoWithoutMail(t *testing.T) {
	data := t.TempDir()
	if _, stderr, err := mailswarm(t, "import", "--data", data, "--list", "dev", testMbox(t, "dev", 5)); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	y := t.TempDir()
	gitMirror(t, filepath.Join(data, "lists", "dev", "git", "0.git"), filepath.Join(y, "sub", "repo.git"))
	before := exportList(t, data, "dev")

	_, stderr, err := mailswarm(t, "import", "--data", data, "--list", "fresh", y)
	if exitCode(err) == 0 || !strings.Contains(string(stderr), "no mail") {
		t.Errorf("import of a bare repository into a new list: exit %d, %q; want non-zero, 'no mail'", exitCode(err), stderr)
	}
	if _, err := os.Stat(filepath.Join(data, "lists", "fresh")); !os.IsNotExist(err) {
		t.Errorf("list fresh was created (%v)", err)
	}
	_, stderr, err = mailswarm(t, "import", "--data", data, "--list", "dev", y)
	if exitCode(err) == 0 {
		t.Errorf("import of a bare repository into dev: exit 0, %q", stderr)
	}
	if after := exportList(t, data, "dev"); !bytes.Equal(before, after) {
		t.Errorf("dev changed: %d bytes exported, %d before", len(after), len(before))
	}
}
