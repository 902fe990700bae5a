package main

import (
	"bytes"
	"fmt"
	"net/smtp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"mailswarm/internal/peertest"
	"mailswarm/message"
)

// splitMbox returns the messages of an export, in order.
func splitMbox(t *testing.T, mbox []byte) [][]byte {
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

// TestExportDuringCommits: exports taken by a second process while serve
// commits bursts of equal-length messages (differing only in a number) are
// each a prefix of the final export, message by message: an article never
// shows other bytes early than it does once everything is committed.
func TestExportDuringCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("runs serve and many exports")
	}
	data := t.TempDir()
	port := peertest.FreePort(t)
	cfg := writeConfig(t, data, port, 0, "dev@lists.example.org")
	srv := startServe(t, cfg, port)
	defer srv.stop(t)
	exportRace(t, fmt.Sprintf("127.0.0.1:%d", port), "dev@lists.example.org", data)
}

// TestExportDuringCommitsMirror is TestExportDuringCommits against an
// origin publishing slices every second (the swarm reading git beside the
// committer) with a mirror following it, both exported in loops: each
// export of either is a prefix of the origin's final one.
func TestExportDuringCommitsMirror(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two serves and many exports")
	}
	o := newClusterNode(t, 0, true)
	o.start(t)
	defer o.srv.stop(t)
	m := newClusterNode(t, 1, false)
	m.key, m.sources = listKey(t, o.data), []string{o.httpBase()}
	m.start(t)
	defer m.srv.stop(t)
	exportRace(t, fmt.Sprintf("%s:%d", o.ip, o.smtp), "dev@example.org", o.data, m.data)
}

// exportRace sends bursts to the SMTP server at addr (list dev, address
// to) while exporting list dev of each data directory in loops (dirs[0]:
// the serve receiving the mail), then compares every export with the
// final export of dirs[0].
func exportRace(t *testing.T, addr, to string, dirs ...string) {
	const bursts, perBurst, senders = 8, 25, 5
	var (
		mu      sync.Mutex
		exports [][]byte // every export taken while the bursts ran
		from    []string // the data directory of each
		sent    = map[string]bool{}
	)
	// A mirror creates its list as it starts following, perhaps after its
	// ports listen: export only lists that exist.
	for _, data := range dirs {
		for i := 0; ; i++ {
			_, stderr, err := mailswarm(t, "export", "--data", data, "--list", "dev")
			if err == nil {
				break
			}
			if i == 100 {
				t.Fatalf("export %s: %v\n%s", data, err, stderr)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	stop := make(chan struct{})
	var ew sync.WaitGroup
	for w := range 2 {
		ew.Go(func() {
			deadline := time.Now().Add(90 * time.Second)
			for i := 0; i < 400 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				data := dirs[(i+w)%len(dirs)]
				out, stderr, err := mailswarm(t, "export", "--data", data, "--list", "dev")
				if err != nil {
					t.Errorf("export: %v\n%s", err, stderr)
					return
				}
				mu.Lock()
				exports, from = append(exports, out), append(from, data)
				mu.Unlock()
			}
		})
	}
	n := 0
	for b := range bursts {
		var sw sync.WaitGroup
		for s := range senders {
			sw.Go(func() {
				for i := s; i < perBurst; i += senders {
					k := 100 + b*perBurst + i // three digits: messages of a kind are the same length
					m := fmt.Sprintf("From: p@example.net\r\nTo: %s\r\nSubject: post %03d\r\nMessage-ID: <p%03d@example.net>\r\n\r\npost %03d\r\n", to, k, k, k)
					if i%2 == 1 {
						// Without a Message-ID, and large enough to be
						// inflated from the file rather than from the first
						// 2 KiB read.
						m = fmt.Sprintf("From: p@example.net\r\nTo: %s\r\nSubject: post %03d\r\n\r\npost %03d\r\n%s\r\n", to, k, k, strings.Repeat(fmt.Sprintf("line %03d of random-ish text\r\n", k), 200))
					}
					if b%2 == 1 && i%2 == 0 {
						// As mirrorCluster sends them: replies, a line mbox
						// quotes, lengths growing with the number.
						m = fmt.Sprintf("From: Poster %d <p%d@example.net>\r\nTo: %s\r\nSubject: client post %d\r\n"+
							"Message-ID: <client%d@example.net>\r\nIn-Reply-To: <p100@example.net>\r\n\r\nbody %d\r\nFrom the start of a line\r\n%s",
							k%4, k%4, to, k, k, k, strings.Repeat("more text\r\n", k%25))
					}
					mu.Lock()
					sent[m] = true
					mu.Unlock()
					if err := smtp.SendMail(addr, nil, "p@example.net", []string{to}, []byte(m)); err != nil {
						t.Errorf("send %d: %v", k, err)
					}
				}
			})
		}
		sw.Wait()
		n += perBurst
		time.Sleep(time.Duration(b) * 150 * time.Millisecond)
	}
	// Let the exports run on past the last commit for a while.
	time.Sleep(2 * time.Second)
	close(stop)
	ew.Wait()

	var want [][]byte
	for di, data := range dirs {
		var final []byte
		for range 300 {
			out, stderr, err := mailswarm(t, "export", "--data", data, "--list", "dev")
			if err != nil {
				t.Fatalf("export: %v\n%s", err, stderr)
			}
			final = out
			if len(splitMbox(t, final)) == n {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		got := splitMbox(t, final)
		if len(got) != n {
			t.Fatalf("final export of %s holds %d messages, want %d", data, len(got), n)
		}
		if di == 0 {
			want = got
		} else if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("final export of %s differs from the origin's", data)
		}
	}
	for _, m := range want {
		if !sent[string(m)] {
			t.Errorf("final export holds a message never sent: %q", m)
		}
		delete(sent, string(m))
	}
	if len(sent) > 0 {
		t.Errorf("final export lacks %d messages sent", len(sent))
	}
	bad := 0
	for i, e := range exports {
		got := splitMbox(t, e)
		if len(got) > len(want) {
			t.Errorf("export %d holds %d messages, more than the final %d", i, len(got), len(want))
			continue
		}
		for j := range got {
			if !bytes.Equal(got[j], want[j]) {
				bad++
				if bad <= 5 {
					t.Errorf("export %d of %s (%d bytes, %d messages): message %d is\n%q\nfinal has\n%q", i, from[i], len(e), len(got), j+1, got[j], want[j])
				}
			}
		}
	}
	t.Logf("%d exports compared against the final one (%d messages)", len(exports), len(want))
}

// TestExportMirrorCatchesUp repeats mirrorCluster's wait: bursts of 25
// sent to an origin, its export read right after the last 250, then both
// nodes' exports read until the mirror's equals the origin's with the
// whole burst. Every export of either node must be a prefix of the
// origin's final export, message by message, and no mirror export may
// have the size of the origin's read at the last 250 and other bytes.
func TestExportMirrorCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two serves and many exports")
	}
	o := newClusterNode(t, 0, true)
	o.start(t)
	defer o.srv.stop(t)
	m := newClusterNode(t, 1, false)
	m.key, m.sources = listKey(t, o.data), []string{o.httpBase()}
	m.start(t)
	defer m.srv.stop(t)
	export := func(data string) []byte {
		out, stderr, err := mailswarm(t, "export", "--data", data, "--list", "dev")
		if err != nil {
			t.Fatalf("export %s: %v\n%s", data, err, stderr)
		}
		return out
	}
	type seen struct {
		who string
		b   []byte
	}
	var all []seen
	const rounds, per = 6, 25
	for r := range rounds {
		for i := 1; i <= per; i++ {
			k := r*per + i
			msg := fmt.Sprintf("From: Poster %d <p%d@example.net>\r\nTo: dev@example.org\r\nSubject: client post %d\r\n"+
				"Message-ID: <client%d@example.net>\r\n", k%4, k%4, k, k)
			if k > 1 {
				msg += "In-Reply-To: <client1@example.net>\r\n"
			}
			msg += fmt.Sprintf("\r\nbody %d\r\nFrom the start of a line\r\n%s", k, strings.Repeat("more text\r\n", i))
			o.send(t, msg)
		}
		// A 250 is a durable spool record, not yet an article: the
		// export read at once holds what was committed by then.
		first := export(o.data)
		all = append(all, seen{"origin at the last 250", first})
		t.Logf("round %d: the origin's export read at the last 250 holds %d of %d messages", r, len(splitMbox(t, first)), (r+1)*per)
		deadline := time.Now().Add(60 * time.Second)
		for {
			got := export(m.data)
			now := export(o.data)
			all = append(all, seen{"mirror", got}, seen{"origin", now})
			if len(got) == len(first) && !bytes.Equal(got, first) {
				t.Errorf("round %d: the mirror's export has the size of the origin's read at the last 250 (%d bytes) and other bytes", r, len(got))
			}
			if bytes.Equal(got, now) && len(splitMbox(t, now)) == (r+1)*per {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: the mirror's export (%d bytes) did not reach the origin's (%d bytes) in 60 s", r, len(got), len(now))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	want := splitMbox(t, export(o.data))
	if len(want) != rounds*per {
		t.Fatalf("final export holds %d messages, want %d", len(want), rounds*per)
	}
	for i, s := range all {
		got := splitMbox(t, s.b)
		for j := range min(len(got), len(want)) {
			if !bytes.Equal(got[j], want[j]) {
				t.Errorf("export %d (%s, %d messages): message %d is\n%q\nfinal has\n%q", i, s.who, len(got), j+1, got[j], want[j])
			}
		}
		if len(got) > len(want) {
			t.Errorf("export %d (%s) holds %d messages, more than the final %d", i, s.who, len(got), len(want))
		}
	}
	t.Logf("%d exports compared", len(all))
}
