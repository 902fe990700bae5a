package archive

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkAdoptSealedNothingNew is a process's first adoption of an
// epoch whose day packs are all adopted already (what the origin's first
// publish runs for every epoch, and a mirror's first apply): "unmarked"
// is the whole pass every first publish paid before the swapped mark (a
// catch-up, every row, every sealed idx), "swapped" the pass with the
// mark. A synthetic epoch of 6,000 messages written as batches of 30,
// sealed as 2,000 day packs of 3 commits.
func BenchmarkAdoptSealedNothingNew(b *testing.B) {
	ctx := context.Background()
	a, err := Open(&Options{Dir: b.TempDir(), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close() })
	l, err := a.Create("bench", "")
	if err != nil {
		b.Fatal(err)
	}
	const n, batch = 6000, 30
	for i := 0; i < n; i += batch {
		var msgs [][]byte
		for k := i; k < i+batch; k++ {
			msgs = append(msgs, fmt.Appendf(nil, "From: Poster %d <p%d@example.org>\nTo: dev@example.org\nSubject: topic %d\n"+
				"Message-ID: <m%d@example.org>\nDate: Mon, 2 Jan 2006 15:04:05 +0000\n\nMessage %d, a line or two of body.\n", k%17, k%17, k/3, k, k))
		}
		if _, err := l.Add(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	days := dayPacks(b, l, 3, b.TempDir())
	if _, err := l.AdoptSealed(ctx, 0, days); err != nil {
		b.Fatal(err)
	}
	if !l.git.Swapped(0) {
		b.Fatal("not marked swapped after the adoption")
	}
	mark := filepath.Join(l.Dir(), "git", "0.git", "mailswarm-swapped")
	b.Run("unmarked", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := os.Remove(mark); err != nil {
				b.Fatal(err)
			}
			if _, err := l.AdoptSealed(ctx, 0, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("swapped", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := l.AdoptSealed(ctx, 0, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
