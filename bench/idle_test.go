package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestIdleDelays(t *testing.T) {
	t0 := time.Unix(1000, 0)
	acks := []time.Time{t0, t0.Add(10 * time.Millisecond), {}, t0.Add(20 * time.Millisecond)}
	ids := []string{"a", "b", "c", "d"}
	seqs := map[string]int{"a": 2, "b": 1, "c": 3} // d never committed
	events := []existsEvent{{t0.Add(5 * time.Millisecond), 1}, {t0.Add(40 * time.Millisecond), 3}}
	got, unseen := idleDelays(acks, ids, seqs, events)
	// b: seq 1 counted at 5 ms, before its 250 at 10 ms: 0; a: seq 2 at 40 ms
	want := []time.Duration{0, 40 * time.Millisecond}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || unseen != 1 {
		t.Errorf("idleDelays = %v, %d unseen; want %v, 1", got, unseen, want)
	}
}

// TestIdleBench runs the IDLE benchmark briefly against a freshly built
// mailswarm: every message acknowledged is seen in IDLE, and the tables
// hold each rate and the ingest run.
func TestIdleBench(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs mailswarm serve")
	}
	c := idleConfig{Rates: []int{20, 200}, Duration: 500 * time.Millisecond, Max: 40, Senders: 4, IngestN: 40, Conns: 4}
	sides, err := runIdleBench(t.Context(), c, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(sides) != 1 || sides[0].Err != nil {
		t.Fatalf("sides = %+v", sides)
	}
	s := sides[0]
	for i, r := range s.Rates {
		if r.Sent != []int{10, 40}[i] || r.Failed != 0 || r.Unseen != 0 || len(r.Delays) != r.Sent {
			t.Errorf("rate %d: sent %d, failed %d, unseen %d, %d delays", r.Rate, r.Sent, r.Failed, r.Unseen, len(r.Delays))
		}
		// Every message committed means at least one pack, at most one
		// per message (one per commit pass).
		if r.Packs < 1 || r.Packs > r.Sent {
			t.Errorf("rate %d: %d packs written for %d messages", r.Rate, r.Packs, r.Sent)
		}
	}
	if s.Ingest.Failed != 0 || len(s.Ingest.Latencies) != 40 {
		t.Errorf("ingest: %d failed, %d delivered", s.Ingest.Failed, len(s.Ingest.Latencies))
	}
	table := renderIdleTable(c, sides)
	for _, want := range []string{"| 20 |", "| 200 |", "| this |", "this p95 ms"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
