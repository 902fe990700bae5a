package archive

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"mailswarm/message"
)

// TestExportSecondHandleDuringCommits: a second Archive handle on the same
// directory (as `mailswarm export` beside serve), opened afresh for each
// export while the first one's committer archives bursts of accepted
// messages of equal length, exports a prefix of the final export, message
// by message.
func TestExportSecondHandleDuringCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("many exports")
	}
	dir := t.TempDir()
	a, err := Open(&Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	l, err := a.Create("dev", "dev@example.org")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()

	export := func() []byte {
		b, err := Open(&Options{Dir: dir})
		if err != nil {
			t.Error(err)
			return nil
		}
		defer b.Close()
		bl, err := b.List("dev")
		if err != nil {
			t.Error(err)
			return nil
		}
		var out bytes.Buffer
		if _, err := bl.Export(context.Background(), &out, nil); err != nil {
			t.Error(err)
			return nil
		}
		return out.Bytes()
	}

	const bursts, perBurst = 12, 25
	var (
		mu      sync.Mutex
		exports [][]byte
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			deadline := time.Now().Add(60 * time.Second)
			for i := 0; i < 3000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				if e := export(); e != nil {
					mu.Lock()
					exports = append(exports, e)
					mu.Unlock()
				}
			}
		})
	}
	var sent [][]byte
	for b := range bursts {
		var sw sync.WaitGroup
		for s := range 5 {
			sw.Go(func() {
				for i := s; i < perBurst; i += 5 {
					k := 100 + b*perBurst + i
					m := fmt.Appendf(nil, "From: p@example.net\r\nTo: dev@example.org\r\nSubject: post %03d\r\nMessage-ID: <p%03d@example.net>\r\n\r\npost %03d\r\n", k, k, k)
					if err := l.Accept(context.Background(), m); err != nil {
						t.Error(err)
					}
					mu.Lock()
					sent = append(sent, m)
					mu.Unlock()
					// Spread the burst over several committer passes.
					time.Sleep(time.Duration(b%3) * time.Millisecond)
				}
			})
		}
		sw.Wait()
		time.Sleep(time.Duration(b%4) * 100 * time.Millisecond)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	cancel()
	if err := <-runDone; err != nil {
		t.Fatal(err)
	}
	final := export()
	want := splitMboxT(t, final)
	if len(want) != len(sent) {
		t.Fatalf("final export holds %d messages, want %d", len(want), len(sent))
	}
	counts := map[int]int{}
	bad := 0
	for i, e := range exports {
		got := splitMboxT(t, e)
		counts[len(got)]++
		if len(got) > len(want) {
			t.Errorf("export %d holds %d messages, more than the final %d", i, len(got), len(want))
			continue
		}
		for j := range got {
			if !bytes.Equal(got[j], want[j]) {
				bad++
				if bad <= 5 {
					t.Errorf("export %d (%d messages): message %d is %q, final has %q", i, len(got), j+1, got[j], want[j])
				}
			}
		}
	}
	t.Logf("%d exports compared, %d distinct lengths", len(exports), len(counts))
}

func splitMboxT(t *testing.T, mbox []byte) [][]byte {
	t.Helper()
	var msgs [][]byte
	if err := message.ReadMbox(bytes.NewReader(mbox), message.MboxRD, func(m []byte) error {
		msgs = append(msgs, bytes.Clone(m))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return msgs
}
