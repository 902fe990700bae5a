package archive

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"mailswarm/internal/peertest"
)

// threadMsg returns a small message with Message-ID id (none when empty)
// and the extra header lines hdrs.
func threadMsg(id, hdrs, body string) []byte {
	var b strings.Builder
	b.WriteString("From: A <a@example.org>\nTo: list@example.org\nSubject: s\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n")
	if id != "" {
		fmt.Fprintf(&b, "Message-ID: <%s>\n", id)
	}
	b.WriteString(hdrs)
	fmt.Fprintf(&b, "\n%s\n", body)
	return []byte(b.String())
}

// TestThreads checks the thread ids of small lists against public-inbox's
// rules (OverIdx.pm): every id a message refers to links it, present or
// not, and the id of a thread is its lowest article number. Each case is
// then indexed by public-inbox too, which must group it the same way.
func TestThreads(t *testing.T) {
	for _, c := range []struct {
		name string
		msgs [][]byte
		want []int64 // thread of articles 1, 2, …
	}{
		{"two replies to a missing parent", [][]byte{
			threadMsg("a@x", "In-Reply-To: <gone@x>\nReferences: <gone@x>\n", "a"),
			threadMsg("u@x", "", "unrelated"),
			threadMsg("b@x", "In-Reply-To: <gone@x>\n", "b"),
		}, []int64{1, 2, 1}},
		{"replies meeting at a missing grandparent", [][]byte{
			threadMsg("a@x", "References: <root@x> <p1@x>\nIn-Reply-To: <p1@x>\n", "a"),
			threadMsg("b@x", "References: <root@x> <p2@x>\nIn-Reply-To: <p2@x>\n", "b"),
		}, []int64{1, 1}},
		{"a message linking two threads merges them", [][]byte{
			threadMsg("a@x", "", "a"),
			threadMsg("b@x", "", "b"),
			threadMsg("b2@x", "In-Reply-To: <b@x>\n", "b2"),
			threadMsg("c@x", "References: <a@x> <b2@x>\n", "c"),
			threadMsg("u@x", "", "unrelated"),
		}, []int64{1, 1, 1, 1, 5}},
		{"a ghost and a present message linked", [][]byte{
			threadMsg("a@x", "In-Reply-To: <gone@x>\n", "a"),
			threadMsg("b@x", "", "b"),
			threadMsg("c@x", "References: <gone@x> <b@x>\n", "c"),
		}, []int64{1, 1, 1}},
		{"the parent after its reply", [][]byte{
			threadMsg("u@x", "", "unrelated"),
			threadMsg("c@x", "In-Reply-To: <p@x>\n", "c"),
			threadMsg("p@x", "", "p"),
		}, []int64{1, 2, 2}},
		{"one Message-ID, two contents", [][]byte{
			threadMsg("d@x", "", "one"),
			threadMsg("u@x", "", "unrelated"),
			threadMsg("d@x", "", "two"),
		}, []int64{1, 2, 1}},
		{"every Message-ID of a message", [][]byte{
			threadMsg("m1@x", "Message-ID: <m2@x>\n", "a"),
			threadMsg("b@x", "In-Reply-To: <m1@x>\n", "b"),
			threadMsg("c@x", "In-Reply-To: <m2@x>\n", "c"),
		}, []int64{1, 1, 1}},
		// MID.pm references(): an id that is an address of the message's
		// own To, From or Cc names a person, not a message; "y" and "n"
		// are answers to an old git-send-email prompt; ids without <>
		// are not ids.
		{"addresses and bare words are not references", [][]byte{
			threadMsg("a@x", "In-Reply-To: <a@example.org>'s message of Mon\n", "a"),
			threadMsg("b@x", "In-Reply-To: <a@example.org>'s message of Tue\n", "b"),
			threadMsg("c@x", "In-Reply-To: <list@example.org>\n", "c"),
			threadMsg("d@x", "Cc: <list@example.org>\nIn-Reply-To: <list@example.org>\n", "d"),
			threadMsg("e@x", "In-Reply-To: <y>\n", "e"),
			threadMsg("f@x", "In-Reply-To: <y>\n", "f"),
			threadMsg("g@x", "In-Reply-To: bare@x\n", "g"),
			threadMsg("h@x", "References: bare@x\n", "h"),
		}, []int64{1, 2, 3, 4, 5, 6, 7, 8}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newThreadList(t, "t")
			if res, err := l.Add(context.Background(), c.msgs...); err != nil || res.Added != len(c.msgs) {
				t.Fatalf("Add = %+v, %v; want %d added", res, err, len(c.msgs))
			}
			thr, _, _ := listThreads(t, l)
			var got []int64
			for n := int64(1); n <= int64(len(c.msgs)); n++ {
				got = append(got, thr[n])
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("threads %v, want %v", got, c.want)
			}
			// and public-inbox agrees
			checkThreadsWithPublicInbox(t, l, c.name)
		})
	}
}

// TestThreadIDsStable checks that thread ids depend on the messages alone:
// a corpus added in one batch, one message per commit, and rebuilt from
// git gets the same ids; added in reverse order (children before parents,
// so threads are merged as parents arrive) the same partition.
func TestThreadIDsStable(t *testing.T) {
	ctx := context.Background()
	msgs := readAll(t, peertest.Corpus(t, "notmuch-test/lkml.mboxrd.gz"))
	bulk := newThreadList(t, "bulk")
	if _, err := bulk.Add(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	one := newThreadList(t, "one")
	rev := newThreadList(t, "rev")
	for i := range msgs {
		if _, err := one.Add(ctx, msgs[i]); err != nil {
			t.Fatal(err)
		}
		if _, err := rev.Add(ctx, msgs[len(msgs)-1-i]); err != nil {
			t.Fatal(err)
		}
	}
	want, wantMids, _ := listThreads(t, bulk)
	check := func(what string, got map[int64]int64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d articles, bulk import %d", what, len(got), len(want))
		}
		for n, thr := range want {
			if got[n] != thr {
				t.Fatalf("%s: article %d <%s> in thread %d, bulk import %d", what, n, wantMids[n], got[n], thr)
			}
		}
	}
	got, _, _ := listThreads(t, one)
	check("one per commit", got)
	if err := one.Reindex(ctx, nil); err != nil {
		t.Fatal(err)
	}
	got, _, _ = listThreads(t, one)
	check("rebuilt", got)

	// reverse order numbers the articles otherwise: compare by
	// Message-ID (one Message-ID is one thread)
	byMid := func(thr map[int64]int64, mids map[int64]string) map[string]int64 {
		m := map[string]int64{}
		for n, id := range mids {
			m[id] = thr[n]
		}
		return m
	}
	revThr, revMids, _ := listThreads(t, rev)
	a, b := byMid(want, wantMids), byMid(revThr, revMids)
	ids := map[string]int64{}
	wantP, gotP := map[int64]int64{}, map[int64]int64{}
	for id, thr := range a {
		k, ok := ids[id]
		if !ok {
			k = int64(len(ids) + 1)
			ids[id] = k
		}
		wantP[k], gotP[k] = thr, b[id]
	}
	if len(a) != len(b) {
		t.Fatalf("reverse order: %d Message-IDs, bulk import %d", len(b), len(a))
	}
	d := comparePartitions(wantP, gotP)
	for _, s := range d.report(nil) {
		t.Errorf("reverse order: %s", s)
	}
	if d.wantGroups < 2 || d.wantGroups == len(a) {
		t.Fatalf("%d threads among %d Message-IDs: the corpus tests nothing", d.wantGroups, len(a))
	}
}

func newThreadList(t testing.TB, name string) *List {
	t.Helper()
	a, err := Open(&Options{Dir: t.TempDir(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	l, err := a.Create(name, "")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestThreadsOldIndex: an index of the schema before public-inbox's
// threads (two replies to a missing parent in two threads) is rebuilt at
// open and gets them.
func TestThreadsOldIndex(t *testing.T) {
	dir := t.TempDir()
	a, err := Open(&Options{Dir: dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	l, err := a.Create("old", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Add(context.Background(),
		threadMsg("a@x", "In-Reply-To: <gone@x>\n", "a"),
		threadMsg("b@x", "In-Reply-To: <gone@x>\n", "b")); err != nil {
		t.Fatal(err)
	}
	// what schema 6 wrote
	if _, err := l.db.Exec(`UPDATE msg SET thread = num`); err != nil {
		t.Fatal(err)
	}
	if _, err := l.db.Exec(`UPDATE meta SET v = '6' WHERE k = 'schema'`); err != nil {
		t.Fatal(err)
	}
	a.Close()
	a, err = Open(&Options{Dir: dir, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if l, err = a.List("old"); err != nil {
		t.Fatal(err)
	}
	thr, _, _ := listThreads(t, l)
	if thr[1] != 1 || thr[2] != 1 {
		t.Fatalf("threads after reopening %v, want both 1", thr)
	}
}
