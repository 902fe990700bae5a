package main

import (
	"strings"
	"testing"
	"time"
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
