package archive

import (
	"context"
	"fmt"
	"testing"
	"time"

	"mailswarm/gitstore"
)

// openTwice opens list name of one data directory through two Archives,
// as serve and another process (deliver, import) do.
func openTwice(t *testing.T, name string) (serve, other *List) {
	t.Helper()
	dir := t.TempDir()
	var ls [2]*List
	for i := range ls {
		a, err := Open(&Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		if ls[i], err = a.OpenOrCreate(name, ""); err != nil {
			t.Fatal(err)
		}
	}
	return ls[0], ls[1]
}

func watchMsg(i int) []byte {
	return fmt.Appendf(nil, "Subject: m%d\nMessage-ID: <m%d@watch>\n\nbody %d\n", i, i, i)
}

// TestWatchOtherWriters: a running Archive hears of every article of its
// list, whoever commits it: its own Add, another Archive's Add, Accept and
// Drain (deliver), and a commit another process left in git without
// indexing it (killed between the ref move and the index commit), which
// the watcher indexes. Events come in order, each article once.
func TestWatchOtherWriters(t *testing.T) {
	ctx := context.Background()
	l, other := openTwice(t, "w")
	ch, cancel := l.a.Subscribe()
	defer cancel()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- l.a.Run(rctx) }()
	defer func() { stop(); <-done }()

	var next int64 = 1 // the next article an event must start at
	wait := func(what string, last int64) {
		t.Helper()
		deadline := time.After(20 * time.Second)
		for next <= last {
			select {
			case ev := <-ch:
				if ev.Overflow || ev.List != "w" || ev.First != next || ev.Last < ev.First {
					t.Fatalf("%s: event %+v, want one starting at %d", what, ev, next)
				}
				next = ev.Last + 1
			case <-deadline:
				t.Fatalf("%s: no event for articles %d-%d in 20 s", what, next, last)
			}
		}
		if next != last+1 {
			t.Fatalf("%s: events up to %d, want %d", what, next-1, last)
		}
	}

	if _, err := other.Add(ctx, watchMsg(1), watchMsg(2), watchMsg(3)); err != nil {
		t.Fatal(err)
	}
	wait("another archive's Add", 3)
	if _, err := l.Add(ctx, watchMsg(4)); err != nil {
		t.Fatal(err)
	}
	wait("own Add", 4)
	if err := other.Accept(ctx, watchMsg(5)); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	wait("another archive's Accept and Drain", 5)

	// Git only: the other writer died before indexing.
	other.wmu.Lock()
	_, err := other.git.Append([]gitstore.Commit{other.commitFor(Prepare(watchMsg(6), time.Now()))})
	other.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	wait("a commit left unindexed", 6)
	var subj string
	if err := l.Articles(ctx, 6, 6, false, func(a *Article) error { subj = a.Subject; return nil }); err != nil || subj != "m6" {
		t.Fatalf("article 6: %q, %v", subj, err)
	}
	select {
	case ev := <-ch:
		t.Fatalf("event %+v after the last article", ev)
	case <-time.After(3 * watchInterval):
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCatchUpRace: two processes catch the same index up from git at once;
// here one runs its whole catch-up between two chunks of the other's. The
// second notices the index moved under it and goes on from there: no
// article is indexed twice or fails on the other's rows.
func TestCatchUpRace(t *testing.T) {
	ctx := context.Background()
	l, other := openTwice(t, "r")
	const n = 40
	commits := make([]gitstore.Commit, n)
	for i := range commits {
		commits[i] = l.commitFor(Prepare(watchMsg(i+1), time.Now()))
	}
	if _, err := l.git.Append(commits); err != nil {
		t.Fatal(err)
	}
	defer func(c int64) { catchUpChunk, testHookChunkCommitted = c, nil }(catchUpChunk)
	catchUpChunk = 7
	interleaved := false
	testHookChunkCommitted = func(cl *List) {
		if cl == l && !interleaved {
			interleaved = true
			if _, _, err := other.catchUp(ctx, nil); err != nil {
				t.Errorf("other's catch-up: %v", err)
			}
		}
	}
	if _, _, err := l.catchUp(ctx, nil); err != nil {
		t.Fatalf("catch-up: %v", err)
	}
	if !interleaved {
		t.Fatal("the other catch-up never ran between chunks")
	}
	var nums []int64
	l.Articles(ctx, 0, 0, true, func(a *Article) error { nums = append(nums, a.Num); return nil })
	if len(nums) != n || nums[n-1] != n {
		t.Fatalf("%d articles, last %v; want 1-%d", len(nums), nums[len(nums)-1:], n)
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkWatchLook is the cost of one look at a list nothing was
// committed to: what every open list pays five times a second.
func BenchmarkWatchLook(b *testing.B) {
	a, err := Open(&Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	l, err := a.Create("b", "")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := l.Add(context.Background(), watchMsg(1)); err != nil {
		b.Fatal(err)
	}
	var w watch
	for b.Loop() {
		if err := l.look(context.Background(), &w); err != nil {
			b.Fatal(err)
		}
	}
}
