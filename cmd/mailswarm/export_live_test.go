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

// TestExportDuringCommitsOrigin is TestExportDuringCommits against an
// origin publishing slices every second (the swarm's reads of git beside
// the committer).
func TestExportDuringCommitsOrigin(t *testing.T) {
	if testing.Short() {
		t.Skip("runs serve and many exports")
	}
	o := newClusterNode(t, 0, true)
	o.start(t)
	defer o.srv.stop(t)
	exportRace(t, fmt.Sprintf("%s:%d", o.ip, o.smtp), "dev@example.org", o.data)
}

// TestExportDuringCommitsMirror is TestExportDuringCommitsOrigin with a
// mirror following the origin, exported in loops too: each of its exports
// is a prefix of the origin's final one.
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
