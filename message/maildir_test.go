package message

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// writeTestFiles creates files (path relative to dir → content).
func writeTestFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// walkNames returns the relative paths and messages WalkMaildir gives.
func walkNames(t *testing.T, root string) (names, msgs []string) {
	t.Helper()
	err := WalkMaildir(root, func(path string, msg []byte) error {
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			rel = filepath.Base(path)
		}
		names = append(names, filepath.ToSlash(rel))
		msgs = append(msgs, string(msg))
		return nil
	})
	if err != nil {
		t.Fatalf("WalkMaildir(%s): %v", root, err)
	}
	return names, msgs
}

func TestWalkMaildir(t *testing.T) {
	dir := t.TempDir()
	writeTestFiles(t, dir, map[string]string{
		"cur/1000.M2.host:2,S": "A: 2\n",
		"new/1000.M1.host":     "A: 1\n",
		"cur/1001.M3.host:2,":  "From a@b  Wed Jul  1 13:17:17 1998\nA: 3\n",
		"new/1002.M4.host":     "From me, with love\nA: 4\n",
		"cur/.hidden":          "no",
		"tmp/999.M0.host":      "no",
		".Sub/cur/1.M9.host":   "no",
		"dovecot-uidlist":      "no",
	})
	if err := os.Mkdir(filepath.Join(dir, "cur", "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	names, msgs := walkNames(t, dir)
	wantNames := []string{"new/1000.M1.host", "cur/1000.M2.host:2,S", "cur/1001.M3.host:2,", "new/1002.M4.host"}
	wantMsgs := []string{"A: 1\n", "A: 2\n", "A: 3\n", "From me, with love\nA: 4\n"}
	if !slices.Equal(names, wantNames) || !slices.Equal(msgs, wantMsgs) {
		t.Errorf("WalkMaildir gave %q %q, want %q %q", names, msgs, wantNames, wantMsgs)
	}
}

func TestWalkMaildirPlain(t *testing.T) {
	dir := t.TempDir()
	writeTestFiles(t, dir, map[string]string{
		"b.eml":        "A: b\n",
		"a.eml":        "A: a\r\n",
		"sub/c.eml":    "A: c\n",
		".git/config":  "no",
		"sub/.x.eml":   "no",
		"sub/z/d.eml":  "A: d\n",
		"sub/zz/e.eml": "A: e\n",
		// a bare repository in the tree is git's, not mail
		"sub/r.git/HEAD":            "ref: refs/heads/master\n",
		"sub/r.git/objects/pack/p":  "no",
		"sub/r.git/refs/heads/main": "no",
	})
	names, msgs := walkNames(t, dir)
	wantNames := []string{"a.eml", "b.eml", "sub/c.eml", "sub/z/d.eml", "sub/zz/e.eml"}
	wantMsgs := []string{"A: a\r\n", "A: b\n", "A: c\n", "A: d\n", "A: e\n"}
	if !slices.Equal(names, wantNames) || !slices.Equal(msgs, wantMsgs) {
		t.Errorf("WalkMaildir gave %q %q, want %q %q", names, msgs, wantNames, wantMsgs)
	}

	names, msgs = walkNames(t, filepath.Join(dir, "a.eml"))
	if !slices.Equal(names, []string{"a.eml"}) || !slices.Equal(msgs, []string{"A: a\r\n"}) {
		t.Errorf("WalkMaildir(a.eml) gave %q %q", names, msgs)
	}

	stop := errors.New("stop")
	n := 0
	if err := WalkMaildir(dir, func(string, []byte) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("WalkMaildir = %v after %d calls, want %v after 1", err, n, stop)
	}
	if err := WalkMaildir(filepath.Join(dir, "missing"), func(string, []byte) error { return nil }); err == nil {
		t.Error("WalkMaildir(missing) = nil, want an error")
	}
}

// TestWalkMaildirConverted converts corpora to Maildirs with Dovecot's
// helper script and checks that the Maildir holds the messages the mbox
// does.
func TestWalkMaildirConverted(t *testing.T) {
	needPeers(t)
	mboxCorpusFiles(t)
	script := filepath.Join("..", "bench", "dovecot", "mbox2maildir.py") // the project's copy of shared/peers/dovecot's
	if _, err := os.Stat(script); err != nil {
		missing(t, "no %s", script)
	}
	if _, err := exec.LookPath("python3"); err != nil {
		missing(t, "no python3")
	}
	// Only mboxrd corpora: the script splits at every "From " line after a
	// blank line, so on the edge cases it disagrees with public-inbox
	// (mailarc-1-dos.txt gives 15 messages, not 16).
	for _, name := range []string{"notmuch-test/default.mboxrd.gz", "notmuch-test/lkml.mboxrd.gz", "spamassassin/hard-ham-1.mboxrd.gz"} {
		t.Run(filepath.Base(name), func(t *testing.T) {
			src := filepath.Join(mboxCorporaDir(), name)
			rc, err := openMaybeGzip(src)
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			mbox := filepath.Join(dir, "in.mbox")
			if err := os.WriteFile(mbox, data, 0o644); err != nil {
				t.Fatal(err)
			}
			md := filepath.Join(dir, "Maildir")
			if out, err := exec.Command("python3", script, mbox, md).CombinedOutput(); err != nil {
				t.Fatalf("mbox2maildir.py: %v\n%s", err, out)
			}
			if !isMaildir(md) {
				t.Errorf("isMaildir(%s) = false for mbox2maildir.py's output", md)
			}
			var want []string
			for _, m := range mboxReadAll(t, bytes.NewReader(data), MboxRD) {
				want = append(want, string(m))
			}
			_, got := walkNames(t, md)
			// File names start with the date: compare as sets.
			slices.Sort(want)
			slices.Sort(got)
			if len(got) != len(want) {
				t.Fatalf("Maildir has %d messages, mbox %d", len(got), len(want))
			}
			for i := range got {
				if got[i] != want[i] {
					t.Errorf("Maildir message %.80q differs from mbox message %.80q", got[i], want[i])
				}
			}
		})
	}
}
