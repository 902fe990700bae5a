package gitstore

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPublicInboxIndex runs the real public-inbox-index on a store: it must
// take the directory for a v2 inbox and index every message.
func TestPublicInboxIndex(t *testing.T) {
	if _, err := exec.LookPath("public-inbox-index"); err != nil {
		t.Skip("public-inbox-index not installed")
	}
	dir := t.TempDir()
	s := openTest(t, dir, &Options{NoSync: true, EpochSize: 2 << 10})
	commits := testCommits(0, 24)
	for i := range commits {
		commits[i].Remove = false
	}
	if _, err := s.Append(commits); err != nil {
		t.Fatal(err)
	}
	if len(s.Epochs()) < 2 {
		t.Fatalf("test setup: want several epochs, have %v", s.Epochs())
	}
	home := t.TempDir()
	cmd := exec.Command("public-inbox-index", "-L", "basic", dir)
	cmd.Env = append(os.Environ(), "HOME="+home, "PI_CONFIG="+filepath.Join(home, "pi-config"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("public-inbox-index: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "msgmap.sqlite3")); err != nil {
		t.Fatalf("public-inbox-index made no msgmap: %v\n%s", err, out)
	}
	q := exec.Command("sqlite3", filepath.Join(dir, "msgmap.sqlite3"), "SELECT COUNT(*) FROM msgmap")
	got, err := q.Output()
	if err != nil {
		t.Skipf("sqlite3: %v", err)
	}
	if strings.TrimSpace(string(got)) != "24" {
		t.Errorf("msgmap holds %s messages, want 24", got)
	}
}
