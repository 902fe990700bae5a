package archive

import (
	"bytes"
	"testing"

	"mailswarm/internal/peertest"
	"mailswarm/message"
)

// HEADER.FIELDS of cached fields answered from the index's header cache
// equals the answer from the whole message, on every corpus message.
func TestCachedHeadersAnswerLikeTheMessage(t *testing.T) {
	sets := [][]string{
		{"From", "Subject", "Date", "Message-ID", "References"},
		{"DATE", "FROM", "SENDER", "SUBJECT", "TO", "CC", "MESSAGE-ID", "REFERENCES", "CONTENT-TYPE", "IN-REPLY-TO", "REPLY-TO", "LIST-POST"},
		{"x-mailer", "List-Id", "Newsgroups"},
	}
	n := 0
	for _, path := range peertest.Corpora(t) {
		f, err := OpenMaybeGzip(path)
		if err != nil {
			t.Fatal(err)
		}
		err = message.ReadMbox(f, message.MboxRD, func(raw []byte) error {
			n++
			cache := cachedHeaders(raw)
			for _, fields := range sets {
				for _, f := range fields {
					if !CachedHeader(f) {
						t.Fatalf("%s is not cached", f)
					}
				}
				want, err := message.ExtractSection(raw, message.Section{Specifier: "HEADER", Fields: fields})
				if err != nil {
					return err
				}
				got, err := message.ExtractSection(cache, message.Section{Specifier: "HEADER", Fields: fields})
				if err != nil {
					return err
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s message %d %v:\ncache %q\nwhole %q", path, n, fields, got, want)
				}
			}
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(path, err)
		}
	}
	t.Logf("%d messages", n)
}
