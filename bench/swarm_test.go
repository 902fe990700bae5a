package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

// TestMain lets the test binary be the swarm benchmark's node child, as
// `bench swarm-node` is for the command.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "swarm-node" {
		if err := swarmNodeMain(os.Args[2:]); err != nil {
			fmt.Fprintf(os.Stderr, "swarm-node: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestLTRateLine(t *testing.T) {
	out := "alert: x\ndownloaded 536870912 bytes in 1.913s (metadata after 0.000s) = 267.6 MiB/s\n"
	m := ltRateRE.FindStringSubmatch(out)
	if m == nil || m[1] != "536870912" || m[3] != "267.6" {
		t.Errorf("ltRateRE on %q = %q", out, m)
	}
}

// TestSwarmBench runs the whole swarm benchmark at toy sizes: every part
// must complete, every download must match the manifest and the node must
// seed every torrent published. Without python3-libtorrent the throughput
// part is left out (a failure under CI).
func TestSwarmBench(t *testing.T) {
	peertest.Need(t, "python3", "git")
	c := swarmConfig{MiB: 2, Repeat: 1, CutN: 120, Days: 40, Idle: 100 * time.Millisecond, Shared: peertest.SharedDir(t)}
	if out, err := exec.Command(ltPython, "-c", "import libtorrent").CombinedOutput(); err != nil {
		if peertest.InCI() {
			t.Fatalf("%s cannot import libtorrent (CI must provide python3-libtorrent): %v: %s", ltPython, err, out)
		}
		t.Logf("%s cannot import libtorrent: leaving out the throughput part", ltPython)
		c.SkipThroughput = true
	}
	rep, err := runSwarmBench(t.Context(), c, io.Discard)
	if err != nil {
		t.Fatalf("runSwarmBench: %v\n%s", err, rep.render())
	}
	if !c.SkipThroughput {
		tp := rep.Throughput
		if tp.Files != 30 || tp.Bytes < 2<<20 || len(tp.Runs) != 2 {
			t.Errorf("throughput: %d files, %d bytes, %d runs; want 30 day packs of >= 2 MiB, 2 runs", tp.Files, tp.Bytes, len(tp.Runs))
		}
		for _, r := range tp.Runs {
			if r.Err != nil || r.LTRate <= 0 {
				t.Errorf("download from %s: %v, %.1f MiB/s", r.Seeder, r.Err, r.LTRate)
			}
		}
	}
	if len(rep.Cut.Rows) != 4 {
		t.Fatalf("cut: %d rows, want 4", len(rep.Cut.Rows))
	}
	for _, r := range rep.Cut.Rows {
		if r.Commits != c.CutN || r.Bytes <= 0 || r.Wall <= 0 {
			t.Errorf("cut row %q: %d commits, %d bytes, %v; want %d commits", r.Step, r.Commits, r.Bytes, r.Wall, c.CutN)
		}
	}
	rss := rep.RSS
	if rss.Packs != c.Days || rss.Bundles < 2 || len(rss.Nodes) != 2 {
		t.Fatalf("rss: %d packs, %d bundles, %d nodes; want %d packs, bundles, 2 nodes", rss.Packs, rss.Bundles, len(rss.Nodes), c.Days)
	}
	// Each node also holds the list's rendezvous torrent (gossip).
	if z, f := rss.Nodes[0].Info, rss.Nodes[1].Info; z.Torrents != 1 || f.Torrents != c.Days+rss.Bundles+1 || f.RSSKiB <= 0 {
		t.Errorf("nodes: %+v, %+v", z, f)
	}
	out := rep.render()
	for _, want := range []string{"| **per torrent** |", "| Publish: cut the open day as one slice | 120 |"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
