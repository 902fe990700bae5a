package gitstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestAppendWalkRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, &Options{}) // with fsync
	commits := testCommits(0, 12)
	got, err := s.Append(commits[:5])
	if err != nil {
		t.Fatal(err)
	}
	more, err := s.Append(commits[5:])
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, more...)
	if len(got) != len(commits) {
		t.Fatalf("Append returned %d entries, want %d", len(got), len(commits))
	}
	tip, err := s.Tip(0)
	if err != nil || tip != got[len(got)-1].Commit {
		t.Fatalf("Tip = %s, %v; want %s", tip, err, got[len(got)-1].Commit)
	}
	walked := walkAll(t, s, 0, ZeroHash)
	if len(walked) != len(got) {
		t.Fatalf("Walk gave %d entries, want %d", len(walked), len(got))
	}
	for i, e := range walked {
		a := got[i]
		if e.Commit != a.Commit || e.Parent != a.Parent || e.Tree != a.Tree || e.Blob != a.Blob ||
			e.Remove != a.Remove || e.BlobLoc != a.BlobLoc || e.BlobSize != a.BlobSize || e.Message != a.Message {
			t.Fatalf("entry %d: walked %+v, appended %+v", i, e, a)
		}
		if e.Remove != commits[i].Remove {
			t.Errorf("entry %d: Remove = %v", i, e.Remove)
		}
		if e.Author.Name != strings.NewReplacer("<", "", ">", "").Replace(commits[i].Author.Name) ||
			e.Author.Email != strings.TrimSpace(commits[i].Author.Email) ||
			e.Author.When.Unix() != commits[i].Author.When.Unix() {
			t.Errorf("entry %d: author %+v", i, e.Author)
		}
		if _, off := e.Author.When.Zone(); off != 3600 {
			t.Errorf("entry %d: author zone offset %d, want 3600", i, off)
		}
		if e.Message != commits[i].Message+"\n" {
			t.Errorf("entry %d: message %q", i, e.Message)
		}
		if i > 0 && e.Parent != walked[i-1].Commit {
			t.Errorf("entry %d: parent %s, want %s", i, e.Parent, walked[i-1].Commit)
		}
		b, err := s.ReadBlob(e.BlobLoc)
		if err != nil || !bytes.Equal(b, commits[i].Blob) {
			t.Fatalf("ReadBlob(%v) = %d bytes, %v", e.BlobLoc, len(b), err)
		}
	}
	if !walked[0].Parent.IsZero() {
		t.Errorf("root has parent %s", walked[0].Parent)
	}
	// Walk from the middle.
	part := walkAll(t, s, 0, got[4].Commit)
	if len(part) != 7 || part[0].Commit != got[5].Commit {
		t.Errorf("Walk from %s gave %d entries", got[4].Commit, len(part))
	}
	// A hash not on the chain is an error.
	if err := s.Walk(0, Hash{1}, func(Entry) error { return nil }); err == nil {
		t.Error("Walk from a foreign hash succeeded")
	}
	// fn's error stops the walk.
	stop := errors.New("stop")
	if err := s.Walk(0, ZeroHash, func(Entry) error { return stop }); err != stop {
		t.Errorf("Walk returned %v, want fn's error", err)
	}
	if err := s.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}

	// Reopen: everything still readable.
	s.Close()
	s2 := openTest(t, dir, nil)
	for i, e := range walkAll(t, s2, 0, ZeroHash) {
		b, err := s2.ReadBlob(e.BlobLoc)
		if err != nil || !bytes.Equal(b, commits[i].Blob) {
			t.Fatalf("after reopen ReadBlob(%v): %v", e.BlobLoc, err)
		}
	}
	// Layout.
	for _, p := range []string{"inbox.lock", "all.git/HEAD", "git/0.git/HEAD", "git/0.git/config", "git/0.git/refs/heads/master"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("layout: %v", err)
		}
	}
	keeps, _ := filepath.Glob(filepath.Join(dir, "git/0.git/objects/pack/*.keep"))
	if len(keeps) != 2 {
		t.Errorf("%d .keep files, want 2", len(keeps))
	}
}

func TestDuplicateMessagesShareBlobs(t *testing.T) {
	s := openTest(t, t.TempDir(), nil)
	c := testCommits(0, 1)[0]
	es, err := s.Append([]Commit{c, c})
	if err != nil {
		t.Fatal(err)
	}
	es2, err := s.Append([]Commit{c})
	if err != nil {
		t.Fatal(err)
	}
	if es[0].Blob != es[1].Blob || es[0].BlobLoc != es[1].BlobLoc || es2[0].BlobLoc != es[0].BlobLoc {
		t.Errorf("same blob at %v, %v, %v", es[0].BlobLoc, es[1].BlobLoc, es2[0].BlobLoc)
	}
	if es[0].Commit == es[1].Commit {
		t.Error("two commits with one id")
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if n := len(walkAll(t, s, 0, ZeroHash)); n != 3 {
		t.Errorf("walked %d, want 3", n)
	}
}

func TestGitAcceptsEpoch(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	if _, err := s.Append(testCommits(0, 20)); err != nil {
		t.Fatal(err)
	}
	gd := filepath.Join(dir, "git", "0.git")
	git(t, dir, "--git-dir="+gd, "fsck", "--strict", "--no-dangling")
	log := git(t, dir, "--git-dir="+gd, "log", "--format=%an|%ae|%at|%ad|%s", "--date=raw")
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) != 20 {
		t.Fatalf("git log shows %d commits, want 20", len(lines))
	}
	c := testCommits(19, 1)[0]
	want := "Sender 5|s5@example.org|" + itoa(c.Author.When.Unix()) + "|" + itoa(c.Author.When.Unix()) + " +0100|[PATCH 19] test message number 19"
	if lines[0] != want {
		t.Errorf("git log newest = %q, want %q", lines[0], want)
	}
	show := git(t, dir, "--git-dir="+gd, "show", "master:m")
	if show != string(c.Blob) {
		t.Errorf("git show master:m differs")
	}
	// all.git sees the objects through its alternates.
	tip, _ := s.Tip(0)
	if got := git(t, dir, "--git-dir="+filepath.Join(dir, "all.git"), "cat-file", "-t", tip.String()); got != "commit\n" {
		t.Errorf("all.git cat-file -t = %q", got)
	}
	git(t, dir, "--git-dir="+gd, "verify-pack", "-v", mustGlob(t, filepath.Join(gd, "objects/pack/*.idx"))[0])
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func mustGlob(t testing.TB, pat string) []string {
	t.Helper()
	m, err := filepath.Glob(pat)
	if err != nil || len(m) == 0 {
		t.Fatalf("glob %s: %v (none)", pat, err)
	}
	return m
}

func TestEpochRollover(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, &Options{NoSync: true, EpochSize: 1})
	es, err := s.Append(testCommits(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Epochs(), []int{0, 1, 2}) {
		t.Fatalf("Epochs = %v, want [0 1 2]", s.Epochs())
	}
	for i, e := range es {
		if e.Epoch != i || !e.Parent.IsZero() {
			t.Errorf("entry %d: epoch %d parent %s", i, e.Epoch, e.Parent)
		}
		if b, err := s.ReadBlob(e.BlobLoc); err != nil || !bytes.Equal(b, testCommits(i, 1)[0].Blob) {
			t.Errorf("ReadBlob(%v): %v", e.BlobLoc, err)
		}
		w := walkAll(t, s, i, ZeroHash)
		if len(w) != 1 || w[0].Commit != e.Commit {
			t.Errorf("epoch %d walks %d commits", i, len(w))
		}
		git(t, dir, "--git-dir="+filepath.Join(dir, "git", itoa(int64(i))+".git"), "fsck", "--strict")
	}
	alt, err := os.ReadFile(filepath.Join(dir, "all.git/objects/info/alternates"))
	if err != nil {
		t.Fatal(err)
	}
	want := "../../git/0.git/objects\n../../git/1.git/objects\n../../git/2.git/objects\n"
	if string(alt) != want {
		t.Errorf("alternates = %q, want %q", alt, want)
	}
	for _, e := range es {
		if got := git(t, dir, "--git-dir="+filepath.Join(dir, "all.git"), "cat-file", "-t", e.Commit.String()); got != "commit\n" {
			t.Errorf("all.git cannot see %s", e.Commit)
		}
	}
	// The next append goes on the newest epoch's chain? It is full too, so
	// it opens epoch 3.
	more, err := s.Append(testCommits(3, 1))
	if err != nil || more[0].Epoch != 3 {
		t.Fatalf("Append after rollover: %v, %+v", err, more)
	}
	// Without a tiny limit, appends stay in the last epoch.
	s.Close()
	s2 := openTest(t, dir, nil)
	more, err = s2.Append(testCommits(4, 2))
	if err != nil || more[0].Epoch != 3 || more[1].Parent != more[0].Commit {
		t.Fatalf("Append after reopen: %v, %+v", err, more)
	}
	if err := s2.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir, nil)
	es, err := s.Append(testCommits(0, 3))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	gd := filepath.Join(dir, "git", "0.git")
	packDir := filepath.Join(gd, "objects", "pack")
	// A stale ref lock, a temp file, and a pack nobody points to.
	os.WriteFile(filepath.Join(gd, "refs/heads/master.lock"), []byte("junk"), 0o644)
	tmp := filepath.Join(packDir, tmpPrefix+"pack_dead")
	os.WriteFile(tmp, []byte("PACK junk"), 0o644)
	pb := newPackBuilder()
	orphan := []byte("orphan blob")
	pb.add(ObjBlob, hashObject(ObjBlob, orphan), orphan)
	if _, err := pb.write(packDir, true); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, dir, nil)
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temp file survived Open: %v", err)
	}
	if got := walkAll(t, s2, 0, ZeroHash); len(got) != 3 || got[2].Commit != es[2].Commit {
		t.Fatalf("walk after crash: %d entries", len(got))
	}
	if _, err := s2.Append(testCommits(3, 1)); err != nil {
		t.Fatalf("Append with a stale lock: %v", err)
	}
	if _, err := os.Stat(filepath.Join(gd, "refs/heads/master.lock")); !os.IsNotExist(err) {
		t.Errorf("stale lock still there: %v", err)
	}
	if err := s2.Check(); err != nil {
		t.Fatal(err)
	}
	git(t, dir, "--git-dir="+gd, "fsck", "--strict")
}

func TestConcurrentAppends(t *testing.T) {
	dir := t.TempDir()
	a := openTest(t, dir, nil)
	b := openTest(t, dir, nil) // a second "process"
	done := make(chan error, 2)
	for k, s := range []*Store{a, b} {
		go func() {
			for i := 0; i < 5; i++ {
				if _, err := s.Append(testCommits(100*k+i*3, 3)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := len(walkAll(t, a, 0, ZeroHash)); n != 30 {
		t.Fatalf("walked %d commits, want 30", n)
	}
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
}
