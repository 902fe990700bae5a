package gitstore

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkIndex100k measures, on a store of 100,000 small commits written
// as packs of perBatch commits, the time to Open it, the heap the object
// index takes (Open plus one Walk, after GC), and the speed of Walk.
func BenchmarkIndex100k(b *testing.B) {
	for _, perBatch := range []int{10000, 100} {
		b.Run(fmt.Sprintf("packs=%d", 100000/perBatch), func(b *testing.B) {
			benchIndex(b, 100000, perBatch)
		})
	}
}

func benchIndex(b *testing.B, total, perBatch int) {
	dir := b.TempDir()
	s, err := Open(dir, &Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	when := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for first := 0; first < total; first += perBatch {
		cs := make([]Commit, perBatch)
		for k := range cs {
			i := first + k
			cs[k] = Commit{
				Blob:      fmt.Appendf(nil, "Message-ID: <%d@example.org>\n\nbody %d\n", i, i),
				Author:    Ident{Name: "Sender", Email: "s@example.org", When: when},
				Committer: Ident{Name: "mailswarm", Email: "list@example.org", When: when},
				Message:   fmt.Sprint("message ", i),
			}
		}
		if _, err := s.Append(cs); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()

	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	b.Run("open", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			s, err := Open(dir, &Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	b.Run("walk", func(b *testing.B) {
		before := heap()
		s, err := Open(dir, &Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		afterOpen := heap()
		n := 0
		walk := func() {
			n = 0
			if err := s.Walk(0, ZeroHash, func(Entry) error { n++; return nil }); err != nil {
				b.Fatal(err)
			}
			if n != total {
				b.Fatalf("walked %d", n)
			}
		}
		walk()
		afterWalk := heap()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			walk()
		}
		b.StopTimer()
		b.ReportMetric(float64(int64(afterOpen-before))/float64(3*total), "openB/obj")
		b.ReportMetric(float64(int64(afterWalk-before))/float64(3*total), "walkB/obj")
		b.ReportMetric(float64(b.N*total)/b.Elapsed().Seconds(), "commits/s")
		runtime.KeepAlive(s)
	})
}
