package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}, {0.001, time.Millisecond}} {
		if got := percentile(d, tc.q); got != tc.want {
			t.Errorf("percentile(1..100 ms, %v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	one := []time.Duration{7 * time.Millisecond}
	if got := percentile(one, 0.99); got != 7*time.Millisecond {
		t.Errorf("percentile(one, 0.99) = %v", got)
	}
}

func TestParseSpoolLine(t *testing.T) {
	stderr := "time=2026-11-23T22:40:00.000Z level=INFO msg=serving data=/tmp/d lists=2\n" +
		"time=2026-11-23T22:40:01.000Z level=INFO msg=spool list=other appends=3 fsyncs=3\n" +
		"time=2026-11-23T22:40:01.000Z level=INFO msg=spool list=bench appends=5000 fsyncs=312\n"
	a, f, ok := parseSpoolLine([]byte(stderr), "bench")
	if !ok || a != 5000 || f != 312 {
		t.Errorf("parseSpoolLine = %d, %d, %v; want 5000, 312, true", a, f, ok)
	}
	if _, _, ok := parseSpoolLine([]byte("msg=spool list=other appends=1 fsyncs=1\n"), "bench"); ok {
		t.Error("parseSpoolLine found a line for another list")
	}
	if _, _, ok := parseSpoolLine(nil, "bench"); ok {
		t.Error("parseSpoolLine(nil) ok")
	}
}

func TestSplitMboxrd(t *testing.T) {
	mbox := "From a@b Mon Jan  1 00:00:00 2024\nSubject: one\n\nbody\n>From quoted\n>>From twice\n\n" +
		"From c@d Mon Jan  1 00:00:00 2024\nSubject: two\n\nx\n"
	msgs, err := splitMboxrd(strings.NewReader(mbox))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"Subject: one\n\nbody\nFrom quoted\n>From twice\n", "Subject: two\n\nx\n"}
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, want %d", len(msgs), len(want))
	}
	for i := range want {
		if string(msgs[i]) != want[i] {
			t.Errorf("message %d = %q, want %q", i, msgs[i], want[i])
		}
	}
}

// TestSMTPBench runs the SMTP ingest benchmark briefly with the same
// binary as baseline: a row for each, baseline first, every message kept.
func TestSMTPBench(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs mailswarm serve twice")
	}
	peertest.Need(t, "python3")
	bin := testBinary(t)
	c := smtpConfig{N: 40, Conns: 4, SkipPI: true, Bin: bin, Baseline: bin, Shared: peertest.SharedDir(t)}
	rs, err := runSMTPBench(t.Context(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Impl != "mailswarm baseline" || rs[1].Impl != "mailswarm this" {
		t.Fatalf("results = %+v, want mailswarm baseline, mailswarm this", rs)
	}
	for _, r := range rs {
		if r.Err != nil || r.Kept != 40 || r.Failed != 0 || len(r.Latencies) != 40 || r.Appends != 40 {
			t.Errorf("%s: err %v, kept %d, failed %d, %d latencies, %d appends; want 40 kept, none failed",
				r.Impl, r.Err, r.Kept, r.Failed, len(r.Latencies), r.Appends)
		}
	}
	table := renderSMTPTable(rs)
	for _, want := range []string{"| mailswarm baseline | 40 | 4 |", "| mailswarm this | 40 | 4 |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
