package archive

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"mailswarm/gitstore"
	"mailswarm/message"
)

// Prepared is a message parsed and ready to be archived. Preparing is the
// CPU-heavy part of archiving and may run on many goroutines; AddPrepared
// then writes in order.
type Prepared struct {
	Raw    []byte
	Parsed *message.Parsed
	// Arrived is the committer time: when the list received the message.
	Arrived  time.Time
	trigrams []uint64 // distinct full-text trigram keys (trigram.go)
	pos      int      // position in its batch
	spoolSeq uint64   // spool sequence number (0: not from the spool)
	blob     *gitstore.PreparedBlob
}

// Prepare parses raw. arrived is when the message reached the list; zero
// means "as public-inbox would record it for imported history": the time of
// the newest Received header, else the Date, else now.
func Prepare(raw []byte, arrived time.Time) *Prepared {
	p := prepareIndex(raw, arrived)
	p.blob = gitstore.PrepareBlob(raw)
	return p
}

// prepareIndex is Prepare without the blob's compressed record: for a
// message git already holds (an installed pack), only the index needs
// it, and deflating it for nothing was 13 % of an install's CPU.
func prepareIndex(raw []byte, arrived time.Time) *Prepared {
	p := &Prepared{Raw: raw, Parsed: message.Parse(raw), Arrived: arrived}
	p.trigrams = messageTrigrams(p.Parsed)
	// The decoded texts were only needed for the trigrams; a batch holds
	// thousands of messages, so let them go.
	p.Parsed.Text, p.Parsed.HeaderText = "", ""
	if p.Arrived.IsZero() {
		if t, ok := receivedTime(raw); ok {
			p.Arrived = t
		} else if !p.Parsed.Date.IsZero() {
			p.Arrived = p.Parsed.Date
		} else {
			p.Arrived = time.Now()
		}
	}
	return p
}

// AddResult says what AddPrepared did.
type AddResult struct {
	Added      int   // messages archived
	Duplicates int   // dropped: same Message-ID and same content already archived
	Malformed  int   // archived, but parsing found problems (see Parsed.Problems)
	First      int64 // article numbers of the added messages; First > Last when none
	Last       int64
}

// AddPrepared archives msgs in order: drops duplicates, commits the rest to
// git durably as one pack, indexes them and publishes one Event. When it
// returns nil every added message is on disk.
func (l *List) AddPrepared(ctx context.Context, msgs []*Prepared) (AddResult, error) {
	return l.addBatch(ctx, newBatch(msgs, false))
}

func (l *List) addBatch(ctx context.Context, b *batch) (AddResult, error) {
	msgs := b.msgs
	if err := l.refuseMirror(); err != nil {
		return AddResult{}, err
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	var res AddResult
	// From before the dedup, so another process cannot archive the same
	// message between our check and our append, to the index commit.
	lk, err := l.lockIndex(false)
	if err != nil {
		return res, fmt.Errorf("archive: add to %s: %w", l.name, err)
	}
	defer lk.Unlock()
	keep, err := l.dedup(ctx, msgs, &res)
	if err != nil {
		return res, fmt.Errorf("archive: add to %s: %w", l.name, err)
	}
	if len(keep) == 0 {
		res.First, res.Last = 1, 0
		return res, nil
	}
	commits := make([]gitstore.Commit, len(keep))
	b.byBlob = make(map[gitstore.Hash]*Prepared, len(keep))
	for i, m := range keep {
		commits[i] = l.commitFor(m)
		if len(m.Parsed.Problems) > 0 {
			res.Malformed++
		}
	}
	entries, err := l.git.Append(commits)
	if err != nil {
		return res, fmt.Errorf("archive: add to %s: %w", l.name, err)
	}
	for i, e := range entries {
		b.byBlob[e.Blob] = keep[i]
	}
	if testHookGitAppended != nil {
		testHookGitAppended(l)
	}
	first, last, err := l.catchUp(ctx, b)
	if err != nil {
		// The messages are in git; the index catches up at the next open.
		return res, fmt.Errorf("archive: index %s: %w", l.name, err)
	}
	res.Added, res.First, res.Last = len(keep), first, last
	return res, nil
}

// testHookGitAppended, when set, runs in addBatch between the git append
// (the ref has moved) and the index commit.
var testHookGitAppended func(l *List)

// Add prepares and archives raw messages; see AddPrepared.
func (l *List) Add(ctx context.Context, raws ...[]byte) (AddResult, error) {
	msgs := make([]*Prepared, len(raws))
	for i, r := range raws {
		msgs[i] = Prepare(r, time.Time{})
	}
	return l.AddPrepared(ctx, msgs)
}

// dedup returns the messages of msgs that are not duplicates of archived
// ones or of earlier ones in msgs.
func (l *List) dedup(ctx context.Context, msgs []*Prepared, res *AddResult) ([]*Prepared, error) {
	tx, err := l.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	w, err := newIndexWriter(ctx, tx)
	if err != nil {
		return nil, err
	}
	defer w.close()
	type key struct {
		mid string
		h   [32]byte
	}
	batch := make(map[key]bool, len(msgs))
	keep := msgs[:0:0]
	for _, m := range msgs {
		k := key{m.Parsed.MessageID, m.Parsed.ContentHash}
		dup := batch[k]
		if !dup {
			if dup, err = w.isDuplicate(ctx, m.Parsed); err != nil {
				return nil, err
			}
		}
		if dup {
			res.Duplicates++
			continue
		}
		batch[k] = true
		keep = append(keep, m)
	}
	return keep, nil
}

// commitFor builds the git commit as public-inbox writes it: author = From
// (Sender when From has no address) at the Date, committer = the list at
// arrival time, message = the Subject ("(no subject)" when empty).
func (l *List) commitFor(m *Prepared) gitstore.Commit {
	p := m.Parsed
	email := p.From.Mailbox
	if p.From.Host != "" {
		email += "@" + p.From.Host
	}
	date := p.Date
	if date.IsZero() {
		date = m.Arrived
	}
	subj := strings.Join(strings.Fields(p.Subject), " ")
	if subj == "" {
		subj = "(no subject)"
	}
	if m.spoolSeq > 0 {
		subj += spoolTrailer + strconv.FormatUint(m.spoolSeq, 10)
	}
	addr := l.meta.Address
	if addr == "" {
		addr = l.name + "@localhost"
	}
	return gitstore.Commit{
		Blob:      m.Raw,
		Author:    gitstore.Ident{Name: p.From.Name, Email: email, When: date},
		Committer: gitstore.Ident{Name: l.name, Email: addr, When: m.Arrived},
		Message:   subj,
		Prepared:  m.blob,
	}
}

// receivedTime returns the date of the first (newest) Received header
// that has one, as public-inbox's msg_timestamp does.
func receivedTime(raw []byte) (time.Time, bool) {
	hdr := raw
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		hdr = raw[:i+1]
	}
	if i := bytes.Index(hdr, []byte("\r\n\r\n")); i >= 0 {
		hdr = hdr[:i+2]
	}
	for len(hdr) > 0 {
		line, rest, _ := bytes.Cut(hdr, []byte("\n"))
		hdr = rest
		if len(line) < 9 || !strings.EqualFold(string(line[:9]), "received:") {
			continue
		}
		val := string(line[9:])
		for len(hdr) > 0 && (hdr[0] == ' ' || hdr[0] == '\t') { // folded
			line, hdr, _ = bytes.Cut(hdr, []byte("\n"))
			val += " " + string(line)
		}
		i := strings.LastIndexByte(val, ';')
		if i < 0 {
			continue
		}
		t, err := mail.ParseDate(strings.TrimSpace(strings.ReplaceAll(val[i+1:], "\r", "")))
		if err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
