package imapd

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"mailswarm/archive"
)

// A view is the immutable list of UIDs a mailbox holds at one moment,
// kept as runs of consecutive article numbers (a list without removals
// is one run, whatever its size). Sessions keep the view their client
// has seen; new mail makes a new view, never changes an old one.
type view struct {
	runs []run
	n    uint32 // messages
}

type run struct {
	first, last uint32 // UIDs
	seq0        uint32 // sequence number of first
}

// builder extends a copy of a view; the copy is published when done, so
// views sessions hold never change.
type builder struct {
	runs []run
	n    uint32
}

func newBuilder(v *view) *builder {
	return &builder{runs: slices.Clone(v.runs), n: v.n}
}

// add appends uid (greater than every UID so far).
func (b *builder) add(uid uint32) {
	b.n++
	if k := len(b.runs); k > 0 && b.runs[k-1].last+1 == uid {
		b.runs[k-1].last = uid
		return
	}
	b.runs = append(b.runs, run{first: uid, last: uid, seq0: b.n})
}

func (b *builder) view() *view { return &view{runs: slices.Clip(b.runs), n: b.n} }

// maxUID is the highest UID, 0 when empty.
func (v *view) maxUID() uint32 {
	if len(v.runs) == 0 {
		return 0
	}
	return v.runs[len(v.runs)-1].last
}

// uid returns the UID of sequence number seq (1-based), 0 when out of range.
func (v *view) uid(seq uint32) uint32 {
	if seq == 0 || seq > v.n {
		return 0
	}
	i := sort.Search(len(v.runs), func(i int) bool { return v.runs[i].seq0 > seq }) - 1
	r := v.runs[i]
	return r.first + (seq - r.seq0)
}

// seq returns the sequence number of uid, or the position where it would
// be inserted and false when the view lacks it.
func (v *view) seq(uid uint32) (uint32, bool) {
	i := sort.Search(len(v.runs), func(i int) bool { return v.runs[i].last >= uid })
	if i == len(v.runs) {
		return v.n + 1, false
	}
	r := v.runs[i]
	if uid < r.first {
		return r.seq0, false
	}
	return r.seq0 + (uid - r.first), true
}

// spans calls fn for each maximal range of UIDs in v that lies in
// [lo, hi], with the sequence number of its first UID.
func (v *view) spans(lo, hi uint32, fn func(first, last, seq uint32) error) error {
	i := sort.Search(len(v.runs), func(i int) bool { return v.runs[i].last >= lo })
	for ; i < len(v.runs) && v.runs[i].first <= hi; i++ {
		r := v.runs[i]
		f, l := max(r.first, lo), min(r.last, hi)
		if err := fn(f, l, r.seq0+(f-r.first)); err != nil {
			return err
		}
	}
	return nil
}

// listState is what the server knows of one list: its views (the whole
// list and each year) kept current from the archive's events, and a
// channel closed at every change so IDLE sessions wake up.
type listState struct {
	l     *archive.List
	users *archive.UserState // per-user flags

	// refreshMu makes refreshes one at a time and guards last and year;
	// mu guards the published views and is held only to read or swap
	// them, never across a query: every session takes it after every
	// command, and a refresh waiting for a database connection under it
	// once stalled 200 clients.
	refreshMu sync.Mutex
	last      int64 // last article read from the timeline
	year      int   // year of the last article (years never go back)

	mu      sync.Mutex
	all     *view         // the whole list
	years   map[int]*view // NAME/YYYY
	changed chan struct{} // closed and replaced at every change
}

func newListState(l *archive.List, users *archive.UserState) *listState {
	return &listState{l: l, all: &view{}, years: map[int]*view{}, changed: make(chan struct{}), users: users}
}

// refresh reads the articles archived since the last refresh. A year
// mailbox holds the articles that arrived in that UTC year, except that an
// article never goes into a year before its predecessor's: each year is a
// contiguous range of articles, even when imported history has clock skew.
func (s *listState) refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	s.mu.Lock()
	baseAll, baseYears := s.all, s.years // only refresh replaces them
	s.mu.Unlock()
	var all *builder
	years := map[int]*builder{}
	err := s.l.Timeline(ctx, s.last, func(num, arrived int64, removed bool) error {
		if num > 1<<32-1 {
			return fmt.Errorf("imapd: article %d does not fit an IMAP UID", num)
		}
		s.last = num
		y := max(time.Unix(arrived, 0).UTC().Year(), s.year)
		s.year = y
		if removed {
			return nil
		}
		if all == nil {
			all = newBuilder(baseAll)
		}
		all.add(uint32(num))
		yb := years[y]
		if yb == nil {
			yb = newBuilder(&view{})
			if old := baseYears[y]; old != nil {
				yb = newBuilder(old)
			}
			years[y] = yb
		}
		yb.add(uint32(num))
		return nil
	})
	if all != nil {
		ym := make(map[int]*view, len(baseYears)+len(years))
		for y, v := range baseYears {
			ym[y] = v
		}
		for y, b := range years {
			ym[y] = b.view()
		}
		s.mu.Lock()
		s.all, s.years = all.view(), ym
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
	return err
}

// current returns the view of mailbox sub ("" for the whole list, else a
// year) and the channel that closes at the next change.
func (s *listState) current(sub string) (*view, <-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sub == "" {
		return s.all, s.changed, true
	}
	y, err := strconv.Atoi(sub)
	if err != nil || len(sub) != 4 {
		return nil, nil, false
	}
	v, ok := s.years[y]
	return v, s.changed, ok
}

// yearList returns the list's years, ascending.
func (s *listState) yearList() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	ys := make([]int, 0, len(s.years))
	for y := range s.years {
		ys = append(ys, y)
	}
	slices.Sort(ys)
	return ys
}
