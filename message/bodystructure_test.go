package message

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/parse/*.golden from the parser's output")

// formatParsed renders what the goldens pin down.
func formatParsed(p *Parsed) string {
	var b strings.Builder
	fmt.Fprintf(&b, "MessageID: %s (generated %v)\n", p.MessageID, p.GeneratedID)
	fmt.Fprintf(&b, "MessageIDs: %q\nInReplyTo: %q\nReferences: %q\n", p.MessageIDs, p.InReplyTo, p.References)
	fmt.Fprintf(&b, "Subject: %q\n", p.Subject)
	fmt.Fprintf(&b, "From: %q <%s>\n", p.From.Name, p.From.String())
	date := "zero"
	if !p.Date.IsZero() {
		date = p.Date.Format(time.RFC3339)
	}
	fmt.Fprintf(&b, "Date: %s\nListID: %q\nSize: %d CRLFSize: %d\n", date, p.ListID, p.Size, p.CRLFSize)
	fmt.Fprintf(&b, "ContentHash: %x\nProblems: %q\n", p.ContentHash, p.Problems)
	fmt.Fprintf(&b, "Envelope: %s\n", dump(p.Envelope))
	fmt.Fprintf(&b, "Body: %s\n", dump(p.Body))
	fmt.Fprintf(&b, "HeaderText:\n%s", p.HeaderText)
	fmt.Fprintf(&b, "Text:\n%s\n", p.Text)
	return b.String()
}

func TestParseGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "parse", "*.eml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no goldens: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p := Parse(raw)
			got := formatParsed(p)
			checkRoundTrip(t, f, p)
			golden := strings.TrimSuffix(f, ".eml") + ".golden"
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
			// the CRLF copy gives the same structure
			q := Parse(toCRLF(raw))
			if !reflect.DeepEqual(q.Body, p.Body) || q.ContentHash != p.ContentHash {
				t.Errorf("CRLF copy differs")
			}
		})
	}
}

func TestSplitMultipart(t *testing.T) {
	for _, c := range []struct {
		body string
		want []string
	}{
		{"pre\n--b\nA\n--b\nB\n--b--\nepi", []string{"A", "B"}},
		{"--b\r\nA\r\n--b--\r\n", []string{"A"}},
		{"--b \t\nA\n--bb\n--b-- trailing\n", []string{"A\n--bb"}},
		{"--b\nA\nno close", []string{"A\nno close"}},
		{"x--b\nA", nil},
		{"--b\n--b\nA\n", []string{"", "A\n"}},
	} {
		var got []string
		for _, p := range splitMultipart([]byte(c.body), "b") {
			got = append(got, string(p))
		}
		if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", c.want) {
			t.Errorf("splitMultipart(%q) = %q, want %q", c.body, got, c.want)
		}
	}
}

func TestParseParams(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`; charset="utf-8"; Format=flowed`, `[["charset" "utf-8"] ["format" "flowed"]]`},
		{`; name="a \"q\" b"; x`, `[["name" "a \"q\" b"]]`},
		{`; filename*1="b.txt"; filename*0="a"`, `[["filename" "ab.txt"]]`},
		{`; title*=us-ascii'en-us'This%20is`, `[["title*" "us-ascii'en-us'This%20is"]]`},
		{`;;; =novalue; a=`, `[["a" ""]]`},
	} {
		if got := fmt.Sprintf("%q", parseParams(c.in)); got != c.want {
			t.Errorf("parseParams(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	if got := paramValue(parseParams(`; filename*0*=utf-8''%E2%82%AC; filename*1=.txt`), "filename"); got != "€.txt" {
		t.Errorf("RFC 2231 filename = %q", got)
	}
}

func TestDecodeGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, {0}, {1}, {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, {1, 5, 'a'},
		bytes.Repeat([]byte{1}, 1000)} {
		if _, err := DecodeEnvelope(b); err == nil && len(b) < 3 {
			t.Errorf("DecodeEnvelope(%x) accepted", b)
		}
		if _, err := DecodeBodyStructure(b); err == nil && len(b) < 3 {
			t.Errorf("DecodeBodyStructure(%x) accepted", b)
		}
	}
}

// BenchmarkBodyStructureCodec encodes and decodes the multipart golden's
// BODYSTRUCTURE and ENVELOPE, as the index does per FETCH.
func BenchmarkBodyStructureCodec(b *testing.B) {
	raw, err := os.ReadFile(filepath.Join("testdata", "parse", "multipart.eml"))
	if err != nil {
		b.Fatal(err)
	}
	p := Parse(raw)
	enc := EncodeBodyStructure(&p.Body)
	b.ReportMetric(float64(len(enc)), "bytes")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeBodyStructure(EncodeBodyStructure(&p.Body)); err != nil {
			b.Fatal(err)
		}
		if _, err := DecodeEnvelope(EncodeEnvelope(&p.Envelope)); err != nil {
			b.Fatal(err)
		}
	}
}
