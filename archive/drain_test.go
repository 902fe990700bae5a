package archive

import (
	"context"
	"testing"
	"time"
)

// TestRun: a list opened after Run started gets a committer, which drains
// at each interval and once more when Run's context ends.
func TestRun(t *testing.T) {
	a, err := Open(&Options{Dir: t.TempDir(), CommitInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	time.Sleep(10 * time.Millisecond)
	l, err := a.Create("late", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := l.Accept(ctx, spoolMsg(i, true)); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); len(subjects(t, l)) < 3; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("committer archived %d of 3 in 10 s", len(subjects(t, l)))
		}
	}
	a.opts.CommitInterval = time.Hour // not read again by the running loop
	if err := l.Accept(ctx, spoolMsg(3, false)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := len(subjects(t, l)); got != 4 {
		t.Errorf("%d articles after Run ended, want 4", got)
	}
}

// TestRunBusyList: a list that has just committed commits the next message
// as soon as the running pass allows, not at the next interval. Before,
// mail arriving within CommitInterval of a commit waited for the ticker
// (up to 1 s; IDLE saw it ~0.7 s late at one message per 0.3 s); with the
// interval at an hour the second message here was never committed.
func TestRunBusyList(t *testing.T) {
	a, err := Open(&Options{Dir: t.TempDir(), CommitInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	l, err := a.Create("busy", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}()
	for i := range 3 {
		if err := l.Accept(ctx, spoolMsg(i, true)); err != nil {
			t.Fatal(err)
		}
		// A bound on liveness, not a timing assertion: an interval-bound
		// committer would take an hour.
		for deadline := time.Now().Add(10 * time.Second); len(subjects(t, l)) < i+1; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("message %d not committed in 10 s (committed %d)", i, len(subjects(t, l)))
			}
		}
	}
}

// TestLingerBounded: the linger after new mail follows the last pass (at
// least commitLinger) but never exceeds the commit interval. A pass slowed
// by something other than its batch (another process holding the index's
// write lock up to SQLite's 30 s busy timeout) made the next message wait
// as long before the cap.
func TestLingerBounded(t *testing.T) {
	for _, c := range []struct{ took, iv, want time.Duration }{
		{0, time.Second, commitLinger},
		{3 * time.Millisecond, time.Second, commitLinger},
		{40 * time.Millisecond, time.Second, 40 * time.Millisecond},
		{8 * time.Second, time.Second, time.Second},
		{30 * time.Second, 300 * time.Millisecond, 300 * time.Millisecond},
	} {
		if got := lingerAfter(c.took, c.iv); got != c.want {
			t.Errorf("lingerAfter(%s, %s) = %s, want %s", c.took, c.iv, got, c.want)
		}
	}
}
