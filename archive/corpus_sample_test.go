package archive

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"mailswarm/message"
)

// sampleEdge is how many messages a corpus sample keeps from each end:
// more than two import batches of 97 (TestCorpusRoundTrip), so batch
// boundaries are crossed at both ends.
const sampleEdge = 100

// corpusSample picks, by rule and in corpus order, the messages of a
// corpus that stand for all of it (the indexes into msgs):
//
//   - the first and the last sampleEdge messages;
//   - every message whose Message-ID occurs more than once in the corpus
//     (the dedup path: what is dropped and what it repeats);
//   - every message Parse finds odd (Problems) or gives a generated id;
//   - every message whose header block is not valid UTF-8;
//   - every message with a CRLF line ending;
//   - every message with a line mboxrd quotes (starting "From " or
//     ">From ");
//   - the largest 1% (at least one), and the 1% with the most header lines;
//   - the first message of each Content-Type, charset and
//     Content-Transfer-Encoding value the corpus has, in any part.
//
// Of the six shared corpora over 2*sampleEdge messages it keeps 1,393 of
// 6,254 (easy-ham-1 262 of 2,500, spam-2 285 of 1,394, spam-1 226 of 500);
// a smaller corpus is kept whole.
func corpusSample(msgs [][]byte) []int {
	n := len(msgs)
	keep := make([]bool, n)
	for i := range min(sampleEdge, n) {
		keep[i], keep[n-1-i] = true, true
	}
	ids := make([]string, n)
	count := map[string]int{}
	sizes := make([]int, n)
	headers := make([]int, n)
	seen := map[string]bool{}
	for i, m := range msgs {
		p := message.Parse(m)
		ids[i] = p.MessageID
		count[p.MessageID]++
		h := m
		if j := bytes.Index(m, []byte("\n\n")); j >= 0 {
			h = m[:j]
		} else if j := bytes.Index(m, []byte("\r\n\r\n")); j >= 0 {
			h = m[:j]
		}
		sizes[i] = len(m)
		headers[i] = bytes.Count(h, []byte("\n")) + 1
		if len(p.Problems) > 0 || p.GeneratedID || !utf8.Valid(h) ||
			bytes.Contains(m, []byte("\r\n")) ||
			bytes.HasPrefix(bytes.TrimLeft(m, ">"), []byte("From ")) ||
			bytes.Contains(m, []byte("\nFrom ")) || bytes.Contains(m, []byte("\n>From ")) {
			keep[i] = true
		}
		for _, f := range mimeFeatures(m) {
			if !seen[f] {
				seen[f] = true
				keep[i] = true
			}
		}
	}
	for i := range msgs {
		if count[ids[i]] > 1 {
			keep[i] = true
		}
	}
	top := max(1, n/100)
	for _, by := range [][]int{sizes, headers} {
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return by[b] - by[a] })
		for _, i := range order[:min(top, n)] {
			keep[i] = true
		}
	}
	var out []int
	for i, k := range keep {
		if k {
			out = append(out, i)
		}
	}
	return out
}

// raceCorpus returns the corpus file a test imports: under the race
// detector, which makes import, verify and reindex some ten times slower,
// a gzipped mboxrd of corpusSample's messages when that is not the whole
// corpus, else path itself. .ci/run runs the tests that use it at full
// size without -race.
func raceCorpus(t testing.TB, path string) string {
	t.Helper()
	if !raceDetector {
		return path
	}
	in := readAll(t, path)
	idx := corpusSample(in)
	if len(idx) == len(in) {
		return path
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	mw := message.NewMboxWriter(zw)
	want := make([][]byte, len(idx))
	for k, i := range idx {
		want[k] = in[i]
		if err := mw.Write(in[i], ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if !strings.HasSuffix(out, ".gz") {
		out += ".gz"
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// The sample must read back as exactly the messages picked.
	got := readAll(t, out)
	if len(got) != len(want) {
		t.Fatalf("sample of %s reads back %d messages, wrote %d", path, len(got), len(want))
	}
	for k := range want {
		if !bytes.Equal(got[k], want[k]) {
			t.Fatalf("sample of %s: message %d reads back changed", path, idx[k])
		}
	}
	t.Logf("race detector: %d of %d messages (corpusSample)", len(idx), len(in))
	return out
}

// mimeFeatures lists the Content-Type, charset and Content-Transfer-Encoding
// values of every header line of m that names one (in any part), lower case.
func mimeFeatures(m []byte) []string {
	var out []string
	inType := false // in a Content-Type field, its continuation lines too
	for line := range bytes.Lines(m) {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			if !inType {
				continue
			}
		} else {
			inType = false
			name, value, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				continue
			}
			switch strings.ToLower(string(name)) {
			case "content-type":
				inType = true
				if f := bytes.Fields(bytes.SplitN(value, []byte(";"), 2)[0]); len(f) > 0 {
					out = append(out, "type "+strings.ToLower(string(f[0])))
				}
			case "content-transfer-encoding":
				if f := bytes.Fields(value); len(f) > 0 {
					out = append(out, "encoding "+strings.ToLower(string(f[0])))
				}
			}
			if !inType {
				continue
			}
		}
		l := bytes.ToLower(line)
		if _, cs, ok := bytes.Cut(l, []byte("charset=")); ok {
			cs = bytes.TrimLeft(cs, `"`)
			if end := bytes.IndexAny(cs, "\"; \t\r\n"); end >= 0 {
				cs = cs[:end]
			}
			out = append(out, "charset "+string(cs))
		}
	}
	return out
}

// TestCorpusSample picks from a synthetic corpus of 300 messages: the
// ends, and in the middle exactly the odd ones, one per MIME value.
func TestCorpusSample(t *testing.T) {
	// Every message has four header lines but 110 (five) and 180 (53): the
	// 1% (three) with the most are 180, 110 and the first; the largest 1%
	// are 170, 180 and 110.
	msg := func(i int, header, body string) []byte {
		if header == "" {
			header = "Subject: plain\n"
		}
		return fmt.Appendf(nil, "From: a@example.org\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <%03d@example.org>\n%s\n%sbody\n", i, header, body)
	}
	var msgs [][]byte
	for i := range 300 {
		msgs = append(msgs, msg(i, "", ""))
	}
	msgs[110] = msg(110, "Content-Type: text/plain;\n\tcharset=ISO-8859-1; format=flowed\n", "")
	msgs[111] = msg(111, "Content-Type: TEXT/PLAIN; charset=\"iso-8859-1\"\n", "") // seen at 110
	msgs[115] = msg(115, "Content-Transfer-Encoding: base64\n", "")
	msgs[120] = msg(121, "", "") // the same Message-ID as 121
	msgs[130] = []byte("From: a@example.org\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nSubject: no id\n\nbody\n")
	msgs[140] = msg(140, "Subject: caf\xe9\n", "")
	msgs[150] = bytes.ReplaceAll(msg(150, "", ""), []byte("\n"), []byte("\r\n"))
	msgs[160] = msg(160, "", "From here on\n")
	msgs[170] = msg(170, "", strings.Repeat("long body line\n", 1000))
	msgs[180] = msg(180, strings.Repeat("X-Many: header\n", 50), "")
	msgs[190] = []byte("From: a@example.org\nMessage-ID: <190@example.org>\nSubject: no date\n\nbody\n")
	want := []int{110, 115, 120, 121, 130, 140, 150, 160, 170, 180, 190}
	for i := range sampleEdge {
		want = append(want, i, 300-sampleEdge+i)
	}
	slices.Sort(want)
	if got := corpusSample(msgs); !slices.Equal(got, want) {
		t.Errorf("corpusSample = %v,\nwant %v", got, want)
	}
}
