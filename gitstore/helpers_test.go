package gitstore

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// testMessage returns a mail-like message of about size bytes; messages
// share most of their text so git repack finds deltas.
func testMessage(i, size int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: Sender %d <s%d@example.org>\nTo: list@example.org\n", i%7, i%7)
	fmt.Fprintf(&b, "Subject: [PATCH %d] test message number %d\nMessage-ID: <msg%d@example.org>\n", i, i, i)
	fmt.Fprintf(&b, "Date: Mon, 2 Jan 2006 15:04:%02d +0100\n\n", i%60)
	for b.Len() < size {
		fmt.Fprintf(&b, "This is line %d of the body; lorem ipsum dolor sit amet, consectetur.\n", b.Len()/70)
	}
	fmt.Fprintf(&b, "-- \nsignature %d\n", i)
	return b.Bytes()
}

// testCommits returns n commits starting at number first.
func testCommits(first, n int) []Commit {
	out := make([]Commit, n)
	for k := range out {
		i := first + k
		when := time.Date(2006, 1, 2, 15, 4, i%60, 0, time.FixedZone("", 3600))
		out[k] = Commit{
			Blob:      testMessage(i, 2000+i%5*300),
			Remove:    i%11 == 10,
			Author:    Ident{Name: fmt.Sprintf("Sender <%d>", i%7), Email: fmt.Sprintf(" s%d@example.org ", i%7), When: when},
			Committer: Ident{Name: "mailswarm", Email: "list@example.org", When: when.In(time.UTC)},
			Message:   fmt.Sprintf("[PATCH %d] test message number %d", i, i),
		}
	}
	return out
}

// git runs the real git and returns its standard output.
func git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return gitEnv(t, dir, nil, "", args...)
}

func gitEnv(t testing.TB, dir string, env []string, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func openTest(t testing.TB, dir string, opts *Options) *Store {
	t.Helper()
	if opts == nil {
		opts = &Options{NoSync: true}
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// walkAll returns every entry of an epoch.
func walkAll(t testing.TB, s *Store, epoch int, from Hash) []Entry {
	t.Helper()
	var out []Entry
	if err := s.Walk(epoch, from, func(e Entry) error { out = append(out, e); return nil }); err != nil {
		t.Fatalf("Walk(%d, %s): %v", epoch, from, err)
	}
	return out
}
