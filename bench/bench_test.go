package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

func TestParseMaxRSS(t *testing.T) {
	out := "\tCommand being timed: \"perl x\"\n\tUser time (seconds): 0.30\n" +
		"\tMaximum resident set size (kbytes): 36220\n\tExit status: 0\n"
	if got := parseMaxRSS([]byte(out)); got != 36220 {
		t.Errorf("parseMaxRSS = %d, want 36220", got)
	}
	if got := parseMaxRSS([]byte("nothing")); got != -1 {
		t.Errorf("parseMaxRSS(nothing) = %d, want -1", got)
	}
}

func TestParseSummary(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"progress...\nimported 2500, duplicates 0, unparseable 0\n", 2500, true},
		{"imported 1, duplicates 0, unparseable 0\nimported 52, duplicates 1, unparseable 0", 52, true},
		{"error: no such list\n", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSummary([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseSummary(%q) = %d, %v, want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestStatsMessages(t *testing.T) {
	js := `{"lists":[{"name":"other","messages":3},{"name":"bench","messages":9,"epochs":1,"last_article":9,"bytes":100}]}`
	if n, ok := statsMessages([]byte(js), "bench"); !ok || n != 9 {
		t.Errorf("statsMessages = %d, %v, want 9, true", n, ok)
	}
	if _, ok := statsMessages([]byte(js), "nope"); ok {
		t.Errorf("statsMessages(nope) ok, want not found")
	}
}

func TestCountMbox(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.mbox")
	body := "From a Thu Jan  1 00:00:00 1970\nSubject: 1\n\n>From quoted\nFrom not a separator\n\n" +
		"From b Thu Jan  1 00:00:00 1970\nSubject: 2\n\n" + strings.Repeat("x", 3<<20) + "\n\n"
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if n, err := countMbox(p); err != nil || n != 2 {
		t.Errorf("countMbox = %d, %v, want 2", n, err)
	}
}

func TestRenderImportTable(t *testing.T) {
	rows := []importRow{{
		Input: input{Label: "x.mbox", Count: 100},
		Results: []result{
			{Impl: "mailswarm", Kept: 100, Wall: time.Second, RSSKiB: 2048, DiskKiB: 500},
			{Impl: "public-inbox", Kept: 100, Wall: 4 * time.Second, RSSKiB: -1, DiskKiB: 1000},
		},
	}, {
		Input:   input{Label: "y.mbox", Count: 5},
		Results: []result{{Impl: "mailswarm", Err: errors.New("boom")}},
	}}
	got := renderImportTable(rows)
	for _, want := range []string{
		"| x.mbox | 100 | mailswarm | 100 | 1.0 | 100 | 2 | 5.0 | 4.00× |",
		"| x.mbox | 100 | public-inbox | 100 | 4.0 | 25 | n/a | 10.0 |  |",
		"| y.mbox | 5 | mailswarm | failed |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}

func TestMissingBinaryIsClear(t *testing.T) {
	_, err := mailswarmBinary(t.Context(), filepath.Join(t.TempDir(), "no-such-mailswarm"), ".", t.TempDir(), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "mailswarm binary") {
		t.Errorf("mailswarmBinary(missing) = %v, want a mailswarm binary error", err)
	}
}

// TestPublicInboxHalf runs the public-inbox side of the import benchmark
// on the small notmuch corpus.
func TestPublicInboxHalf(t *testing.T) {
	peertest.Need(t, "public-inbox", "git", "sqlite3")
	mbox := peertest.Gunzip(t, peertest.Corpus(t, "notmuch-test/default.mboxrd.gz"))
	root, err := peertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	r := runPI(t.Context(), filepath.Join(root, piImportScript), mbox, t.TempDir(), []string{"--no-fsync"})
	if r.Err != nil {
		t.Fatalf("runPI: %v", r.Err)
	}
	if r.Kept != 52 || r.Wall <= 0 || r.DiskKiB <= 0 {
		t.Errorf("runPI = kept %d, wall %v, disk %d KiB; want 52 kept, wall and disk > 0", r.Kept, r.Wall, r.DiskKiB)
	}
	if gnuTime != "" && r.RSSKiB <= 0 {
		t.Errorf("runPI peak RSS = %d with GNU time present", r.RSSKiB)
	}
}

// TestPrepareInputs generates a small synthetic list and decompresses the
// real corpus, as the default run does.
func TestPrepareInputs(t *testing.T) {
	peertest.Need(t, "python3")
	shared := peertest.SharedDir(t)
	root, err := peertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ins, err := prepareInputs(t.Context(), importConfig{N: 20, Shared: shared}, root, t.TempDir(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 2 || ins[0].Count != 20 || ins[1].Count != 2500 {
		t.Errorf("prepareInputs = %+v, want 20 synthetic and 2500 easy-ham messages", ins)
	}
}

// testBinary builds ./cmd/mailswarm once for the calling test.
func testBinary(t *testing.T) string {
	t.Helper()
	root, err := peertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := mailswarmBinary(t.Context(), "", root, t.TempDir(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
