package archive

import (
	"context"
	"slices"
	"strings"
	"testing"

	"mailswarm/internal/peertest"
	"mailswarm/message"
)

func foldString(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\r' {
			return -1
		}
		return message.FoldRune(r)
	}, s)
}

// TestSearchCandidates checks that the trigram index never misses a
// message whose field contains the needle (case-insensitively), and that
// it narrows the search.
func TestSearchCandidates(t *testing.T) {
	ctx := context.Background()
	a := newTestArchive(t)
	l, err := a.Create("s", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Import(ctx, []string{peertest.Corpus(t, "spamassassin/easy-ham-2.mboxrd.gz")}, &ImportOptions{BatchSize: 300}); err != nil {
		t.Fatal(err)
	}
	type doc struct{ subject, header, body string }
	docs := map[int64]doc{}
	err = l.Articles(ctx, 0, 0, false, func(art *Article) error {
		raw, err := l.Read(art)
		if err != nil {
			return err
		}
		p := message.Parse(raw)
		var hdr strings.Builder // FieldHeader covers the indexed fields only
		for line := range strings.Lines(p.HeaderText) {
			if name, _, _ := strings.Cut(line, ":"); IndexedHeader(name) {
				hdr.WriteString(line)
			}
		}
		docs[art.Num] = doc{foldString(p.Subject), foldString(hdr.String()), foldString(p.Text)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field  int
		needle string
	}{
		{FieldSubject, "Razor"}, {FieldSubject, "[ILUG]"}, {FieldSubject, "re: "},
		{FieldBody, "spamassassin"}, {FieldBody, "SourceForge"}, {FieldBody, "xylophone"},
		{FieldBody, "http://"}, {FieldBody, "Übersicht"}, {FieldHeader, "fork@xent.com"},
		{FieldHeader, "Message-Id: <"}, {FieldBody, "the quick brown"},
	} {
		cands, ok, err := l.SearchCandidates(ctx, tc.field, tc.needle)
		if err != nil || !ok {
			t.Fatalf("SearchCandidates(%d, %q) = ok %v, %v", tc.field, tc.needle, ok, err)
		}
		needle := foldString(tc.needle)
		var want []int64
		for num, d := range docs {
			text := map[int]string{FieldSubject: d.subject, FieldHeader: d.header, FieldBody: d.body}[tc.field]
			if strings.Contains(text, needle) {
				want = append(want, num)
			}
		}
		slices.Sort(want)
		for _, w := range want {
			if _, found := slices.BinarySearch(cands, w); !found {
				t.Fatalf("SearchCandidates(%d, %q) misses article %d", tc.field, tc.needle, w)
			}
		}
		if len(cands) > 2*len(want)+20 {
			t.Errorf("SearchCandidates(%d, %q): %d candidates for %d matches", tc.field, tc.needle, len(cands), len(want))
		}
		t.Logf("%d %q: %d matches, %d candidates", tc.field, tc.needle, len(want), len(cands))
	}
	// The rebuilt index (per-message postings, not per-batch ones) answers
	// the same.
	before, _, err := l.SearchCandidates(ctx, FieldBody, "SourceForge")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Reindex(ctx, nil); err != nil {
		t.Fatal(err)
	}
	after, _, err := l.SearchCandidates(ctx, FieldBody, "SourceForge")
	if err != nil || !slices.Equal(before, after) {
		t.Fatalf("after reindex: %d candidates (%v), before %d", len(after), err, len(before))
	}
	if _, ok, _ := l.SearchCandidates(ctx, FieldBody, "ab"); ok {
		t.Error("a two-character needle claims index support")
	}
}

// TestKeySet checks the trigram set on ASCII and non-ASCII keys, across
// resets and growth.
func TestKeySet(t *testing.T) {
	var s keySet
	for round := 0; round < 3; round++ {
		s.reset()
		want := map[uint64]bool{}
		text := strings.Repeat("Grüße aus Köln, 東京 und Zürich! ", 200) + strings.Repeat("x", round)
		for i := 0; i < 6000; i++ { // many distinct non-ASCII keys: forces growth
			text += string(rune(0x4e00 + i))
		}
		trigramKeys(FieldBody, text, func(k uint64) { want[k] = true; s.add(k) })
		if len(s.keys) != len(want) {
			t.Fatalf("round %d: %d keys, want %d distinct", round, len(s.keys), len(want))
		}
		for _, k := range s.keys {
			if !want[k] {
				t.Fatalf("round %d: key %x was never added", round, k)
			}
			delete(want, k)
		}
	}
}
