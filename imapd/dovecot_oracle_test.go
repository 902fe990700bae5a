package imapd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"mailswarm/archive"
	"mailswarm/internal/peertest"
	"mailswarm/message"
)

// TestDovecotOracle loads every corpus into a private Dovecot and
// compares, message by message, Dovecot's ENVELOPE, BODYSTRUCTURE and
// BODY with what formatEnvelope, formatBodyStructure and formatBody send
// for message.Parse's values, both parsed with
// peertest's IMAP parser and rendered canonically (so quoted string or
// literal does not matter). The differences RFC 3501 allows are
// normalised by the rules in dovecotRules, each listed in
// docs/IMAP-DOVECOT.md; everything else is reported.
func TestDovecotOracle(t *testing.T) {
	peertest.Need(t, "dovecot")
	corpora := peertest.Corpora(t)
	counts := &ruleCounts{n: map[string]int{}}
	t.Run("corpus", func(t *testing.T) {
		t.Run("fixtures", func(t *testing.T) {
			t.Parallel()
			dovecotCompare(t, "fixtures", oracleFixtures(t), counts)
		})
		for _, path := range corpora {
			rel := filepath.Base(filepath.Dir(path)) + "/" + filepath.Base(path)
			t.Run(filepath.Base(path), func(t *testing.T) {
				t.Parallel()
				dovecotCompare(t, rel, oracleCorpus(t, path), counts)
			})
		}
	})
	var names []string
	for k := range counts.n {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		t.Logf("rule %s: %d messages", k, counts.n[k])
	}
	t.Logf("%d messages compared", counts.msgs)
}

// oracleCases are small messages for the corners the corpora found,
// kept so that a change that breaks one shows here by name.
var oracleCases = []string{
	// a delimiter line ending an attached message (message-parser.c)
	"Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n\nSubject: in\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\nx\n--i--\n--o--\n",
	"Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n\nSubject: in\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\nx\n--i--\nepilogue\n--o--\n",
	"Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n\nSubject: in\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\nx\n--i\n--o--\n",
	"Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: message/rfc822\n\nSubject: in\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\nx\n--i--\n\n--o--\n",
	"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: multipart/alternative; boundary=i\r\n\r\n--i\r\n\r\nx\r\n--i--\r\n--m--\r\n--o--\r\n",
	"Content-Type: message/rfc822\n\nSubject: in\nContent-Type: multipart/alternative; boundary=i\n\n--i\n\nx\n--i--",
	// envelope strings: blanks, empty fields, folding, NUL
	"Subject: \t two  words\t\n\tfolded \nDate:  Mon, 1 Jan 2024 00:00:00 +0000  \nMessage-ID:\n <folded@x>\nIn-Reply-To:\n\nbody\n",
	"Subject:\nDate: \nMessage-ID:   \nFrom: \" \" <a@b.c>, (comment) d@e.f, \"q\\\"uote\" <g@h>\nTo: a\x00b@c.d\n\nx\n",
	"From: one@x.org\nFrom: two@x.org\nTo: g: a@b.c, d@e.f;, (c) <x@y>\nCc: ,,\nBcc: <>\nReply-To: @route:user@host\nSender: broken <no-at>\n\nx\n",
	// Content-* fields
	"Content-Transfer-Encoding: 8BIT\nContent-ID: <id>\n\nnot MIME: ignored\n",
	"MIME-Version: 1.0\nContent-Type: Text/Plain; Charset=ISO-8859-1; name=two words.txt\nContent-Transfer-Encoding: QUOTED-printable junk\nContent-Description:\nContent-Language: en, de-CH (swiss)\nContent-Disposition: ; x=y\n\nx\n",
	"MIME-Version: 1.0\nContent-Type: application/x; b*1=two; a=1; b*0=one; c*0*=utf-8''%41; c*1=%; d*1=gap\n\nx\n",
	"MIME-Version: 1.0\nContent-Type: multipart/mixed\n\n--x\n\nno boundary\n--x--\n",
	"MIME-Version: 1.0\nContent-Type: text\n\nno subtype\n",
	"MIME-Version: 1.0\nContent-Type: ;broken\n\nno type\n",
	"MIME-Version: 1.0\nContent-Type: MESSAGE/RFC822\n\n",
}

// oracleFixtures returns the messages of package message's unit tests,
// so that their expectations are Dovecot's too: its parse cases
// (message/testdata/cases/*.eml, kept equal to message's parseCases by
// its TestParseCaseFiles) and goldens (message/testdata/parse/*.eml),
// each in name order, then oracleCases (the message index in a report
// counts from 0 in this order).
func oracleFixtures(t *testing.T) [][]byte {
	var msgs [][]byte
	var files []string
	for _, dir := range []string{"cases", "parse"} {
		f, err := filepath.Glob(filepath.Join(messageTestdata, dir, "*.eml"))
		if err != nil || len(f) == 0 {
			t.Fatalf("no fixtures in %s: %v", filepath.Join(messageTestdata, dir), err)
		}
		sort.Strings(f)
		files = append(files, f...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, b)
	}
	for _, m := range oracleCases {
		msgs = append(msgs, []byte(m))
	}
	return msgs
}

// oracleCorpus returns every message of the corpus file at path.
func oracleCorpus(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := archive.OpenMaybeGzip(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	if err := message.ReadMbox(f, message.MboxRD, func(m []byte) error {
		out = append(out, bytes.Clone(m))
		return nil
	}); err != nil {
		t.Fatal(path, err)
	}
	return out
}

type ruleCounts struct {
	mu   sync.Mutex
	n    map[string]int // rule name → messages it changed
	msgs int
}

// add counts one message for each rule in rules, and msgs messages
// compared.
func (c *ruleCounts) add(rules map[string]bool, msgs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for r := range rules {
		c.n[r]++
	}
	c.msgs += msgs
}

// oraclePasses are the two FETCHes made on each mailbox: the first makes
// Dovecot parse every message, the second answers from Dovecot's cache,
// which it fills during the first (and which answers some messages
// differently, see rule plain-7bit-ascii).
var oraclePasses = []string{"parsed", "cached"}

func dovecotCompare(t *testing.T, rel string, msgs [][]byte, counts *ruleCounts) {
	port := peertest.DovecotStart(t, msgs)
	c := peertest.IMAPDial(t, fmt.Sprintf("127.0.0.1:%d", port))
	c.Login(peertest.DovecotUser, peertest.DovecotPass)
	if _, status, err := c.Cmd("SELECT INBOX"); err != nil {
		t.Fatalf("%v (%s)", err, status)
	}
	type ours struct{ env, bs, body peertest.IMAPValue }
	mine := make([]*ours, len(msgs))
	applied := make([]map[string]bool, len(msgs))
	var diffs []string
	for _, pass := range oraclePasses {
		resps, _, err := c.Cmd("FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)")
		if err != nil {
			t.Fatal(err)
		}
		seen := make([]bool, len(msgs))
		for _, r := range resps {
			seq, items, ok := peertest.FetchResp(r)
			if !ok {
				continue
			}
			if seq < 1 || seq > uint64(len(msgs)) || seen[seq-1] {
				t.Errorf("%s: unexpected FETCH response for message %d", rel, seq)
				continue
			}
			i := seq - 1
			seen[i] = true
			if mine[i] == nil {
				p := message.Parse(msgs[i])
				o := &ours{}
				for _, f := range []struct {
					v    *peertest.IMAPValue
					wire string
				}{{&o.env, formatEnvelope(&p.Envelope)}, {&o.bs, formatBodyStructure(&p.Body)}, {&o.body, formatBody(&p.Body)}} {
					v, rest, err := peertest.ParseIMAPValue([]byte(f.wire))
					if err != nil || len(rest) != 0 {
						t.Fatalf("%s #%d: ours does not parse (%v, rest %q): %q", rel, i, err, rest, f.wire)
					}
					*f.v = v
				}
				mine[i], applied[i] = o, map[string]bool{}
			}
			for _, f := range []struct {
				name string
				ours peertest.IMAPValue
			}{{"ENVELOPE", mine[i].env}, {"BODYSTRUCTURE", mine[i].bs}, {"BODY", mine[i].body}} {
				dv, ok := items[f.name]
				if !ok {
					diffs = append(diffs, fmt.Sprintf("%s #%d %s (%s): Dovecot sent none", rel, i, f.name, pass))
					continue
				}
				dc, oc := normalise(f.name, dv, f.ours, applied[i])
				if dc != oc {
					diffs = append(diffs, fmt.Sprintf("%s #%d %s (%s):\n  dovecot %s\n  ours    %s", rel, i, f.name, pass, dc, oc))
				}
			}
		}
		for i, s := range seen {
			if !s {
				t.Errorf("%s #%d: Dovecot sent no FETCH response (%s)", rel, i, pass)
			}
		}
	}
	for _, a := range applied {
		counts.add(a, 0)
	}
	counts.add(nil, len(msgs))
	if len(diffs) > 0 {
		t.Errorf("%d differences from Dovecot in %s:\n%s", len(diffs), rel, strings.Join(diffs, "\n"))
	}
}

// oracleRule rewrites one narrow difference that RFC 3501 allows between
// Dovecot's value d and ours o of one field; it reports whether it
// changed anything. Every rule is listed in docs/IMAP-DOVECOT.md with its
// justification and the number of messages it changes.
type oracleRule struct {
	name  string
	field string // "ENVELOPE", "BODYSTRUCTURE" or "BODY"
	apply func(d, o *peertest.IMAPValue) bool
}

var dovecotRules = []oracleRule{
	{"plain-7bit-ascii", "BODYSTRUCTURE", rulePlain7bitASCII},
	{"plain-7bit-ascii", "BODY", rulePlain7bitASCII},
}

// plain7bit is what Dovecot sends from its cache for a message that is a
// single text/plain part, charset us-ascii (or none), 7bit (or none), no
// other Content-* field (index-mail.c MAIL_CACHE_FLAG_TEXT_PLAIN_7BIT_ASCII,
// IMAP_BODY_PLAIN_7BIT_ASCII), whatever case the header used.
var plain7bit = []string{"text", "plain", "charset", "us-ascii", "7bit"}

// rulePlain7bitASCII: when Dovecot sends its constant
// ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" size lines NIL NIL
// NIL NIL) and ours differs only in the case of the type, subtype,
// parameter name, charset value and encoding, ours is lower-cased there.
// These are case-insensitive (RFC 2045 sections 5.1 and 6.1, RFC 2046
// section 4.1.2), and Dovecot itself sends them as written when it
// parses the message and lower-cased when it answers from its cache.
func rulePlain7bitASCII(d, o *peertest.IMAPValue) bool {
	l := func(v *peertest.IMAPValue) (typ, sub, pn, pv, enc *peertest.IMAPValue, ok bool) {
		// 12 elements as BODYSTRUCTURE, 8 as BODY
		if v.Kind != peertest.IMAPList || (len(v.List) != 12 && len(v.List) != 8) || v.List[2].Kind != peertest.IMAPList || len(v.List[2].List) != 2 {
			return nil, nil, nil, nil, nil, false
		}
		for _, k := range []int{0, 1, 5} {
			if v.List[k].Kind != peertest.IMAPString {
				return nil, nil, nil, nil, nil, false
			}
		}
		return &v.List[0], &v.List[1], &v.List[2].List[0], &v.List[2].List[1], &v.List[5], true
	}
	dt, ds, dn, dv, de, ok := l(d)
	if !ok {
		return false
	}
	for i, x := range []*peertest.IMAPValue{dt, ds, dn, dv, de} {
		if x.Str != plain7bit[i] {
			return false
		}
	}
	ot, osub, on, ov, oe, ok := l(o)
	if !ok {
		return false
	}
	changed := false
	for i, x := range []*peertest.IMAPValue{ot, osub, on, ov, oe} {
		if !strings.EqualFold(x.Str, plain7bit[i]) {
			return false
		}
	}
	// copy before changing: o's lists may be shared with an earlier pass
	c := *o
	c.List = append([]peertest.IMAPValue(nil), o.List...)
	c.List[2].List = append([]peertest.IMAPValue(nil), o.List[2].List...)
	for i, k := range []*peertest.IMAPValue{&c.List[0], &c.List[1], &c.List[2].List[0], &c.List[2].List[1], &c.List[5]} {
		if k.Str != plain7bit[i] {
			k.Str = plain7bit[i]
			changed = true
		}
	}
	if changed {
		*o = c
	}
	return changed
}

// normalise applies the rules to Dovecot's value d and ours o of field
// and returns both rendered canonically; it records the rules that
// changed something in applied.
func normalise(field string, d, o peertest.IMAPValue, applied map[string]bool) (string, string) {
	for _, r := range dovecotRules {
		if r.field == field && r.apply(&d, &o) {
			applied[r.name] = true
		}
	}
	return peertest.Canon(d), peertest.Canon(o)
}
