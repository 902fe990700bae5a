package archive

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
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
	first, last, err := l.catchUp(ctx, nil)
	if err != nil {
		t.Fatalf("catch-up: %v", err)
	}
	// What was added while it ran, whoever indexed it (AddPrepared and
	// Drain report this range).
	if first != 1 || last != n {
		t.Errorf("catch-up returned articles %d-%d, want 1-%d", first, last, n)
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

const watchChildEnv = "MAILSWARM_WATCH_CHILD" // "DIR ARTICLE PAUSE"

// watchChild is the other process of TestWatchWriterPaused: it adds
// message i to list "w" of dir and stops between its ref move and its index
// commit for pause (forever when zero), saying "appended" on stdout. Then
// it checks that no one indexed its commit while it was alive and reports
// "ok FIRST LAST" (the AddResult range) or what went wrong.
func watchChild(dir string, i int, pause time.Duration) {
	ctx := context.Background()
	a, err := Open(&Options{Dir: dir})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	l, err := a.List("w")
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	testHookGitAppended = func(l *List) {
		fmt.Println("appended")
		if pause == 0 {
			select {} // until killed
		}
		time.Sleep(pause)
		if n, err := lastArticle(ctx, l.db); err != nil || n != int64(i-1) {
			fmt.Printf("overtaken: the index holds %d articles (%v), want %d\n", n, err, i-1)
			os.Exit(1)
		}
	}
	res, err := l.Add(ctx, watchMsg(i))
	if err != nil {
		fmt.Println("add:", err)
		os.Exit(1)
	}
	fmt.Printf("ok %d %d\n", res.First, res.Last)
}

// TestWatchWriterPaused: another process stopped between its git append
// and its index commit holds the list's index lock, so serve's watcher
// leaves its commit to it, however long it takes (here 3 s, fifteen
// looks): the writer finishes without error and reports its article.
// Once such a writer is killed (SIGKILL, the lock dies with it), the
// watcher indexes its commit and announces it.
func TestWatchWriterPaused(t *testing.T) {
	if env := os.Getenv(watchChildEnv); env != "" {
		var dir, pause string
		var i int
		if _, err := fmt.Sscan(env, &dir, &i, &pause); err != nil {
			panic(err)
		}
		d, err := time.ParseDuration(pause)
		if err != nil {
			panic(err)
		}
		watchChild(dir, i, d)
		return
	}
	ctx := context.Background()
	dir := t.TempDir()
	a, err := Open(&Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	l, err := a.Create("w", "")
	if err != nil {
		t.Fatal(err)
	}
	ch, cancel := a.Subscribe()
	defer cancel()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- a.Run(rctx) }()
	defer func() { stop(); <-done }()

	start := func(i int, pause time.Duration) (*exec.Cmd, <-chan string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestWatchWriterPaused$")
		cmd.Env = append(os.Environ(), watchChildEnv+"="+dir+" "+strconv.Itoa(i)+" "+pause.String())
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		lines := make(chan string, 10)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		return cmd, lines
	}
	expect := func(lines <-chan string, want string) {
		t.Helper()
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("writer said %q, want %q", got, want)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("writer did not say %q in 60 s", want)
		}
	}
	event := func(what string, num int64) {
		t.Helper()
		select {
		case ev := <-ch:
			if ev.First != num || ev.Last != num {
				t.Fatalf("%s: event %+v, want article %d", what, ev, num)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no event for article %d in 20 s", what, num)
		}
	}

	// A live writer, slow between its ref move and its index commit.
	cmd, lines := start(1, 3*time.Second)
	expect(lines, "appended")
	expect(lines, "ok 1 1")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	event("the slow writer's commit", 1)

	// A writer that hangs there until it is killed.
	cmd, lines = start(2, 0)
	expect(lines, "appended")
	time.Sleep(2 * time.Second) // ten looks
	if n, err := lastArticle(ctx, l.db); err != nil || n != 1 {
		t.Fatalf("while the writer lives the index holds %d articles (%v), want 1", n, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	event("the killed writer's commit", 2)
	if err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWatchReindex: Reindex swaps the list's index handle while Run's
// watcher reads it for another process's commits (run under -race).
func TestWatchReindex(t *testing.T) {
	ctx := context.Background()
	l, other := openTwice(t, "x")
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- l.a.Run(rctx) }()
	defer func() { stop(); <-done }()
	adding := make(chan error)
	go func() {
		for i := range 20 {
			if _, err := other.Add(ctx, watchMsg(i+1)); err != nil {
				adding <- err
				return
			}
			time.Sleep(watchInterval / 2)
		}
		adding <- nil
	}()
	for range 3 {
		if err := l.Reindex(ctx, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(watchInterval)
	}
	if err := <-adding; err != nil {
		t.Fatal(err)
	}
	if err := l.Reindex(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestWatchEpochs: epochs another process began between two looks are all
// opened by the next look.
func TestWatchEpochs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var ls [2]*List
	for i := range ls {
		// Every pack exceeds the epoch: each Add begins a new one.
		a, err := Open(&Options{Dir: dir, EpochSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		if ls[i], err = a.OpenOrCreate("e", ""); err != nil {
			t.Fatal(err)
		}
	}
	l, other := ls[0], ls[1]
	for i := range 3 {
		if _, err := other.Add(ctx, watchMsg(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(other.git.Epochs()); n != 3 {
		t.Fatalf("the writer made %d epochs, want 3", n)
	}
	var w watch
	if err := l.look(ctx, &w); err != nil {
		t.Fatal(err)
	}
	if n := len(l.git.Epochs()); n != 3 || !w.settled {
		t.Fatalf("after one look the watcher knows %d epochs (settled %v), want 3", n, w.settled)
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

// BenchmarkIndexLock is what every write pays for the index lock: an
// open, a flock and a close.
func BenchmarkIndexLock(b *testing.B) {
	l := &List{dir: b.TempDir()}
	for b.Loop() {
		lk, err := l.lockIndex(false)
		if err != nil {
			b.Fatal(err)
		}
		lk.Unlock()
	}
}
