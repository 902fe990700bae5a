package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// spoolMsg returns a distinct test message; without id it has no
// Message-ID header.
func spoolMsg(n int, id bool) []byte {
	h := ""
	if id {
		h = fmt.Sprintf("Message-ID: <spool-%d@test>\r\n", n)
	}
	return fmt.Appendf(nil, "From: Ann <ann@example.org>\r\nSubject: spool %d\r\n%sDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nbody %d\r\n", n, h, n)
}

// subjects returns the subjects of l's articles in article order.
func subjects(t testing.TB, l *List) []string {
	t.Helper()
	var out []string
	if err := l.Articles(context.Background(), 1, 0, false, func(a *Article) error {
		out = append(out, a.Subject)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func newSpoolList(t testing.TB, opts Options) (*Archive, *List) {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	a, err := Open(&opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	l, err := a.OpenOrCreate("test", "test@example.org")
	if err != nil {
		t.Fatal(err)
	}
	return a, l
}

func TestAcceptDrain(t *testing.T) {
	ctx := context.Background()
	_, l := newSpoolList(t, Options{})
	var want []string
	for i := range 6 {
		if err := l.Accept(ctx, spoolMsg(i, i%2 == 0)); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("spool %d", i))
	}
	res, err := l.Drain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 6 || res.First != 1 || res.Last != 6 {
		t.Errorf("Drain = %+v, want 6 added as 1..6", res)
	}
	if got := subjects(t, l); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("articles %q, want %q", got, want)
	}
	res, err = l.Drain(ctx)
	if err != nil || res.Added != 0 || res.Duplicates != 0 {
		t.Errorf("second Drain = %+v, %v; want nothing", res, err)
	}
	if err := l.Accept(ctx, spoolMsg(6, false)); err != nil {
		t.Fatal(err)
	}
	if res, err := l.Drain(ctx); err != nil || res.Added != 1 || res.First != 7 {
		t.Errorf("third Drain = %+v, %v; want article 7", res, err)
	}
	if got := len(subjects(t, l)); got != 7 {
		t.Errorf("%d articles, want 7", got)
	}
}

func TestAcceptRejects(t *testing.T) {
	ctx := context.Background()
	_, l := newSpoolList(t, Options{MaxMessageSize: 100})
	for _, raw := range [][]byte{nil, make([]byte, 101)} {
		if err := l.Accept(ctx, raw); !errors.Is(err, ErrRejected) {
			t.Errorf("Accept(%d bytes) = %v, want ErrRejected", len(raw), err)
		}
	}
	if err := l.Accept(ctx, make([]byte, 100)); err != nil {
		t.Errorf("Accept(100 bytes) = %v", err)
	}
}

func TestAcceptGroupCommit(t *testing.T) {
	ctx := context.Background()
	_, l := newSpoolList(t, Options{})
	const senders, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				if err := l.Accept(ctx, spoolMsg(s*each+i, true)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := l.SpoolStats()
	t.Logf("appends %d, fsyncs %d (%.3f per message)", st.Appends, st.Fsyncs, float64(st.Fsyncs)/float64(st.Appends))
	if st.Appends != senders*each || st.Fsyncs >= st.Appends {
		t.Errorf("SpoolStats = %+v, want %d appends sharing fsyncs", st, senders*each)
	}
	res, err := l.Drain(ctx)
	if err != nil || res.Added != senders*each {
		t.Fatalf("Drain = %+v, %v; want %d added", res, err, senders*each)
	}
}

func TestSpoolTornTail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, l := newSpoolList(t, Options{Dir: dir})
	for i := range 3 {
		if err := l.Accept(ctx, spoolMsg(i, true)); err != nil {
			t.Fatal(err)
		}
	}
	a.Close()
	seg := filepath.Join(dir, "lists", "test", spoolDir, segmentName(1))
	torn := appendRecord(nil, 4, 0, spoolMsg(99, true))
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(torn[:len(torn)-5])
	f.Close()

	_, l = newSpoolList(t, Options{Dir: dir})
	if err := l.Accept(ctx, spoolMsg(3, true)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	want := "spool 0,spool 1,spool 2,spool 3"
	if got := strings.Join(subjects(t, l), ","); got != want {
		t.Errorf("articles %q, want %q", got, want)
	}
}

func TestParseSegment(t *testing.T) {
	var b []byte
	for i := range 3 {
		b = appendRecord(b, uint64(i+1), int64(i), spoolMsg(i, true))
	}
	recs, valid, err := parseSegment(b)
	if err != nil || len(recs) != 3 || valid != len(b) {
		t.Fatalf("parseSegment = %d records, valid %d of %d, %v", len(recs), valid, len(b), err)
	}
	torn := b[:len(b)-1]
	if recs, valid, err := parseSegment(torn); err != nil || len(recs) != 2 || valid != recs[1].end {
		t.Errorf("torn: %d records, valid %d, %v; want 2 and no error", len(recs), valid, err)
	}
	bad := append([]byte(nil), b...)
	bad[recs[0].end+spoolHeaderLen+2] ^= 1 // corrupt the second record's data
	if recs, _, err := parseSegment(bad); !errors.Is(err, errSpoolCorrupt) || len(recs) != 1 {
		t.Errorf("corrupt middle: %d records, %v; want 1 and errSpoolCorrupt", len(recs), err)
	}
}

// TestDrainReplay crashes the committer after the git commit and before
// the checkpoint: the replay must archive nothing twice, messages without
// a Message-ID included.
func TestDrainReplay(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, l := newSpoolList(t, Options{Dir: dir})
	for i := range 5 {
		if err := l.Accept(ctx, spoolMsg(i, i%2 == 1)); err != nil {
			t.Fatal(err)
		}
	}
	crash := errors.New("crash")
	testHookAfterCommit = func() error { return crash }
	_, err := l.Drain(ctx)
	testHookAfterCommit = nil
	if !errors.Is(err, crash) {
		t.Fatalf("Drain = %v, want the crash", err)
	}
	if res, err := l.Drain(ctx); err != nil || res.Added != 0 || res.Duplicates != 0 {
		t.Errorf("replay Drain = %+v, %v; want nothing reconsidered", res, err)
	}
	a.Close()
	// The index alone (no checkpoint) must know, also after a reindex.
	os.Remove(filepath.Join(dir, "lists", "test", spoolDir, spoolCheckpoint))
	a, l = newSpoolList(t, Options{Dir: dir})
	if err := l.rebuildIndex(ctx, nil); err != nil {
		t.Fatal(err)
	}
	a.Close()
	_, l = newSpoolList(t, Options{Dir: dir})
	if res, err := l.Drain(ctx); err != nil || res.Added != 0 || res.Duplicates != 0 {
		t.Errorf("Drain after reopen = %+v, %v; want nothing reconsidered", res, err)
	}
	if got := len(subjects(t, l)); got != 5 {
		t.Errorf("%d articles, want 5", got)
	}
}

// TestSpoolTwoWriters has two Archives on one data directory, as deliver
// beside serve: their appends interleave in one spool through the append
// lock, and their committers share the work; every message is archived
// once.
func TestSpoolTwoWriters(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	_, l1 := newSpoolList(t, Options{Dir: dir})
	_, l2 := newSpoolList(t, Options{Dir: dir})
	const each = 25
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for s := range 8 {
		l := l1
		if s%2 == 1 {
			l = l2
		}
		wg.Go(func() {
			for i := range each {
				if err := l.Accept(ctx, spoolMsg(s*each+i, i%3 == 0)); err != nil {
					errs <- err
					return
				}
				if i%10 == 9 {
					if _, err := l.Drain(ctx); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, err := l2.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l1.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, s := range subjects(t, l1) {
		count[s]++
	}
	for i := range 8 * each {
		if s := fmt.Sprintf("spool %d", i); count[s] != 1 {
			t.Errorf("%q archived %d times", s, count[s])
		}
	}
}
