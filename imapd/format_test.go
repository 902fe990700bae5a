package imapd

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mailswarm/archive"
	"mailswarm/internal/peertest"
	"mailswarm/message"
)

var update = flag.Bool("update", false, "rewrite testdata/format/*.golden from the formatters' output")

// messageTestdata is package message's testdata: the messages whose
// parse it tests are the ones whose wire form is tested here.
var messageTestdata = filepath.Join("..", "message", "testdata")

// readMessageCase returns message's parse case name
// (message/testdata/cases/NAME.eml, see message.TestParseCaseFiles).
func readMessageCase(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(messageTestdata, "cases", name+".eml"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFormatGolden pins ENVELOPE and BODYSTRUCTURE of message's golden
// messages (message/testdata/parse/*.eml) in testdata/format/*.golden.
func TestFormatGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(messageTestdata, "parse", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no messages in %s: %v", filepath.Join(messageTestdata, "parse"), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p := message.Parse(raw)
			env, bs := formatEnvelope(&p.Envelope), formatBodyStructure(&p.Body)
			for _, s := range []string{env, bs, formatBody(&p.Body)} {
				if err := checkIMAPSyntax(s); err != nil {
					t.Errorf("syntax: %v: %s", err, s)
				}
			}
			got := fmt.Sprintf("ENVELOPE %s\nBODYSTRUCTURE %s\n", env, bs)
			golden := filepath.Join("testdata", "format", strings.TrimSuffix(filepath.Base(f), ".eml")+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n%s", f, golden, got)
			}
			q := message.Parse(bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n")))
			if formatBodyStructure(&q.Body) != bs || formatEnvelope(&q.Envelope) != env {
				t.Errorf("CRLF copy differs")
			}
		})
	}
}

// TestFormatCases checks the wire form of message's parse cases where it
// is not just the fields written out: defaults, groups, filled-in parts
// of broken addresses, RFC 2231 parameters. Each is what Dovecot sends.
func TestFormatCases(t *testing.T) {
	body := func(p *message.Parsed) string { return formatBodyStructure(&p.Body) }
	for _, c := range []struct {
		name   string // message/testdata/cases/NAME.eml
		format func(*message.Parsed) string
		want   string
	}{
		{"simple", body, `("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 11 1 NIL NIL NIL NIL)`},
		{"unknown-charset-body", body, `("text" "plain" ("charset" "x-no-such") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)`},
		{"bad-addresses", func(p *message.Parsed) string { return formatEnvelope(&message.Envelope{To: p.Envelope.To}) },
			`(NIL NIL NIL NIL NIL (("Doe, Jane" NIL "jane" "x.org")("Bob Y" NIL "bob" "y.org")(NIL "@route,@r2" "carol" "z.org")(NIL NIL "justlocal" "MISSING_DOMAIN")) NIL NIL NIL NIL)`},
		{"groups", func(p *message.Parsed) string { return formatEnvelope(&message.Envelope{Cc: p.Envelope.Cc}) },
			`(NIL NIL NIL NIL NIL NIL ((NIL NIL "friends" NIL)(NIL NIL "a" "x.org")("B" NIL "b" "x.org")(NIL NIL NIL NIL)(NIL NIL "c" "y.org")) NIL NIL NIL)`},
		// Dovecot: a multipart without parts has one empty text/plain part
		{"multipart-without-boundary", body, `(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" NIL NIL NIL NIL)`},
		{"multipart-boundary-never-seen", body, `(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL) "mixed" ("boundary" "zzz") NIL NIL NIL)`},
		{"multipart", body, `(("text" "plain" ("charset" "utf-8") NIL NIL "base64" 8 0 NIL NIL NIL NIL)` +
			`("application" "pdf" ("name" "x.pdf") "<cid@x>" NIL "7bit" 4 NIL ("attachment" ("filename*" "utf-8''%E2%82%AC.pdf")) ("en" "fr") NIL)` +
			` "mixed" ("boundary" "b1" "foo" "bar") NIL NIL NIL)`},
	} {
		p := message.Parse(readMessageCase(t, c.name))
		if got := c.format(p); got != c.want {
			t.Errorf("%s: got\n%s\nwant\n%s", c.name, got, c.want)
		}
	}
}

// TestFormatCorpora checks that ENVELOPE, BODYSTRUCTURE and BODY of every
// corpus message are well-formed IMAP.
func TestFormatCorpora(t *testing.T) {
	n := 0
	for _, path := range peertest.Corpora(t) {
		f, err := archive.OpenMaybeGzip(path)
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		err = message.ReadMbox(f, message.MboxRD, func(raw []byte) error {
			p := message.Parse(raw)
			for _, s := range []string{formatEnvelope(&p.Envelope), formatBodyStructure(&p.Body), formatBody(&p.Body)} {
				if err := checkIMAPSyntax(s); err != nil {
					t.Errorf("%s #%d: %v: %s", path, i, err, s)
				}
			}
			i++
			return nil
		})
		f.Close()
		if err != nil {
			t.Fatal(path, err)
		}
		n += i
	}
	t.Logf("%d messages", n)
}

// FuzzFormat: the wire forms of whatever message.Parse makes of any bytes
// are well-formed IMAP.
func FuzzFormat(f *testing.F) {
	for _, dir := range []string{"cases", "parse"} {
		files, _ := filepath.Glob(filepath.Join(messageTestdata, dir, "*.eml"))
		for _, name := range files {
			if b, err := os.ReadFile(name); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		p := message.Parse(raw)
		for _, s := range []string{formatEnvelope(&p.Envelope), formatBodyStructure(&p.Body), formatBody(&p.Body)} {
			if err := checkIMAPSyntax(s); err != nil {
				t.Fatalf("%v: %s", err, s)
			}
		}
	})
}

func TestQuoteIMAP(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{`a "q" \ b`, `"a \"q\" \\ b"`},
		{"caf\xc3\xa9", "{5}\r\ncaf\xc3\xa9"},
		{"two\r\nlines", "{10}\r\ntwo\r\nlines"},
		{"nul\x00", "{4}\r\nnul\x00"},
	} {
		if got := quoteIMAP(c.in); got != c.want {
			t.Errorf("quoteIMAP(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// checkIMAPSyntax checks that s is one balanced parenthesised IMAP list of
// NIL, numbers, quoted strings and literals.
func checkIMAPSyntax(s string) error {
	depth := 0
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			if depth < 0 {
				return fmt.Errorf("unbalanced at %d", i)
			}
			i++
			if depth == 0 && i != len(s) {
				return fmt.Errorf("trailing data at %d", i)
			}
		case c == ' ':
			i++
		case c == '"':
			i++
			for i < len(s) && s[i] != '"' {
				if s[i] == '\\' {
					i++
				}
				if i < len(s) && (s[i] == '\r' || s[i] == '\n' || s[i] >= 0x80) {
					return fmt.Errorf("bad byte in quoted string at %d", i)
				}
				i++
			}
			if i >= len(s) {
				return fmt.Errorf("unterminated string")
			}
			i++
		case c == '{':
			j := strings.Index(s[i:], "}\r\n")
			if j < 0 {
				return fmt.Errorf("bad literal at %d", i)
			}
			n, err := strconv.Atoi(s[i+1 : i+j])
			if err != nil || i+j+3+n > len(s) {
				return fmt.Errorf("bad literal length at %d", i)
			}
			i += j + 3 + n
		case strings.HasPrefix(s[i:], "NIL"):
			i += 3
		case c >= '0' && c <= '9':
			for i < len(s) && s[i] >= '0' && s[i] <= '9' {
				i++
			}
		default:
			return fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	if depth != 0 {
		return fmt.Errorf("unbalanced")
	}
	return nil
}
