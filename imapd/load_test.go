package imapd_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rssKiB is this process's resident set (VmRSS) in KiB.
func rssKiB(t testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// TestManyClients runs 200 clients at once against one server for
// MAILSWARM_LOAD_SECONDS (default 60; -short: 5): each loops over FETCH
// (envelopes and whole messages), SEARCH and IDLE while new mail arrives.
// Nothing may fail, idlers must see the mail that arrived, and the
// resident set must stop growing: the second half of the run may not
// add more than the first half did plus 64 MiB. Under -race it runs 20
// clients for 10 s (the race detector slows the server tenfold); .ci/run
// also runs it without -race at full size.
func TestManyClients(t *testing.T) {
	dur := 60 * time.Second
	clients := 200
	if raceDetector {
		dur, clients = 10*time.Second, 20
	}
	if testing.Short() {
		dur = 5 * time.Second
	}
	if s := os.Getenv("MAILSWARM_LOAD_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		dur = time.Duration(n) * time.Second
	}
	msgs := synthetic(2000)
	ts := newTestServer(t, msgs[:1000], nil)
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()

	var added atomic.Int64
	added.Store(1000)
	var wg sync.WaitGroup
	wg.Go(func() { // new mail, one message every 50 ms
		for i := 1000; i < len(msgs) && ctx.Err() == nil; i++ {
			if _, err := ts.l.Add(context.Background(), msgs[i]); err != nil {
				t.Error(err)
				return
			}
			added.Store(int64(i + 1))
			time.Sleep(50 * time.Millisecond)
		}
	})

	var ops, idles atomic.Int64
	errs := make(chan error, clients)
	start := rssKiB(t)
	var mid int64
	wg.Go(func() {
		select {
		case <-time.After(dur / 2):
			runtime.GC()
			mid = rssKiB(t)
		case <-ctx.Done():
		}
	})
	for i := range clients {
		wg.Go(func() {
			if err := loadClient(ctx, ts.addr, i, &added, &ops, &idles); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	runtime.GC()
	end := rssKiB(t)
	t.Logf("%d clients, %v: %d commands, %d IDLEs saw new mail; RSS %d MiB at start, %d MiB halfway, %d MiB at the end",
		clients, dur, ops.Load(), idles.Load(), start>>10, mid>>10, end>>10)
	if idles.Load() == 0 {
		t.Error("no IDLE saw new mail")
	}
	// RSS at start can be high from earlier tests in this process (and
	// fall by halfway): growth is counted from the lower of the two.
	if mid > 0 && end-mid > max(mid-start, 0)+64<<10 {
		t.Errorf("RSS still growing: %d KiB at start, %d halfway, %d at the end", start, mid, end)
	}
}

// loadClient is one client of TestManyClients.
func loadClient(ctx context.Context, addr string, i int, added, ops, idles *atomic.Int64) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	rc := &rawConn{c: c, r: bufio.NewReader(c)}
	cmd := func(tag, line string) ([]string, error) {
		if err := rc.trySend(tag + " " + line); err != nil {
			return nil, err
		}
		lines, err := rc.tryUntil(tag+" ", 30*time.Second)
		if err != nil {
			return nil, err
		}
		if last := lines[len(lines)-1]; !strings.HasPrefix(last, tag+" OK") {
			return nil, fmt.Errorf("%s: %s", line, last)
		}
		return lines, nil
	}
	if _, err := rc.tryUntil("* OK", 10*time.Second); err != nil {
		return err
	}
	if _, err := cmd("a", fmt.Sprintf("LOGIN user%d x", i%20)); err != nil {
		return err
	}
	if _, err := cmd("b", "SELECT test"); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(uint64(i), 1))
	for n := 0; ctx.Err() == nil; n++ {
		tag := fmt.Sprintf("c%d", n)
		switch n % 4 {
		case 0:
			lo := 1 + rng.IntN(900)
			_, err = cmd(tag, fmt.Sprintf("UID FETCH %d:%d (UID FLAGS RFC822.SIZE ENVELOPE)", lo, lo+50))
		case 1:
			_, err = cmd(tag, fmt.Sprintf("FETCH %d (BODY.PEEK[] BODYSTRUCTURE)", 1+rng.IntN(900)))
		case 2:
			_, err = cmd(tag, fmt.Sprintf("UID SEARCH BODY xylophone%d", rng.IntN(3)))
		case 3:
			err = loadIdle(rc, tag, added, idles)
		}
		if err != nil {
			return err
		}
		ops.Add(1)
	}
	rc.trySend("z LOGOUT")
	return nil
}

// loadIdle idles up to 2 s and counts it when an EXISTS beyond what was
// archived before it started arrives.
func loadIdle(rc *rawConn, tag string, added, idles *atomic.Int64) error {
	before := added.Load()
	if err := rc.trySend(tag + " IDLE"); err != nil {
		return err
	}
	if _, err := rc.tryUntil("+", 10*time.Second); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		l, err := rc.readLine(time.Until(deadline))
		if err != nil {
			break
		}
		if f := strings.Fields(l); len(f) == 3 && f[2] == "EXISTS" {
			if k, _ := strconv.ParseInt(f[1], 10, 64); k > before {
				idles.Add(1)
				break
			}
		}
	}
	if err := rc.trySend("DONE"); err != nil {
		return err
	}
	_, err := rc.tryUntil(tag+" OK", 10*time.Second)
	return err
}
