package archive

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// Segments of single-message commits merge into few, and searches answer
// the same before and after; verify still finds the articles tiled.
func TestMergeSegments(t *testing.T) {
	ctx := context.Background()
	l, err := newTestArchive(t).Create("m", "")
	if err != nil {
		t.Fatal(err)
	}
	const n = 70
	for i := 1; i <= n; i++ {
		msg := fmt.Appendf(nil, "From: a@b\nSubject: note %d %s\nMessage-ID: <m%d@x>\n\nword%d common text\n", i, []string{"alpha", "beta", "gamma"}[i%3], i, i%5)
		if _, err := l.Add(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	queries := []struct {
		field  int
		needle string
	}{{FieldSubject, "alpha"}, {FieldSubject, "note 1"}, {FieldBody, "word3"}, {FieldBody, "common"}, {FieldBody, "absent"}}
	search := func() [][]int64 {
		var out [][]int64
		for _, q := range queries {
			nums, ok, err := l.SearchCandidates(ctx, q.field, q.needle)
			if err != nil || !ok {
				t.Fatal(q, err, ok)
			}
			out = append(out, nums)
		}
		return out
	}
	before := search()
	segs, _ := l.segments(ctx)
	if len(segs) != n {
		t.Fatalf("%d segments before merging, want %d", len(segs), n)
	}
	merges, err := l.mergeSegments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	segs, _ = l.segments(ctx)
	t.Logf("%d merges: %d segments left (%v)", merges, len(segs), segs)
	if len(segs) > 12 {
		t.Errorf("%d segments after merging", len(segs))
	}
	if after := search(); !slices.EqualFunc(before, after, slices.Equal) {
		t.Errorf("search changed:\nbefore %v\nafter  %v", before, after)
	}
	if err := l.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if m, err := l.mergeSegments(ctx); err != nil || m != 0 {
		t.Fatalf("second merge: %d, %v", m, err)
	}
}
