package archive

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"mailswarm/internal/peertest"
)

// TestThreadsMatchPublicInbox imports every corpus into a list, lets
// public-inbox-index index the same list directory (a v2 inbox) and
// compares the threads: the partition of the articles by our msg.thread
// must equal the one by public-inbox's over.sqlite3 tid. A thread of
// theirs that we split, or two of theirs that we joined, fails the test.
//
// Under -short the spamassassin corpora (6,046 messages) are left out:
// the test took 49 s, 182 s under -race and 6 s with -short on a loaded
// 2-core machine, nearly all of it in Import. Under -race each large
// corpus is sampled (raceCorpus: a reply whose parent is left out starts
// a thread on both sides alike); .ci/run runs it whole without -race.
func TestThreadsMatchPublicInbox(t *testing.T) {
	peertest.Need(t, "public-inbox", "sqlite3")
	for _, path := range peertest.Corpora(t) {
		rel := filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
		t.Run(filepath.Base(path), func(t *testing.T) {
			if testing.Short() && strings.HasPrefix(rel, "spamassassin/") {
				t.Skip("large corpus: skipped in -short mode")
			}
			t.Parallel()
			path := raceCorpus(t, path)
			l := newThreadList(t, "thr")
			if _, err := l.Import(context.Background(), []string{path}, nil); err != nil {
				t.Fatal(err)
			}
			checkThreadsWithPublicInbox(t, l, rel)
		})
	}
}

// checkThreadsWithPublicInbox lets public-inbox-index index l's directory
// and fails t, naming the articles, where its threads differ from ours.
func checkThreadsWithPublicInbox(t *testing.T, l *List, rel string) {
	t.Helper()
	ours, mids, blobs := listThreads(t, l)
	peertest.PIIndexBasic(t, l.Dir())
	byBlob := peertest.PIThreads(t, l.Dir())
	// Articles are matched by blob: when public-inbox indexes a v2 inbox
	// it did not write it skips a message without a Message-ID, or with
	// that of an earlier, different message, so its numbers can differ
	// from ours. Such an article is left out of the comparison; its links
	// stay in our threads, so if it joined two of public-inbox's threads
	// that would show.
	theirs := map[int64]int64{}
	var skipped []int64
	for n, b := range blobs {
		if tid, ok := byBlob[b]; ok {
			theirs[n] = tid
		} else {
			skipped = append(skipped, n)
		}
	}
	if len(theirs) != len(byBlob) {
		t.Fatalf("%s: public-inbox indexed %d blobs, %d of them ours", rel, len(byBlob), len(theirs))
	}
	sort.Slice(skipped, func(i, j int) bool { return skipped[i] < skipped[j] })
	for _, n := range skipped {
		t.Logf("%s: article %d <%s> not indexed by public-inbox", rel, n, mids[n])
		delete(ours, n)
	}
	d := comparePartitions(theirs, ours)
	t.Logf("%s: %d articles, %d threads here, %d in public-inbox", rel, len(ours), d.gotGroups, d.wantGroups)
	for _, s := range d.report(mids) {
		t.Errorf("%s: %s", rel, s)
	}
}

// listThreads returns every article's thread, Message-ID and blob id (hex).
func listThreads(t testing.TB, l *List) (thread map[int64]int64, mid, blob map[int64]string) {
	t.Helper()
	rows, err := l.db.Query(`SELECT num, thread, mid, hex(blob_id) FROM msg`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	thread, mid, blob = map[int64]int64{}, map[int64]string{}, map[int64]string{}
	for rows.Next() {
		var n, thr int64
		var m, b string
		if err := rows.Scan(&n, &thr, &m, &b); err != nil {
			t.Fatal(err)
		}
		thread[n], mid[n], blob[n] = thr, m, strings.ToLower(b)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return thread, mid, blob
}

// partitionDiff is how a partition (got) of some article numbers differs
// from another (want) of the same numbers; a group is the set of numbers
// with one id.
type partitionDiff struct {
	wantGroups, gotGroups int
	// split: want groups that got cut into several, each as its pieces
	split [][][]int64
	// joined: got groups that hold several want groups, each as those
	joined [][][]int64
}

// comparePartitions compares got with want, both article → group id over
// the same articles (an article missing from got counts as a group of
// its own).
func comparePartitions(want, got map[int64]int64) partitionDiff {
	groups := func(p map[int64]int64) map[int64][]int64 {
		g := map[int64][]int64{}
		for n, id := range p {
			g[id] = append(g[id], n)
		}
		return g
	}
	wg, gg := groups(want), groups(got)
	d := partitionDiff{wantGroups: len(wg), gotGroups: len(gg)}
	// pieces cuts each group of a by the ids b gives its members
	pieces := func(a map[int64][]int64, b map[int64]int64) [][][]int64 {
		var out [][][]int64
		for _, members := range a {
			by := map[int64][]int64{}
			for _, n := range members {
				id, ok := b[n]
				if !ok {
					id = -n // alone
				}
				by[id] = append(by[id], n)
			}
			if len(by) < 2 {
				continue
			}
			var ps [][]int64
			for _, p := range by {
				sort.Slice(p, func(i, j int) bool { return p[i] < p[j] })
				ps = append(ps, p)
			}
			sort.Slice(ps, func(i, j int) bool { return ps[i][0] < ps[j][0] })
			out = append(out, ps)
		}
		sort.Slice(out, func(i, j int) bool { return out[i][0][0] < out[j][0][0] })
		return out
	}
	d.split = pieces(wg, got)
	d.joined = pieces(gg, want)
	return d
}

// fragments counts the articles outside the first piece of each split
// thread, and the pieces beyond the first.
func (d partitionDiff) fragments() (articles, pieces int) {
	for _, ps := range d.split {
		for _, p := range ps[1:] {
			articles += len(p)
			pieces++
		}
	}
	return articles, pieces
}

// report describes the differences, naming articles by number and
// Message-ID (mids may be nil).
func (d partitionDiff) report(mids map[int64]string) []string {
	name := func(ps [][]int64) string {
		var b strings.Builder
		for i, p := range ps {
			if i > 0 {
				b.WriteString(" | ")
			}
			for j, n := range p {
				if j == 4 {
					fmt.Fprintf(&b, " …%d more", len(p)-4)
					break
				}
				if j > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%d<%s>", n, mids[n])
			}
		}
		return b.String()
	}
	var out []string
	if len(d.split) > 0 {
		a, p := d.fragments()
		out = append(out, fmt.Sprintf("%d threads split: %d articles in %d extra pieces", len(d.split), a, p))
	}
	for _, ps := range d.split {
		out = append(out, "split: "+name(ps))
	}
	for _, ps := range d.joined {
		out = append(out, "joined: "+name(ps))
	}
	return out
}
