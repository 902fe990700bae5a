package archive

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAccept16 measures durable spool throughput with 16 concurrent
// senders, the p99 latency of an Accept and the fsyncs per message.
func BenchmarkAccept16(b *testing.B) { benchAccept16(b, false) }

// BenchmarkAccept16Committing is BenchmarkAccept16 with Archive.Run
// archiving meanwhile, as in serve.
func BenchmarkAccept16Committing(b *testing.B) { benchAccept16(b, true) }

func benchAccept16(b *testing.B, commit bool) {
	a, l := newSpoolList(b, Options{})
	if commit {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- a.Run(ctx) }()
		defer func() { cancel(); <-done }()
	}
	ctx := context.Background()
	var next atomic.Int64
	lat := make([][]time.Duration, 16)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for s := range 16 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				raw := spoolMsg(int(next.Load()), true)
				t0 := time.Now()
				if err := l.Accept(ctx, raw); err != nil {
					b.Error(err)
					return
				}
				lat[s] = append(lat[s], time.Since(t0))
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	st := l.SpoolStats()
	b.ReportMetric(float64(b.N)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(st.Fsyncs)/float64(st.Appends), "fsyncs/msg")
}

// BenchmarkDrain measures the committer: spooled messages archived per
// second.
func BenchmarkDrain(b *testing.B) {
	_, l := newSpoolList(b, Options{})
	ctx := context.Background()
	for i := range b.N {
		if err := l.Accept(ctx, spoolMsg(i, true)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	res, err := l.Drain(ctx)
	if err != nil || res.Added != b.N {
		b.Fatalf("Drain = %+v, %v", res, err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}
