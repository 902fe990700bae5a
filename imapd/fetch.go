package imapd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"mailswarm/archive"
	"mailswarm/message"
)

// FETCH responses are written here, not through go-imap's FetchWriter:
// its writer takes ENVELOPE and BODYSTRUCTURE as go-imap types (a parsed
// Date, parameters in a map, Q-encoded subjects), so it cannot send the
// raw header values IMAP requires and Dovecot sends, and it flushes the
// socket after every message. Here the wire form comes from the index
// (formatEnvelope, formatBodyStructure: format.go) and responses go out in
// 64 KiB writes. go-imap has finished parsing the command and its own
// goroutine writes nothing on this connection until Fetch returns. Only
// Shutdown's BYE comes from another goroutine; go-imap's lock for a
// response is not taken here, so Fetch holds session.resp instead and
// bye takes it, after asking Fetch to stop at the end of a message: the
// BYE comes between two responses, never inside a literal.

const fetchWriteTimeout = 5 * time.Minute

// span is a range of UIDs in the selected view.
type span struct{ lo, hi uint32 }

// spans resolves a sequence or UID set against the client's view into
// ascending, disjoint UID ranges.
func (ss *session) spans(numSet imap.NumSet) []span {
	v := ss.v
	var out []span
	switch set := numSet.(type) {
	case imap.SeqSet:
		for _, r := range set {
			a, b := r.Start, r.Stop
			if a == 0 {
				a = v.n
			}
			if b == 0 {
				b = v.n
			}
			if a > b {
				a, b = b, a
			}
			b = min(b, v.n)
			if a == 0 || a > b {
				continue
			}
			v.spans(v.uid(a), v.uid(b), func(first, last, _ uint32) error {
				out = append(out, span{first, last})
				return nil
			})
		}
	case imap.UIDSet:
		maxUID := v.maxUID()
		for _, r := range set {
			a, b := uint32(r.Start), uint32(r.Stop)
			if a == 0 {
				a = maxUID
			}
			if b == 0 {
				b = maxUID
			}
			if a > b {
				a, b = b, a
			}
			if a == 0 {
				a = 1
			}
			if b == 0 {
				continue
			}
			v.spans(a, b, func(first, last, _ uint32) error {
				out = append(out, span{first, last})
				return nil
			})
		}
	}
	if len(out) < 2 {
		return out
	}
	slices.SortFunc(out, func(x, y span) int { return int(x.lo) - int(y.lo) })
	merged := out[:1]
	for _, s := range out[1:] {
		last := &merged[len(merged)-1]
		if s.lo <= last.hi+1 {
			last.hi = max(last.hi, s.hi)
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// writerInfo reads what go-imap's FetchWriter knows of the command and
// does not export: which obsolete item names (RFC822, RFC822.HEADER,
// RFC822.TEXT) the client used, and whether it asked for BODY (the
// non-extended structure) as well as or instead of BODYSTRUCTURE.
// Reflection reads unexported fields without changing them; a test
// fails if go-imap renames them.
type writerInfo struct {
	obsolete    reflect.Value
	nonExtended bool
	extended    bool
}

func inspectWriter(w *imapserver.FetchWriter, options *imap.FetchOptions) writerInfo {
	var wi writerInfo
	if options.BodyStructure != nil {
		wi.extended = options.BodyStructure.Extended
		wi.nonExtended = !wi.extended
	}
	if w == nil {
		return wi
	}
	opts := reflect.ValueOf(w).Elem().FieldByName("options")
	if !opts.IsValid() {
		return wi
	}
	if bs := opts.FieldByName("bodyStructure"); bs.IsValid() {
		if f := bs.FieldByName("nonExtended"); f.IsValid() {
			wi.nonExtended = f.Bool()
		}
		if f := bs.FieldByName("extended"); f.IsValid() {
			wi.extended = f.Bool()
		}
	}
	if m := opts.FieldByName("obsolete"); m.IsValid() && m.Kind() == reflect.Map {
		wi.obsolete = m
	}
	return wi
}

func (wi writerInfo) obsoleteName(bs *imap.FetchItemBodySection) string {
	if !wi.obsolete.IsValid() {
		return ""
	}
	v := wi.obsolete.MapIndex(reflect.ValueOf(bs))
	if !v.IsValid() {
		return ""
	}
	return v.String()
}

var errShuttingDown = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
	Text: "Server shutting down"}

// bye says BYE and hangs up, between two responses: a FETCH being
// written stops at the end of its current message first.
func (ss *session) bye(text string) {
	ss.stopping.Store(true)
	ss.resp.Lock()
	defer ss.resp.Unlock()
	ss.conn.Bye(text)
}

var errUnknownCTE = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnknownCTE,
	Text: "Cannot decode this part's Content-Transfer-Encoding"}

// Fetch answers FETCH and UID FETCH: it resolves the set, sets \Seen where
// the fetch implies it, plans which index fields and pack reads the items
// need, and writes one response per message.
func (ss *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	spans := ss.spans(numSet)
	if len(spans) == 0 {
		return nil
	}
	flags, err := ss.fetchFlags(spans, options)
	if err != nil {
		return ss.internalError(err)
	}
	p := planFetch(options, inspectWriter(w, options))
	p.flags = flags
	ss.resp.Lock()
	defer ss.resp.Unlock()
	bw := ss.fetchWriter()
	defer ss.conn.NetConn().SetWriteDeadline(time.Time{})
	for _, sp := range spans {
		err := ss.st.l.Rows(ss.ctx, int64(sp.lo), int64(sp.hi), p.want, func(r *archive.Row) error {
			if ss.stopping.Load() {
				return errShuttingDown
			}
			if ss.ctx.Err() != nil { // the client hung up
				return errCanceled
			}
			return ss.writeMessage(bw, &p, r)
		})
		if err != nil {
			bw.Flush()
			var ie *imap.Error
			if errors.As(err, &ie) {
				return err
			}
			return ss.internalError(err)
		}
	}
	return bw.Flush()
}

// fetchPlan is what one FETCH reads and writes for every message.
type fetchPlan struct {
	opts  *imap.FetchOptions
	wi    writerInfo
	flags map[uint32]archive.Flags // when FLAGS is fetched
	want  archive.RowFields        // index fields to read
	// needRaw: sections are fetched, from the message's bytes;
	// headerOnly: only its header is needed (want.Headers: the index
	// has every field asked for, no pack read at all).
	needRaw, headerOnly bool
	line                []byte // the response being built
}

// fetchFlags reads the flags of spans when FLAGS is fetched or a BODY[...]
// or BINARY[...] without PEEK sets \Seen; setting it also makes the
// response carry FLAGS.
func (ss *session) fetchFlags(spans []span, options *imap.FetchOptions) (map[uint32]archive.Flags, error) {
	setSeen := false
	if !ss.readOnly && !ss.anonymous {
		for _, bs := range options.BodySection {
			setSeen = setSeen || !bs.Peek
		}
		for _, bs := range options.BinarySection {
			setSeen = setSeen || !bs.Peek
		}
	}
	if !options.Flags && !setSeen {
		return nil, nil
	}
	flags, err := ss.flagsIn(spans)
	if err != nil {
		return nil, err
	}
	if setSeen {
		if err := ss.markSeen(spans, flags); err != nil {
			return nil, err
		}
		options.Flags = true
	}
	return flags, nil
}

// planFetch decides what the items need. Header-only fetches (a client's
// index view) need not inflate bodies, and when they name only fields the
// index keeps, need not read the pack at all.
func planFetch(options *imap.FetchOptions, wi writerInfo) fetchPlan {
	p := fetchPlan{opts: options, wi: wi}
	p.needRaw = len(options.BodySection) > 0 || len(options.BinarySection) > 0 || len(options.BinarySectionSize) > 0
	p.headerOnly = len(options.BinarySection) == 0 && len(options.BinarySectionSize) == 0
	cachedOnly := p.headerOnly
	for _, bs := range options.BodySection {
		p.headerOnly = p.headerOnly && len(bs.Part) == 0 && bs.Specifier == imap.PartSpecifierHeader
		cachedOnly = cachedOnly && p.headerOnly && len(bs.HeaderFields) > 0
		for _, f := range bs.HeaderFields {
			cachedOnly = cachedOnly && archive.CachedHeader(f)
		}
	}
	p.want = archive.RowFields{Envelope: options.Envelope, Body: options.BodyStructure != nil, Headers: p.needRaw && cachedOnly}
	return p
}

// fetchWriter returns the session's buffered writer on the connection,
// with a write deadline for the whole response (cleared by Fetch).
func (ss *session) fetchWriter() *bufio.Writer {
	nc := ss.conn.NetConn()
	if ss.bw == nil {
		ss.bw = bufio.NewWriterSize(nc, 64<<10)
	} else {
		ss.bw.Reset(nc)
	}
	nc.SetWriteDeadline(time.Now().Add(fetchWriteTimeout))
	return ss.bw
}

// writeMessage writes the FETCH response of one message (none when the
// client's view does not hold it).
func (ss *session) writeMessage(bw *bufio.Writer, p *fetchPlan, r *archive.Row) error {
	uid := uint32(r.Num)
	seq, ok := ss.v.seq(uid)
	if !ok {
		return nil
	}
	line, err := p.appendItems(p.line[:0], seq, uid, r)
	p.line = line
	if err != nil {
		return err
	}
	if _, err := bw.Write(line); err != nil {
		return err
	}
	if p.needRaw {
		raw, err := ss.readRaw(p, r)
		if err != nil {
			return err
		}
		if err := ss.writeSections(bw, raw, p.opts, p.wi, line[len(line)-1] == '('); err != nil {
			return err
		}
	}
	_, err = bw.WriteString(")\r\n")
	return err
}

// appendItems appends "* seq FETCH (" and the items that come from the
// index: UID, FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE, BODY and
// BODYSTRUCTURE.
func (p *fetchPlan) appendItems(line []byte, seq, uid uint32, r *archive.Row) ([]byte, error) {
	options := p.opts
	line = append(line, "* "...)
	line = strconv.AppendUint(line, uint64(seq), 10)
	line = append(line, " FETCH ("...)
	sep := func() {
		if line[len(line)-1] != '(' {
			line = append(line, ' ')
		}
	}
	if options.UID {
		sep()
		line = append(line, "UID "...)
		line = strconv.AppendUint(line, uint64(uid), 10)
	}
	if options.Flags {
		sep()
		line = appendFlags(append(line, "FLAGS "...), p.flags[uid])
	}
	if options.InternalDate {
		sep()
		line = append(line, "INTERNALDATE \""...)
		line = time.Unix(r.Arrived, 0).UTC().AppendFormat(line, "02-Jan-2006 15:04:05 -0700")
		line = append(line, '"')
	}
	if options.RFC822Size {
		sep()
		line = append(line, "RFC822.SIZE "...)
		line = strconv.AppendInt(line, r.VSize, 10)
	}
	if options.Envelope {
		env, err := message.DecodeEnvelope(r.Envelope)
		if err != nil {
			return line, fmt.Errorf("article %d: %w", uid, err)
		}
		sep()
		line = append(line, "ENVELOPE "...)
		line = append(line, formatEnvelope(env)...)
	}
	if options.BodyStructure != nil {
		b, err := message.DecodeBodyStructure(r.Body)
		if err != nil {
			return line, fmt.Errorf("article %d: %w", uid, err)
		}
		if p.wi.nonExtended {
			sep()
			line = append(line, "BODY "...)
			line = append(line, formatBody(b)...)
		}
		if p.wi.extended {
			sep()
			line = append(line, "BODYSTRUCTURE "...)
			line = append(line, formatBodyStructure(b)...)
		}
	}
	return line, nil
}

// readRaw returns the bytes the sections are cut from: the cached header
// fields, the header alone, or the whole message.
func (ss *session) readRaw(p *fetchPlan, r *archive.Row) ([]byte, error) {
	switch {
	case p.want.Headers:
		return r.Headers, nil
	case p.headerOnly:
		return ss.st.l.ReadHeaderAt(r.Loc)
	default:
		return ss.st.l.ReadAt(r.Loc)
	}
}

// writeSections writes the BODY[...], BINARY[...] and BINARY.SIZE[...]
// items of one message; first says no item precedes them.
func (ss *session) writeSections(bw *bufio.Writer, raw []byte, options *imap.FetchOptions, wi writerInfo, first bool) error {
	sep := func() {
		if !first {
			bw.WriteByte(' ')
		}
		first = false
	}
	var crlf []byte // raw with CRLF line endings, made once
	whole := func() []byte {
		if crlf == nil {
			crlf = toCRLF(raw)
		}
		return crlf
	}
	for _, bs := range options.BodySection {
		var data []byte
		if len(bs.Part) == 0 && bs.Specifier == imap.PartSpecifierNone {
			data = whole()
		} else {
			sec := message.Section{Part: bs.Part, Specifier: string(bs.Specifier)}
			if len(bs.HeaderFields) > 0 {
				sec.Fields = bs.HeaderFields
			} else if len(bs.HeaderFieldsNot) > 0 {
				sec.Fields, sec.Not = bs.HeaderFieldsNot, true
			}
			b, err := message.ExtractSection(raw, sec)
			if err == nil {
				data = toCRLF(b)
			}
		}
		sep()
		if name := wi.obsoleteName(bs); name != "" {
			bw.WriteString(name)
		} else {
			writeSectionName(bw, bs)
		}
		writeLiteral(bw, partial(data, bs.Partial), false)
	}
	for _, bs := range options.BinarySection {
		b, decoded, err := message.BinarySection(raw, bs.Part)
		if errors.Is(err, message.ErrUnknownCTE) {
			return errUnknownCTE
		}
		if !decoded {
			b = toCRLF(b)
		}
		sep()
		bw.WriteString("BINARY[")
		writePart(bw, bs.Part)
		bw.WriteByte(']')
		if bs.Partial != nil {
			fmt.Fprintf(bw, "<%d>", bs.Partial.Offset)
		}
		writeLiteral(bw, partial(b, bs.Partial), true)
	}
	for _, bs := range options.BinarySectionSize {
		b, decoded, err := message.BinarySection(raw, bs.Part)
		if errors.Is(err, message.ErrUnknownCTE) {
			return errUnknownCTE
		}
		n := len(b)
		if !decoded {
			n = crlfLen(b)
		}
		sep()
		bw.WriteString("BINARY.SIZE[")
		writePart(bw, bs.Part)
		fmt.Fprintf(bw, "] %d", n)
	}
	return nil
}

func writeSectionName(bw *bufio.Writer, bs *imap.FetchItemBodySection) {
	bw.WriteString("BODY[")
	writePart(bw, bs.Part)
	if bs.Specifier != imap.PartSpecifierNone {
		if len(bs.Part) > 0 {
			bw.WriteByte('.')
		}
		bw.WriteString(string(bs.Specifier))
		fields := bs.HeaderFields
		if len(fields) > 0 {
			bw.WriteString(".FIELDS")
		} else if len(bs.HeaderFieldsNot) > 0 {
			fields = bs.HeaderFieldsNot
			bw.WriteString(".FIELDS.NOT")
		}
		if len(fields) > 0 {
			bw.WriteString(" (")
			for i, f := range fields {
				if i > 0 {
					bw.WriteByte(' ')
				}
				if isAtom(f) {
					bw.WriteString(f)
				} else {
					bw.WriteString(quoteIMAP(f))
				}
			}
			bw.WriteByte(')')
		}
	}
	bw.WriteByte(']')
	if bs.Partial != nil {
		fmt.Fprintf(bw, "<%d>", bs.Partial.Offset)
	}
}

func writePart(bw *bufio.Writer, part []int) {
	for i, p := range part {
		if i > 0 {
			bw.WriteByte('.')
		}
		bw.WriteString(strconv.Itoa(p))
	}
}

func isAtom(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}

// writeLiteral writes " {n}\r\n" and data (literal8 "~{n}" for BINARY).
func writeLiteral(bw *bufio.Writer, data []byte, literal8 bool) {
	bw.WriteByte(' ')
	if literal8 {
		bw.WriteByte('~')
	}
	bw.WriteByte('{')
	bw.WriteString(strconv.Itoa(len(data)))
	bw.WriteString("}\r\n")
	bw.Write(data)
}

// partial applies a <offset.size> partial fetch.
func partial(b []byte, p *imap.SectionPartial) []byte {
	if p == nil {
		return b
	}
	if p.Offset >= int64(len(b)) {
		return nil
	}
	b = b[p.Offset:]
	if p.Size < int64(len(b)) {
		b = b[:p.Size]
	}
	return b
}

// toCRLF returns b with every bare LF turned into CRLF (b itself when
// there is none): IMAP sends messages with CRLF line endings, and
// RFC822.SIZE counts them.
func toCRLF(b []byte) []byte {
	n := crlfLen(b)
	if n == len(b) {
		return b
	}
	out := make([]byte, 0, n)
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return append(out, b...)
		}
		if i > 0 && b[i-1] == '\r' {
			out = append(out, b[:i+1]...)
		} else {
			out = append(append(out, b[:i]...), '\r', '\n')
		}
		b = b[i+1:]
	}
}

func crlfLen(b []byte) int {
	n := len(b)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			n++
		}
	}
	return n
}

// appendFlags renders a FLAGS list.
func appendFlags(line []byte, f archive.Flags) []byte {
	line = append(line, '(')
	start := len(line)
	add := func(s string) {
		if len(line) > start {
			line = append(line, ' ')
		}
		line = append(line, s...)
	}
	if f.Bits&archive.FlagSeen != 0 {
		add(`\Seen`)
	}
	if f.Bits&archive.FlagAnswered != 0 {
		add(`\Answered`)
	}
	if f.Bits&archive.FlagFlagged != 0 {
		add(`\Flagged`)
	}
	if f.Bits&archive.FlagDraft != 0 {
		add(`\Draft`)
	}
	for _, k := range f.Keywords {
		add(k)
	}
	return append(line, ')')
}
