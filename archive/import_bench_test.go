package archive

import (
	"context"
	"os"
	"testing"

	"mailswarm/internal/peertest"
)

// BenchmarkImport imports a whole mbox per iteration, durably (fsync on):
// MAILSWARM_BENCH_MBOX names the input, default the spamassassin easy-ham-1
// corpus. Reports messages per second.
func BenchmarkImport(b *testing.B) {
	path := os.Getenv("MAILSWARM_BENCH_MBOX")
	if path == "" {
		path = peertest.Corpus(b, "spamassassin/easy-ham-1.mboxrd.gz")
	}
	var n int
	for b.Loop() {
		b.StopTimer()
		a, err := Open(&Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		l, err := a.Create("bench", "")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := l.Import(context.Background(), []string{path}, nil)
		if err != nil {
			b.Fatal(err)
		}
		n += res.Read
		b.StopTimer()
		a.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msg/s")
}
