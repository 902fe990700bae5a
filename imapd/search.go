package imapd

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailswarm/archive"
	"mailswarm/message"
)

// SEARCH runs on the index: UID and sequence sets on the view, dates and
// sizes as range queries on indexed columns, flags from the user state,
// and text (SUBJECT, FROM, BODY, TEXT, HEADER ...) as trigram candidates
// confirmed on the message text, which is case-insensitive substring
// matching as RFC 3501 asks. Only keys the index cannot narrow read
// messages, and only those still in the running after the other keys:
// needles shorter than three characters, header fields the index leaves
// out (Received, DKIM-Signature...), HEADER with an empty value.

// uidSet is a sorted set of UIDs; nil stands for every message of the
// view (not yet materialised).
type uidSet []uint32

func (ss *session) universe() uidSet {
	out := make(uidSet, 0, ss.v.n)
	for _, r := range ss.v.runs {
		for u := r.first; ; u++ {
			out = append(out, u)
			if u == r.last {
				break
			}
		}
	}
	return out
}

func intersect(a, b uidSet) uidSet {
	out := make(uidSet, 0, min(len(a), len(b))) // never nil: nil means every message
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

func union(a, b uidSet) uidSet {
	out := make(uidSet, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return append(append(out, a[i:]...), b[j:]...)
}

func minus(a, b uidSet) uidSet {
	out := make(uidSet, 0, len(a))
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j < len(b) && b[j] == x {
			continue
		}
		out = append(out, x)
	}
	return out
}

// inView keeps the nums (ascending) that the client's view holds.
func (ss *session) inView(nums []int64) uidSet {
	out := make(uidSet, 0, len(nums))
	for _, n := range nums {
		if n > 0 && n <= int64(ss.v.maxUID()) {
			if _, ok := ss.v.seq(uint32(n)); ok {
				out = append(out, uint32(n))
			}
		}
	}
	return out
}

// Bounds on one SEARCH (issue 11: 1,000 OR'd two-letter BODY keys, 11
// KB, read a 71k-message list 1,000 times, 3.5 minutes of two cores).
// Clients send a handful of keys: mutt one per pattern term (~b, ~s...),
// Thunderbird's quick filter five per word (OR'd FROM TO CC SUBJECT
// BODY, nested four deep) and one per rule of a saved search, mbsync
// none (it fetches UIDs). The limits are several times that; beyond
// them the answer is NO [LIMIT] (RFC 9051 §7.1) naming the limit.
const (
	// maxSearchTextKeys bounds the distinct text keys (BODY, TEXT,
	// HEADER, FROM, TO, CC, BCC, SUBJECT): each may read every message
	// in scope (needles under three characters, header fields the index
	// leaves out, or needles whose trigrams are in every message). A
	// repeated key counts once and reads each message once
	// (searcher.textOnce). 32 two-letter BODY keys read a 71k list of
	// small messages 32 times: 37.7 s of CPU on the loaded two-core test
	// machine, as much as 32 SEARCHes of one key, and stopped within
	// some 100 ms when the client hangs up (peer.go).
	maxSearchTextKeys = 32
	// maxSearchDepth bounds the nesting of OR and NOT (a parenthesised
	// list adds none): Thunderbird nests one OR per alternative. Each
	// level walks the scope once, and the parser and eval recurse.
	maxSearchDepth = 32
	// maxSearchCriteria bounds the criteria of one SEARCH: the command
	// itself, each side of an OR and each NOT. Even one without text keys
	// walks the scope once (2,900 × "OR LARGER 1 SEEN" took 20.9 s per
	// SEARCH on a 10,000-message list, 100 of them 0.7 s: ~3.5 ms a
	// criterion there, ~25 ms on a 71k list). Thunderbird's quick filter
	// makes about five per word.
	maxSearchCriteria = 128
)

// checkSearch refuses criteria over the bounds above.
func checkSearch(c *imap.SearchCriteria) error {
	keys := map[textKey]struct{}{}
	criteria := 0
	var walk func(c *imap.SearchCriteria, depth int) error
	walk = func(c *imap.SearchCriteria, depth int) error {
		if criteria++; criteria > maxSearchCriteria {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
				Text: fmt.Sprintf("SEARCH has more than %d criteria (the command, each side of an OR, each NOT)", maxSearchCriteria)}
		}
		if depth > maxSearchDepth {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
				Text: fmt.Sprintf("SEARCH nests OR and NOT more than %d deep", maxSearchDepth)}
		}
		for _, h := range c.Header {
			keys[newTextKey(archive.FieldHeader, h.Key, h.Value)] = struct{}{}
		}
		for _, b := range c.Body {
			keys[newTextKey(archive.FieldBody, "", b)] = struct{}{}
		}
		for _, t := range c.Text {
			keys[newTextKey(fieldText, "", t)] = struct{}{}
		}
		if len(keys) > maxSearchTextKeys {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeLimit,
				Text: fmt.Sprintf("SEARCH has more than %d different text keys (BODY, TEXT, HEADER, FROM, TO, CC, BCC, SUBJECT)", maxSearchTextKeys)}
		}
		for i := range c.Or {
			for j := range c.Or[i] {
				if err := walk(&c.Or[i][j], depth+1); err != nil {
					return err
				}
			}
		}
		for i := range c.Not {
			if err := walk(&c.Not[i], depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(c, 0)
}

// fieldText stands for TEXT in a textKey (it looks in the header and the
// body).
const fieldText = -1

// textKey is a text key as SEARCH compares it: field names are
// case-insensitive, needles compared folded.
type textKey struct {
	field  int
	name   string
	folded string
}

func newTextKey(field int, name, needle string) textKey {
	return textKey{field, strings.ToLower(name), message.Fold(needle)}
}

// textResult is what is known of one text key: which messages of scope
// (nil: every message) match. Slices are never changed in place.
type textResult struct{ scope, match uidSet }

// searcher evaluates one SEARCH command.
type searcher struct {
	ss    *session
	flags map[uint32]archive.Flags // loaded on first use
	memo  map[textKey]*textResult
}

func (ss *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	if err := checkSearch(criteria); err != nil {
		return nil, err
	}
	sr := &searcher{ss: ss, memo: map[textKey]*textResult{}}
	set, err := sr.eval(criteria, nil)
	if err != nil {
		return nil, err
	}
	if set == nil {
		set = ss.universe()
	}
	data := &imap.SearchData{Count: uint32(len(set))}
	if kind == imapserver.NumKindUID {
		var all imap.UIDSet
		for _, u := range set {
			all.AddNum(imap.UID(u))
		}
		data.All = all
		if len(set) > 0 {
			data.Min, data.Max = set[0], set[len(set)-1]
		}
	} else {
		var all imap.SeqSet
		for _, u := range set {
			seq, _ := ss.v.seq(u)
			all.AddNum(seq)
		}
		data.All = all
		if len(set) > 0 {
			data.Min, _ = ss.v.seq(set[0])
			data.Max, _ = ss.v.seq(set[len(set)-1])
		}
	}
	return data, nil
}

// eval returns the messages of within (nil: all) that match c. Cheap keys
// go first so that keys that read messages see as few as possible.
func (sr *searcher) eval(c *imap.SearchCriteria, within uidSet) (uidSet, error) {
	ss := sr.ss
	if ss.ctx.Err() != nil {
		return nil, errCanceled
	}
	cur := within
	and := func(s uidSet) {
		if cur == nil {
			cur = s
		} else {
			cur = intersect(cur, s)
		}
	}
	for _, seqs := range c.SeqNum {
		and(spanSet(ss.v, ss.spans(seqs)))
	}
	for _, uids := range c.UID {
		and(spanSet(ss.v, ss.spans(uids)))
	}
	lo, hi := int64(1), int64(ss.v.maxUID())
	colRange := func(col string, min, max int64) error {
		nums, err := ss.st.l.NumsIn(ss.ctx, col, min, max, lo, hi)
		if err != nil {
			return sr.ss.internalError(err)
		}
		and(ss.inView(nums))
		return nil
	}
	const far = 1 << 62
	day := func(t time.Time) int64 {
		y, m, d := t.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()
	}
	if !c.Since.IsZero() || !c.Before.IsZero() {
		min, max := int64(-far), int64(far)
		if !c.Since.IsZero() {
			min = day(c.Since)
		}
		if !c.Before.IsZero() {
			max = day(c.Before) - 1
		}
		if err := colRange(archive.ColArrived, min, max); err != nil {
			return nil, err
		}
	}
	if !c.SentSince.IsZero() || !c.SentBefore.IsZero() {
		min, max := int64(-far), int64(far)
		if !c.SentSince.IsZero() {
			min = day(c.SentSince) / 86400
		}
		if !c.SentBefore.IsZero() {
			max = day(c.SentBefore)/86400 - 1
		}
		if err := colRange(archive.ColSentDay, min, max); err != nil {
			return nil, err
		}
	}
	if c.Larger > 0 || c.Smaller > 0 {
		min, max := int64(0), int64(far)
		if c.Larger > 0 {
			min = c.Larger + 1
		}
		if c.Smaller > 0 {
			max = c.Smaller - 1
		}
		if err := colRange(archive.ColVSize, min, max); err != nil {
			return nil, err
		}
	}
	for _, f := range c.Flag {
		s, err := sr.withFlag(f, true)
		if err != nil {
			return nil, err
		}
		and(s)
	}
	for _, f := range c.NotFlag {
		s, err := sr.withFlag(f, false)
		if err != nil {
			return nil, err
		}
		and(s)
	}
	for _, o := range c.Or {
		a, err := sr.eval(&o[0], cur)
		if err != nil {
			return nil, err
		}
		if a == nil {
			continue // every message matches the first: so the OR
		}
		// the second only where the first did not match
		rest := cur
		if rest == nil {
			rest = ss.universe()
		}
		b, err := sr.eval(&o[1], minus(rest, a))
		if err != nil {
			return nil, err
		}
		and(union(a, b))
	}
	for i := range c.Not {
		base := cur
		if base == nil {
			base = ss.universe()
		}
		m, err := sr.eval(&c.Not[i], base)
		if err != nil {
			return nil, err
		}
		cur = minus(base, m)
	}
	// text keys last
	for _, h := range c.Header {
		s, err := sr.textOnce(archive.FieldHeader, h.Key, h.Value, cur)
		if err != nil {
			return nil, err
		}
		and(s)
	}
	for _, b := range c.Body {
		s, err := sr.textOnce(archive.FieldBody, "", b, cur)
		if err != nil {
			return nil, err
		}
		and(s)
	}
	for _, t := range c.Text {
		// TEXT: the header or the body (the body only where the header
		// did not match)
		hs, err := sr.textOnce(archive.FieldHeader, "", t, cur)
		if err != nil {
			return nil, err
		}
		rest := cur
		if rest == nil {
			rest = ss.universe()
		}
		bs, err := sr.textOnce(archive.FieldBody, "", t, minus(rest, hs))
		if err != nil {
			return nil, err
		}
		and(union(hs, bs))
	}
	return cur, nil
}

// textOnce is text remembering, per key, the messages already looked at:
// a key repeated (in an OR, in a NOT, or as such) reads no message
// twice.
func (sr *searcher) textOnce(field int, name, needle string, within uidSet) (uidSet, error) {
	if sr.ss.ctx.Err() != nil {
		return nil, errCanceled
	}
	k := newTextKey(field, name, needle)
	r := sr.memo[k]
	if r == nil { // the usual case: a key seen once
		m, err := sr.text(field, name, needle, within)
		if err != nil {
			return nil, err
		}
		sr.memo[k] = &textResult{scope: within, match: m}
		return m, nil
	}
	if r.scope != nil { // else every message is known
		w := within
		if w == nil {
			w = sr.ss.universe()
		}
		if todo := minus(w, r.scope); len(todo) > 0 {
			m, err := sr.text(field, name, needle, todo)
			if err != nil {
				return nil, err
			}
			r.scope, r.match = union(r.scope, todo), union(r.match, m)
		}
	}
	if within == nil {
		return r.match, nil
	}
	return intersect(r.match, within), nil
}

// spanSet materialises spans of the view.
func spanSet(v *view, spans []span) uidSet {
	out := uidSet{} // not nil, which would mean every message
	for _, sp := range spans {
		v.spans(sp.lo, sp.hi, func(first, last, _ uint32) error {
			for u := first; ; u++ {
				out = append(out, u)
				if u == last {
					break
				}
			}
			return nil
		})
	}
	return out
}

// withFlag returns the messages that have (or, when !has, lack) flag f.
func (sr *searcher) withFlag(f imap.Flag, has bool) (uidSet, error) {
	ss := sr.ss
	name := canonicalFlag(string(f))
	switch {
	case strings.EqualFold(name, `\Recent`), strings.EqualFold(name, `\Deleted`):
		// nothing is recent (the archive has no sessions to track it) or deleted
		if has {
			return uidSet{}, nil
		}
		return ss.universe(), nil
	}
	if sr.flags == nil {
		var err error
		if sr.flags, err = ss.flagsIn([]span{{1, max(ss.v.maxUID(), 1)}}); err != nil {
			return nil, sr.ss.internalError(err)
		}
	}
	bit, system := systemFlags[imap.Flag(name)]
	with := uidSet{} // not nil, which would mean every message
	for u, fl := range sr.flags {
		ok := fl.Has(name)
		if system {
			ok = fl.Bits&bit != 0
		}
		if ok {
			if _, in := ss.v.seq(u); in {
				with = append(with, u)
			}
		}
	}
	slices.Sort(with)
	if has {
		return with, nil
	}
	return minus(ss.universe(), with), nil
}

// text returns the messages of within (nil: all) whose field contains
// needle: field FieldHeader with name "" means any header field.
func (sr *searcher) text(field int, name, needle string, within uidSet) (uidSet, error) {
	ss := sr.ss
	l := ss.st.l
	folded := message.Fold(needle)
	indexField := field
	if field == archive.FieldHeader && strings.EqualFold(name, "Subject") {
		indexField = archive.FieldSubject
	}
	usable := utf8.RuneCountInString(needle) >= 3 &&
		// TEXT (name "") looks in the indexed header fields only: see docs/IMAP.md
		(field != archive.FieldHeader || name == "" || archive.IndexedHeader(name))
	var cands uidSet
	if usable {
		nums, ok, err := l.SearchCandidates(ss.ctx, indexField, needle)
		if err != nil {
			return nil, sr.ss.internalError(err)
		}
		if ok {
			cands = ss.inView(nums)
			if within != nil {
				cands = intersect(cands, within)
			}
		} else {
			usable = false
		}
	}
	if !usable {
		cands = within
		if cands == nil {
			cands = ss.universe()
		}
	}
	if len(cands) == 0 {
		return uidSet{}, nil
	}
	out := uidSet{} // not nil, which would mean every message
	if indexField == archive.FieldSubject && usable {
		nums := make([]int64, len(cands))
		for i, u := range cands {
			nums[i] = int64(u)
		}
		err := l.Subjects(ss.ctx, nums, func(num int64, subject string) error {
			if message.ContainsFolded(subject, folded) {
				out = append(out, uint32(num))
			}
			return nil
		})
		if err != nil {
			return nil, sr.ss.internalError(err)
		}
		return out, nil
	}
	nums := make([]int64, len(cands))
	for i, u := range cands {
		nums[i] = int64(u)
	}
	// a chunk at a time, checking ctx between: a client that hangs up
	// or a shutdown stops the reading within one chunk (some 30 ms of
	// two cores with 2 KB messages)
	for len(nums) > 0 {
		if ss.ctx.Err() != nil {
			return nil, errCanceled
		}
		part := nums[:min(len(nums), searchChunk)]
		nums = nums[len(part):]
		matched, err := l.MatchNums(ss.ctx, part, field, name, folded)
		ss.s.searchReads.Add(int64(len(part)))
		if err != nil {
			return nil, sr.ss.internalError(err)
		}
		for _, n := range matched {
			out = append(out, uint32(n))
		}
	}
	return out, nil
}

// searchChunk is how many messages text reads between two looks at the
// session's ctx.
const searchChunk = 1024
