package imapd_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"mailswarm/message"
)

// BenchmarkFetch is a whole-mailbox FETCH on a 10,000-message list, over
// loopback, one command per op: envelopes, and the header fields mail
// clients list a mailbox with.
func BenchmarkFetch(b *testing.B) {
	ts := newTestServer(b, synthetic(10000), nil)
	c := ts.dial(b, "u")
	mustCmd(b, c, "EXAMINE test")
	for name, cmd := range map[string]string{
		"envelope": "UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)",
		"headers":  "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From Subject Date Message-ID References)])",
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if n := len(mustCmd(b, c, cmd)); n != 10000 {
					b.Fatalf("%d responses", n)
				}
			}
		})
	}
}

// BenchmarkSearchBody is UID SEARCH BODY for a word in 1 in 3 messages
// and for a rare one.
func BenchmarkSearchBody(b *testing.B) {
	ts := newTestServer(b, synthetic(10000), nil)
	c := ts.dial(b, "u")
	mustCmd(b, c, "EXAMINE test")
	for _, word := range []string{"xylophone1", "message 4242"} {
		b.Run(word, func(b *testing.B) {
			for b.Loop() {
				mustCmd(b, c, `UID SEARCH BODY "`+word+`"`)
			}
		})
	}
}

// BenchmarkFetchHeadersMbox is BenchmarkFetchHeaders on the messages of
// the mbox named by MAILSWARM_BENCH_MBOX (skipped without it), e.g. one
// made by gen_mbox.py, whose bodies are realistic in size.
func BenchmarkFetchHeadersMbox(b *testing.B) {
	path := os.Getenv("MAILSWARM_BENCH_MBOX")
	if path == "" {
		b.Skip("MAILSWARM_BENCH_MBOX not set")
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	var msgs [][]byte
	err = message.ReadMbox(f, message.MboxRD, func(m []byte) error {
		msgs = append(msgs, bytes.Clone(m))
		return nil
	})
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	ts := newTestServer(b, msgs, nil)
	c := ts.dial(b, "u")
	mustCmd(b, c, "EXAMINE test")
	for _, cmd := range []string{
		"UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From Subject Date Message-ID References)])",
		"UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)",
		"UID FETCH 1:* (BODY.PEEK[])",
		"UID SEARCH BODY quokkaword",
		"UID SEARCH TEXT quokkaword",
	} {
		b.Run(strings.Join(strings.Fields(cmd)[:4], "_"), func(b *testing.B) {
			for b.Loop() {
				mustCmd(b, c, cmd)
			}
		})
	}
}

// BenchmarkSelectMillion is SELECT of a list of MAILSWARM_BENCH_MILLION
// messages (e.g. 1000000; skipped when unset): small messages, since
// SELECT does not depend on their size. It logs how long the server took
// to build the list's views (at start, in the background) and reports
// the SELECT itself.
func BenchmarkSelectMillion(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("MAILSWARM_BENCH_MILLION"))
	if n <= 0 {
		b.Skip("MAILSWARM_BENCH_MILLION not set")
	}
	ts := newTestServer(b, nil, nil)
	ctx := context.Background()
	const batch = 10000
	start := time.Now()
	for i := 0; i < n; i += batch {
		msgs := make([][]byte, 0, batch)
		for j := i; j < min(n, i+batch); j++ {
			msgs = append(msgs, fmt.Appendf(nil, "From: p%d@example.org\nSubject: m %d\nDate: Mon, 2 Jan 2006 15:04:05 +0000\nMessage-ID: <m%d@x>\n\nb %d\n", j%97, j, j, j))
		}
		if _, err := ts.l.Add(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("%d messages archived in %v", n, time.Since(start).Round(time.Second))
	start = time.Now()
	ts.restart(b, nil)
	c := ts.dial(b, "u")
	out := rawStrings(mustCmd(b, c, "EXAMINE test")) // waits for the views
	b.Logf("server start to first EXAMINE done: %v (%s)", time.Since(start).Round(time.Millisecond), strings.Fields(out)[0])
	b.ResetTimer()
	for b.Loop() {
		mustCmd(b, c, "SELECT test")
	}
}

// BenchmarkPasswordCheck is one bcrypt check at the default cost (10), a
// wrong password: what a failed LOGIN costs the server in CPU, and why
// password checks share at most half the cores (server.go).
func BenchmarkPasswordCheck(b *testing.B) {
	hash, err := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.DefaultCost)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if bcrypt.CompareHashAndPassword(hash, []byte("wrong")) == nil {
			b.Fatal("wrong password accepted")
		}
	}
}
