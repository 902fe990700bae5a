package archive

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"mailswarm/internal/peertest"
)

// TestDovecotOracle loads every corpus into a private Dovecot and
// compares, message by message, Dovecot's ENVELOPE and BODYSTRUCTURE with
// what FormatEnvelope and FormatBodyStructure send, both parsed with
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
				dovecotCompare(t, rel, readAll(t, path), counts)
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

// oracleFixtures returns the messages of the unit tests, so that their
// expectations are Dovecot's too: parseCases, testdata/parse/*.eml in
// name order, then oracleCases (the message index in a report counts
// from 0 in this order).
func oracleFixtures(t *testing.T) [][]byte {
	var msgs [][]byte
	for _, c := range parseCases {
		msgs = append(msgs, c.raw)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "parse", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
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

type ruleCounts struct {
	mu   sync.Mutex
	n    map[string]int // rule name → messages it changed
	msgs int
}

func (c *ruleCounts) add(rules map[string]bool, msgs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for r := range rules {
		c.n[r]++
	}
	c.msgs += msgs
}

func dovecotCompare(t *testing.T, rel string, msgs [][]byte, counts *ruleCounts) {
	port := peertest.DovecotStart(t, msgs)
	c := peertest.IMAPDial(t, fmt.Sprintf("127.0.0.1:%d", port))
	c.Login(peertest.DovecotUser, peertest.DovecotPass)
	if _, status, err := c.Cmd("SELECT INBOX"); err != nil {
		t.Fatalf("%v (%s)", err, status)
	}
	resps, _, err := c.Cmd("FETCH 1:* (ENVELOPE BODYSTRUCTURE)")
	if err != nil {
		t.Fatal(err)
	}
	seen := make([]bool, len(msgs))
	var diffs []string
	for _, r := range resps {
		seq, items, ok := peertest.FetchResp(r)
		if !ok {
			continue
		}
		if seq < 1 || seq > uint64(len(msgs)) || seen[seq-1] {
			t.Errorf("%s: unexpected FETCH response for message %d", rel, seq)
			continue
		}
		seen[seq-1] = true
		p := Parse(msgs[seq-1])
		applied := map[string]bool{}
		for _, f := range []struct {
			name string
			ours string
		}{
			{"ENVELOPE", FormatEnvelope(&p.Envelope)},
			{"BODYSTRUCTURE", FormatBodyStructure(&p.Body)},
		} {
			dv, ok := items[f.name]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s #%d %s: Dovecot sent none", rel, seq-1, f.name))
				continue
			}
			ov, rest, err := peertest.ParseIMAPValue([]byte(f.ours))
			if err != nil || len(rest) != 0 {
				diffs = append(diffs, fmt.Sprintf("%s #%d %s: ours does not parse (%v, rest %q): %q", rel, seq-1, f.name, err, rest, f.ours))
				continue
			}
			dc, oc := normalise(f.name, dv, ov, msgs[seq-1], applied)
			if dc != oc {
				diffs = append(diffs, fmt.Sprintf("%s #%d %s:\n  dovecot %s\n  ours    %s", rel, seq-1, f.name, dc, oc))
			}
		}
		counts.add(applied, 1)
	}
	for i, s := range seen {
		if !s {
			t.Errorf("%s #%d: Dovecot sent no FETCH response", rel, i)
		}
	}
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
	field string // "ENVELOPE" or "BODYSTRUCTURE"
	apply func(d, o *peertest.IMAPValue, raw []byte) bool
}

// dovecotRules is empty: on the corpora and fixtures our output equals
// Dovecot's (see docs/IMAP-DOVECOT.md).
var dovecotRules []oracleRule

// normalise applies the rules to Dovecot's value d and ours o of field
// and returns both rendered canonically; it records the rules that
// changed something in applied.
func normalise(field string, d, o peertest.IMAPValue, raw []byte, applied map[string]bool) (string, string) {
	for _, r := range dovecotRules {
		if r.field == field && r.apply(&d, &o, raw) {
			applied[r.name] = true
		}
	}
	return peertest.Canon(d), peertest.Canon(o)
}
