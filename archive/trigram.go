package archive

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"mailswarm/gitstore"
	"mailswarm/message"
)

// Full-text search is a trigram index of our own, kept in SQLite.
//
// IMAP SEARCH is case-insensitive substring matching (RFC 3501 6.4.4). A
// message can contain a needle only if it contains every trigram of it, so
// the index maps each trigram of a field to the articles holding it, and a
// search intersects the lists of the needle's trigrams, then confirms each
// candidate on its text. Needles shorter than three characters cannot use it.
//
// Why not FTS5: with SQLite's trigram tokenizer FTS5 was 55% of import CPU,
// single-threaded in the committer (each occurrence of each trigram goes
// through its hash); with our own tokens it was still 40%. Here the trigrams
// of a message are extracted and deduplicated on every core while a batch is
// prepared, and a batch of messages becomes one segment: one row per distinct
// trigram, written in key order at the end of the table.
//
//	tri(seg, key, nums)     seg   = the batch's first article number
//	                        key   = field << 48 | three folded runes, 16 bits each
//	                        nums  = the batch's articles holding the trigram,
//	                                ascending, as uvarint deltas
//	tri_batch(first, last)  the article range of each segment
//
// Keying rows by segment first keeps every insert at the end of the B-tree:
// keyed by trigram first, each batch's rows landed all over a tree that
// outgrew the page cache, and import slowed from 2,600 to 1,700 msg/s
// between 10k and 100k messages. A lookup probes each segment (a few
// microseconds each); the committer merges small segments of live mail
// (trigram_merge.go) so their number stays bounded.
//
// Runes beyond the Basic Multilingual Plane are folded into 16 bits with
// collisions, which only adds candidates.

// Fields of the trigram index.
const (
	FieldSubject = 1 // the decoded Subject
	FieldHeader  = 2 // decoded header fields named in indexedHeaders, as "Name: value" lines
	FieldBody    = 3 // the decoded text parts (SEARCH BODY; TEXT is header or body)
)

// indexedHeaders are the header fields whose text goes into the index: the
// ones IMAP SEARCH names (FROM, TO, CC, BCC, SUBJECT) and the ones people
// search with HEADER. Trace and signature fields (Received, DKIM-Signature,
// ...) are mostly unique tokens: indexing them cost more than half of the
// rows on real list mail. A search of another field reads the messages.
var indexedHeaders = map[string]bool{
	"from": true, "to": true, "cc": true, "bcc": true, "subject": true, "sender": true,
	"reply-to": true, "message-id": true, "in-reply-to": true, "references": true,
	"list-id": true, "list-post": true, "mailing-list": true, "x-mailing-list": true,
	"organization": true, "user-agent": true, "x-mailer": true, "newsgroups": true,
	"keywords": true, "content-type": true, "mail-followup-to": true, "x-original-to": true,
	"delivered-to": true, "return-path": true, "date": true,
}

// IndexedHeader reports whether SEARCH HEADER on field can use the index.
func IndexedHeader(field string) bool { return indexedHeaders[strings.ToLower(field)] }

// maxTrigramText bounds how much of one field is indexed.
const maxTrigramText = 1 << 20

func rune16(r rune) uint64 {
	if r <= 0xffff {
		return uint64(r)
	}
	return 0xe000 | uint64(r)&0x0fff // private-use area: collisions only widen results
}

// trigramKeys calls fn for each trigram of text in field (repeats included).
func trigramKeys(field uint64, text string, fn func(uint64)) {
	if len(text) > maxTrigramText {
		text = text[:maxTrigramText]
	}
	var k uint64
	n := 0
	for _, r := range text {
		if r == '\r' {
			continue
		}
		k = (k<<16 | rune16(message.FoldRune(r))) & (1<<48 - 1)
		n++
		if n >= 3 {
			fn(field<<48 | k)
		}
	}
}

// keySet is a set of trigram keys, reused between messages: a bitmap for
// trigrams of three ASCII characters (almost all of them in real mail) and
// an open-addressing table for the rest; both much faster than a Go map.
type keySet struct {
	ascii []uint64 // bit field<<21 | c0<<14 | c1<<7 | c2
	slots []uint64 // key+1; 0 = empty
	other int      // keys in slots
	keys  []uint64
}

// asciiBit returns the bitmap index of k, or -1 when k is not all ASCII.
func asciiBit(k uint64) int {
	c0, c1, c2 := k>>32&0xffff, k>>16&0xffff, k&0xffff
	if c0|c1|c2 >= 0x80 {
		return -1
	}
	return int(k>>48&3)<<21 | int(c0)<<14 | int(c1)<<7 | int(c2)
}

func (s *keySet) reset() {
	if s.ascii == nil {
		s.ascii = make([]uint64, 4<<21/64)
		s.slots = make([]uint64, 4096)
	}
	for _, k := range s.keys {
		if b := asciiBit(k); b >= 0 {
			s.ascii[b>>6] = 0
		}
	}
	clear(s.slots)
	s.other = 0
	s.keys = s.keys[:0]
}

func (s *keySet) add(k uint64) {
	if b := asciiBit(k); b >= 0 {
		w, m := b>>6, uint64(1)<<(b&63)
		if s.ascii[w]&m == 0 {
			s.ascii[w] |= m
			s.keys = append(s.keys, k)
		}
		return
	}
	if 2*(s.other+1) > len(s.slots) {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := (k * 0x9e3779b97f4a7c15) >> 20 & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case 0:
			s.slots[i] = k + 1
			s.other++
			s.keys = append(s.keys, k)
			return
		case k + 1:
			return
		}
	}
}

// grow doubles the table, re-inserting the non-ASCII keys.
func (s *keySet) grow() {
	s.slots = make([]uint64, 2*len(s.slots))
	mask := uint64(len(s.slots) - 1)
	for _, k := range s.keys {
		if asciiBit(k) >= 0 {
			continue
		}
		i := (k * 0x9e3779b97f4a7c15) >> 20 & mask
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = k + 1
	}
}

var keySets = sync.Pool{New: func() any { return new(keySet) }}

// messageTrigrams returns the distinct trigram keys of a parsed message.
func messageTrigrams(p *message.Parsed) []uint64 {
	s := keySets.Get().(*keySet)
	defer keySets.Put(s)
	s.reset()
	trigramKeys(FieldSubject, p.Subject, s.add)
	for line := range strings.Lines(p.HeaderText) {
		name, _, _ := strings.Cut(line, ":")
		if indexedHeaders[strings.ToLower(name)] {
			trigramKeys(FieldHeader, line, s.add)
		}
	}
	trigramKeys(FieldBody, p.Text, s.add)
	return slices.Clone(s.keys)
}

// postings gathers the trigram rows of one index transaction.
type postings struct {
	lists       map[uint64][]uint32
	first, last int64
}

func (p *postings) add(num int64, keys []uint64) {
	if p.lists == nil {
		p.lists = make(map[uint64][]uint32, 1<<16)
		p.first = num
	}
	p.last = num
	for _, k := range keys {
		p.lists[k] = append(p.lists[k], uint32(num))
	}
}

// flush writes the gathered rows with ins (key, first, nums) and the batch
// range with insBatch (first, last), then empties p.
func (p *postings) flush(ctx context.Context, ins, insBatch *sql.Stmt) error {
	if p.lists == nil {
		return nil
	}
	err := writeTrigramRows(ctx, ins, insBatch, p.lists, func(n uint32) int64 { return int64(n) }, p.first, p.last)
	*p = postings{}
	return err
}

// writeTrigramRows writes one row per key of lists, whose values num maps
// to ascending article numbers (0: leave out), then the batch range.
func writeTrigramRows(ctx context.Context, ins, insBatch *sql.Stmt, lists map[uint64][]uint32, num func(uint32) int64, first, last int64) error {
	// In key order, so the B-tree is walked once rather than at random.
	keys := make([]uint64, 0, len(lists))
	for k := range lists {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	buf := make([]byte, 0, 1024)
	for _, k := range keys {
		buf = buf[:0]
		prev, head := int64(0), int64(0)
		for _, v := range lists[k] {
			n := num(v)
			if n <= 0 {
				continue
			}
			if head == 0 {
				head = n
			}
			buf = binary.AppendUvarint(buf, uint64(n-prev))
			prev = n
		}
		if head == 0 {
			continue
		}
		if _, err := ins.ExecContext(ctx, first, int64(k), buf); err != nil {
			return fmt.Errorf("trigram rows: %w", err)
		}
	}
	if _, err := insBatch.ExecContext(ctx, first, last); err != nil {
		return fmt.Errorf("trigram batch: %w", err)
	}
	return nil
}

// SearchCandidates returns, ascending, the articles whose field may contain
// needle (case-insensitively): a superset of the true matches, to be
// confirmed on the text. ok is false when needle is shorter than three
// characters and the index cannot narrow the search.
//
// It goes segment by segment, and within a segment stops at the first
// trigram the segment lacks, so a rare needle costs about one lookup per
// segment.
func (l *List) SearchCandidates(ctx context.Context, field int, needle string) (nums []int64, ok bool, err error) {
	var s keySet
	s.reset()
	trigramKeys(uint64(field), needle, s.add)
	if len(s.keys) == 0 {
		return nil, false, nil
	}
	keys := slices.Clone(s.keys)
	segs, err := l.segments(ctx)
	if err != nil {
		return nil, true, fmt.Errorf("archive: search %s: %w", l.name, err)
	}
	conn, err := l.rdb.Conn(ctx)
	if err != nil {
		return nil, true, fmt.Errorf("archive: search %s: %w", l.name, err)
	}
	defer conn.Close()
	st, err := conn.PrepareContext(ctx, `SELECT nums FROM tri WHERE seg = ? AND key = ?`)
	if err != nil {
		return nil, true, fmt.Errorf("archive: search %s: %w", l.name, err)
	}
	defer st.Close()
	var result, cur []int64
	for _, seg := range segs {
		cur = cur[:0]
		for i, k := range keys {
			var b []byte
			err := st.QueryRowContext(ctx, seg, int64(k)).Scan(&b)
			if errors.Is(err, sql.ErrNoRows) {
				cur = cur[:0]
				break
			}
			if err != nil {
				return nil, true, fmt.Errorf("archive: search %s: %w", l.name, err)
			}
			list, err := decodeNums(b)
			if err != nil {
				return nil, true, fmt.Errorf("archive: search %s: %w", l.name, err)
			}
			if i == 0 {
				cur = append(cur, list...)
			} else {
				cur = intersect(cur, list)
			}
			if len(cur) == 0 {
				break
			}
		}
		result = append(result, cur...)
	}
	return result, true, nil
}

// segments returns the first article of every trigram segment, ascending.
func (l *List) segments(ctx context.Context) ([]int64, error) {
	rows, err := l.rdb.QueryContext(ctx, `SELECT first FROM tri_batch ORDER BY first`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var f int64
		if err := rows.Scan(&f); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// decodeNums decodes a row's uvarint-delta article list.
func decodeNums(b []byte) ([]int64, error) {
	out := make([]int64, 0, len(b))
	var n uint64
	for len(b) > 0 {
		d, w := binary.Uvarint(b)
		if w <= 0 {
			return nil, fmt.Errorf("%w: bad trigram row", ErrInconsistent)
		}
		b = b[w:]
		n += d
		out = append(out, int64(n))
	}
	return out, nil
}

// intersect returns the common elements of two ascending lists.
func intersect(a, b []int64) []int64 {
	out := a[:0]
	i, j := 0, 0
	for i < len(a) && j < len(b) {
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

// batch is a set of prepared messages archived together.
type batch struct {
	msgs   []*Prepared
	byBlob map[gitstore.Hash]*Prepared // filled once git has the batch
	// lists maps each trigram key to the positions in msgs of the
	// messages holding it (nil: not built); nums maps positions to the
	// article numbers the current index transaction gave them (0: none).
	lists map[uint64][]uint32
	nums  []int64
}

// newBatch numbers msgs by position and, with postings set, gathers their
// trigram postings (the work the committer would otherwise do serially).
func newBatch(msgs []*Prepared, postings bool) *batch {
	b := &batch{msgs: msgs}
	for i, m := range msgs {
		m.pos = i
	}
	if postings {
		// Sized for the batch: a live commit of one message used to
		// allocate room for 65,536 keys (2.5 ms of CPU a pass, most of
		// it clearing memory).
		n := 0
		for _, m := range msgs {
			n += len(m.trigrams)
		}
		// Counted first, then filled into one array: appending to each
		// key's list grew and copied them (growslice and memmove were 17 %
		// of a mirror's install of 10,000 messages).
		next := make(map[uint64]int, min(n, 1<<16))
		for _, m := range msgs {
			for _, k := range m.trigrams {
				next[k]++
			}
		}
		all := make([]uint32, n)
		b.lists = make(map[uint64][]uint32, len(next))
		off := 0
		for k, c := range next {
			b.lists[k] = all[off : off+c : off+c]
			next[k] = off
			off += c
		}
		for i, m := range msgs {
			for _, k := range m.trigrams {
				all[next[k]] = uint32(i)
				next[k]++
			}
		}
	}
	return b
}

// lookup returns the prepared message whose blob is h, or nil (also for a
// nil batch).
func (b *batch) lookup(h gitstore.Hash) *Prepared {
	if b == nil {
		return nil
	}
	return b.byBlob[h]
}

// postingsFor returns b, ready to supply the full-text rows, when ents are
// exactly messages of b, each once; otherwise nil.
func (b *batch) postingsFor(ents []gitstore.Entry) *batch {
	if b == nil || b.lists == nil {
		return nil
	}
	b.nums = make([]int64, len(b.msgs))
	for _, e := range ents {
		if e.Remove {
			continue
		}
		p := b.byBlob[e.Blob]
		if p == nil || b.nums[p.pos] != 0 {
			return nil
		}
		b.nums[p.pos] = -1 // seen
	}
	clear(b.nums)
	return b
}

// flush writes the trigram rows of the messages numbered so far.
func (b *batch) flush(ctx context.Context, ins, insBatch *sql.Stmt) error {
	first, last := int64(0), int64(0)
	for _, n := range b.nums {
		if n > 0 {
			if first == 0 || n < first {
				first = n
			}
			last = max(last, n)
		}
	}
	if first == 0 {
		return nil
	}
	// Positions ascend in each list, and so do their article numbers.
	err := writeTrigramRows(ctx, ins, insBatch, b.lists, func(pos uint32) int64 { return b.nums[pos] }, first, last)
	clear(b.nums)
	return err
}
