package imapd_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"mailswarm/archive"
)

// BenchmarkFetchEnvelope is UID FETCH 1:* (UID FLAGS RFC822.SIZE
// ENVELOPE) on a 10,000-message list, over loopback, one command per op.
func BenchmarkFetchEnvelope(b *testing.B) {
	ts := newTestServer(b, synthetic(10000), nil)
	c := ts.dial(b, "u")
	mustCmd(b, c, "EXAMINE test")
	b.ResetTimer()
	for b.Loop() {
		if n := len(mustCmd(b, c, "UID FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)")); n != 10000 {
			b.Fatalf("%d responses", n)
		}
	}
}

// BenchmarkFetchHeaders is the header-fields fetch mail clients use for
// their index view.
func BenchmarkFetchHeaders(b *testing.B) {
	ts := newTestServer(b, synthetic(10000), nil)
	c := ts.dial(b, "u")
	mustCmd(b, c, "EXAMINE test")
	b.ResetTimer()
	for b.Loop() {
		if n := len(mustCmd(b, c, "UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (From Subject Date Message-ID References)])")); n != 10000 {
			b.Fatalf("%d responses", n)
		}
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
	err = archive.ReadMbox(f, archive.MboxRD, func(m []byte) error {
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
