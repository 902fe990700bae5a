package archive

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

// batchList is a list whose history is written as many small batch packs
// (an Add of 7 messages each), as live mail writes it.
func batchList(t *testing.T) *List {
	t.Helper()
	msgs := readAll(t, peertest.Corpus(t, "notmuch-test/default.mboxrd.gz"))
	a := newTestArchive(t)
	l, err := a.Create("sealed", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(msgs); i += 7 {
		if _, err := l.Add(context.Background(), msgs[i:min(i+7, len(msgs))]...); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// epochPacks returns the base names of epoch 0's packs and their total size.
func epochPacks(t *testing.T, l *List) ([]string, int64) {
	t.Helper()
	dir := filepath.Join(l.Dir(), "git", "0.git", "objects", "pack")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var size int64
	for _, e := range ents {
		if b, ok := strings.CutSuffix(e.Name(), ".pack"); ok {
			out = append(out, b)
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			size += fi.Size()
		}
	}
	return out, size
}

// rowPacks returns the packs the index rows name.
func rowPacks(t *testing.T, l *List) []string {
	t.Helper()
	m, err := l.packsNamed(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// checkList is what every step of a swap must leave: verify passes, the
// export is want, every pack a row names is on disk.
func checkList(t *testing.T, l *List, want [][]byte, step string) {
	t.Helper()
	if err := l.Verify(context.Background()); err != nil {
		t.Fatalf("%s: verify: %v", step, err)
	}
	got := exportAll(t, l)
	if len(got) != len(want) {
		t.Fatalf("%s: export has %d messages, want %d", step, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: exported message %d differs", step, i+1)
		}
	}
	have, _ := epochPacks(t, l)
	for _, p := range rowPacks(t, l) {
		if !slices.Contains(have, p) {
			t.Fatalf("%s: rows name %s, which is not on disk", step, p)
		}
	}
}

// TestAdoptSealed: day packs adopted as the epoch's storage in two rounds;
// the batch packs they cover are dropped, the origin's packs shrink to
// about one copy, and verify, export, reindex, git fsck --strict and
// public-inbox-index work after each round; articles read before the swap
// still read.
func TestAdoptSealed(t *testing.T) {
	ctx := context.Background()
	l := batchList(t)
	want := exportAll(t, l)
	ids := articleIDs(t, l)
	var stale []*Article
	if err := l.Articles(ctx, 0, 0, false, func(a *Article) error { c := *a; stale = append(stale, &c); return nil }); err != nil {
		t.Fatal(err)
	}
	batches, batchBytes := epochPacks(t, l)
	if len(batches) < 5 {
		t.Fatalf("test setup: %d batch packs", len(batches))
	}
	days := dayPacks(t, l, 12, t.TempDir()) // days of 12 commits: not on batch boundaries
	half := len(days) / 2

	dropped, err := l.AdoptSealed(ctx, 0, days[:half])
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped) == 0 || len(dropped) >= len(batches) {
		t.Fatalf("first half sealed: dropped %d of %d batch packs", len(dropped), len(batches))
	}
	checkList(t, l, want, "first half")
	for _, a := range stale { // rows read before the swap
		raw, err := l.Read(a)
		if err != nil || !bytes.Equal(raw, want[a.Num-1]) {
			t.Fatalf("article %d read from its row before the swap: %v", a.Num, err)
		}
	}

	dropped2, err := l.AdoptSealed(ctx, 0, days)
	if err != nil {
		t.Fatal(err)
	}
	if len(dropped)+len(dropped2) != len(batches) {
		t.Fatalf("all sealed: dropped %d+%d of %d batch packs", len(dropped), len(dropped2), len(batches))
	}
	checkList(t, l, want, "all sealed")
	left, size := epochPacks(t, l)
	if len(left) != len(days) || size > batchBytes*5/4 {
		t.Fatalf("after the swap: %d packs of %d bytes (day packs %d; batch packs were %d bytes)", len(left), size, len(days), batchBytes)
	}
	t.Logf("%d batch packs, %d bytes -> %d day packs, %d bytes", len(batches), batchBytes, len(left), size)
	if _, err := l.AdoptSealed(ctx, 0, days); err != nil { // again: nothing to do
		t.Fatalf("AdoptSealed again: %v", err)
	}
	checkList(t, l, want, "again")
	gitFsck(t, l)
	if n := peertest.PIIndex(t, l.Dir()); n != len(want) {
		t.Fatalf("public-inbox-index counted %d, we have %d", n, len(want))
	}
	if err := l.Reindex(ctx, nil); err != nil {
		t.Fatal(err)
	}
	checkList(t, l, want, "reindexed")
	if articleIDs(t, l) != ids {
		t.Fatal("article numbers changed")
	}
	// New mail after the swap: a batch pack again, beside the sealed ones.
	extra := []byte("From: x@example.org\nMessage-ID: <after-swap@example.org>\nSubject: after\n\nbody\n")
	if _, err := l.Add(ctx, extra); err != nil {
		t.Fatal(err)
	}
	checkList(t, l, append(slices.Clone(want), extra), "mail after the swap")
}

// TestAdoptSealedCrashOrder stops the swap after each of its steps, as a
// crash would: installed but rows not moved, rows moved but nothing
// dropped. Each state verifies and exports the same, and AdoptSealed
// finishes from it.
func TestAdoptSealedCrashOrder(t *testing.T) {
	ctx := context.Background()
	l := batchList(t)
	want := exportAll(t, l)
	days := dayPacks(t, l, 12, t.TempDir())
	batches, _ := epochPacks(t, l)
	var first Article // article 1 where its batch wrote it
	if err := l.Articles(ctx, 1, 1, true, func(a *Article) error { first = *a; return nil }); err != nil {
		t.Fatal(err)
	}

	// Nothing sealed yet: the pass finds nothing and marks the epoch.
	if _, err := l.AdoptSealed(ctx, 0, nil); err != nil || !l.git.Swapped(0) {
		t.Fatalf("a pass with nothing sealed: %v, marked swapped %v", err, l.git.Swapped(0))
	}
	// 1. Day packs linked in, rows untouched.
	for _, p := range days {
		if _, err := l.git.InstallSealed(0, p); err != nil {
			t.Fatal(err)
		}
	}
	checkList(t, l, want, "installed")
	if l.git.Swapped(0) {
		t.Fatal("installed: still marked swapped (a first pass after a crash here would skip the swap)")
	}
	if rp := rowPacks(t, l); !slices.Equal(rp, batches) {
		t.Fatalf("installed: rows name %v, want the batch packs", rp)
	}
	// 2. Rows moved, nothing dropped.
	if err := l.moveRows(ctx, 0); err != nil {
		t.Fatal(err)
	}
	checkList(t, l, want, "rows moved")
	for _, p := range rowPacks(t, l) {
		if slices.Contains(batches, p) {
			t.Fatalf("rows moved: a row still names batch pack %s", p)
		}
	}
	// 3. A batch pack a row still names is kept.
	if _, err := l.db.ExecContext(ctx, `UPDATE msg SET pack = ?, off = ? WHERE num = 1`, first.Loc.Pack, first.Loc.Offset); err != nil {
		t.Fatal(err)
	}
	checkList(t, l, want, "one row back")
	named, err := l.packsNamed(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.git.DropCovered(0, func(p string) bool { return named[p] }); err != nil {
		t.Fatal(err)
	}
	checkList(t, l, want, "dropped around a named pack")
	if left, _ := epochPacks(t, l); !slices.Contains(left, first.Loc.Pack) || len(left) != len(days)+1 {
		t.Fatalf("dropped around a named pack: left %v, want the day packs and %s", left, first.Loc.Pack)
	}
	// 4. Finishing, with no pack to add: the row moves, its pack goes.
	if _, err := l.AdoptSealed(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	checkList(t, l, want, "finished")
	if left, _ := epochPacks(t, l); len(left) != len(days) {
		t.Fatalf("finished: %d packs, want the %d day packs", len(left), len(days))
	}
	if !l.git.Swapped(0) {
		t.Fatal("finished: not marked swapped")
	}
	// Marked: a pass with no pack to add reads nothing (a row sent back
	// to a dropped pack stays: only a crash mid-swap unmarks).
	if _, err := l.db.ExecContext(ctx, `UPDATE msg SET pack = 'pack-gone' WHERE num = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AdoptSealed(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	if rp := rowPacks(t, l); !slices.Contains(rp, "pack-gone") {
		t.Fatal("a marked epoch was looked at again")
	}
}

// TestAdoptSealedConcurrentReaders: readers going through the rows (as
// IMAP FETCH does: Rows, then ReadAt and ReadHeaderAt by each row's Loc)
// while the swap runs in three rounds never fail and always read the
// article's bytes.
func TestAdoptSealedConcurrentReaders(t *testing.T) {
	ctx := context.Background()
	l := batchList(t)
	want := exportAll(t, l)
	days := dayPacks(t, l, 12, t.TempDir())
	stop := make(chan struct{})
	errs := make(chan error, 2)
	reads := make([]int, 2)
	for g := range 2 {
		go func() {
			for pass := 0; pass < 10000; pass++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				err := l.Rows(ctx, 1, int64(len(want)), RowFields{}, func(r *Row) error {
					raw, err := l.ReadAt(r.Loc)
					if err != nil {
						return err
					}
					if !bytes.Equal(raw, want[r.Num-1]) {
						return fmt.Errorf("article %d: wrong bytes at %+v", r.Num, r.Loc)
					}
					if _, err := l.ReadHeaderAt(r.Loc); err != nil {
						return err
					}
					reads[g]++
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	third := len(days) / 3
	for _, part := range [][]string{days[:third], days[:2*third], days} {
		if _, err := l.AdoptSealed(ctx, 0, part); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("a reader during the swap: %v", err)
		}
	}
	if reads[0]+reads[1] == 0 {
		t.Fatal("no reads happened during the swap")
	}
	t.Logf("%d reads during the swap", reads[0]+reads[1])
	checkList(t, l, want, "after")
}
