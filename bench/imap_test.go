package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

func TestParseGenStats(t *testing.T) {
	js := `{"body_token": "quokkaword", "body_token_count": 9, "messages": 1000,
		"subject_token": "xylophonic", "subject_token_count": 4, "threads": 300}`
	g, err := parseGenStats([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	want := genStats{SubjectToken: "xylophonic", BodyToken: "quokkaword", SubjectCount: 4, BodyCount: 9}
	if g != want {
		t.Errorf("parseGenStats = %+v, want %+v", g, want)
	}
	for _, bad := range []string{`{}`, `{"subject_token":"x"}`, `not json`} {
		if _, err := parseGenStats([]byte(bad)); err == nil {
			t.Errorf("parseGenStats(%q) = nil error", bad)
		}
	}
}

func TestPickSearchWords(t *testing.T) {
	var b strings.Builder
	// 300 messages: "widget" in 3 subjects (1% of 300), "gizmos" in 10;
	// "marmalade" in 3 bodies, "sandwich" in 50; header words and words
	// too short never count
	for i := range 300 {
		subj := "Re: hello there"
		if i%100 == 0 {
			subj += " widget"
		}
		if i%30 == 1 {
			subj += " gizmos"
		}
		body := "short words only\n"
		if i%100 == 7 {
			body += "spread the Marmalade\n"
		}
		if i%6 == 0 {
			body += "a sandwich\n"
		}
		// a body line starting "From " is quoted in mboxrd
		b.WriteString("From x@y Mon Jan  1 00:00:00 2024\nFrom: Someone Unusual <x@y>\nSubject: " + subj +
			"\nX-Header: marmalade\n\n" + body + ">From the header\n\n")
	}
	w, err := pickSearchWords(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	want := searchWords{Subject: "widget", SubjectDocs: 3, Body: "marmalade", BodyDocs: 3}
	if w != want {
		t.Errorf("pickSearchWords = %+v, want %+v", w, want)
	}

	w, err = pickSearchWords(strings.NewReader("From x Mon Jan  1 00:00:00 2024\nSubject: lonely\n\nsingle\n"))
	if err != nil || w != (searchWords{}) {
		t.Errorf("pickSearchWords(one message) = %+v, %v; want nothing (a word must be in 2 messages)", w, err)
	}
}

func TestClosestDocs(t *testing.T) {
	counts := map[string]int{"apple": 1, "bread": 5, "crumb": 15, "dough": 15, "earth": 9}
	for _, tc := range []struct {
		target int
		want   string
		n      int
	}{{2, "bread", 5}, {10, "earth", 9}, {12, "crumb", 15}, {100, "crumb", 15}} {
		if w, n := closestDocs(counts, tc.target); w != tc.want || n != tc.n {
			t.Errorf("closestDocs(%d) = %q, %d, want %q, %d", tc.target, w, n, tc.want, tc.n)
		}
	}
	if w, _ := closestDocs(map[string]int{"only": 1}, 2); w != "" {
		t.Errorf("closestDocs(all once) = %q, want none", w)
	}
}

// imapBenchJSON is what imap_bench.py --json writes (abridged).
const imapBenchJSON = `{
 "label": "", "greeting": "* OK [CAPABILITY IMAP4rev1] ready", "cap_pre": "IMAP4REV1",
 "cap_post": "IMAP4REV1", "mailbox": "bench", "login_s": 0.004, "discover_s": 0.0,
 "ops": {
  "select": {"run1": 0.0012, "min": 0.0008, "median": 0.0009, "result": "1000 exists", "all": [0.0012, 0.0008, 0.0009]},
  "fetch_meta": {"run1": 0.05, "min": 0.03, "median": 0.04, "result": "1000 msgs 0.6 MB", "all": [0.05, 0.03, 0.04]},
  "search_body": {"run1": 0.02, "min": 0.01, "median": 0.015, "result": "9 hits", "all": [0.02, 0.01, 0.015]}
 }
}`

func TestParseIMAPReport(t *testing.T) {
	r, err := parseIMAPReport([]byte(imapBenchJSON))
	if err != nil {
		t.Fatal(err)
	}
	if r.Mailbox != "bench" || len(r.Ops) != 3 {
		t.Errorf("parseIMAPReport: mailbox %q, %d ops; want bench, 3", r.Mailbox, len(r.Ops))
	}
	if o := r.Ops["fetch_meta"]; o.Run1 != 0.05 || o.Median != 0.04 || o.Result != "1000 msgs 0.6 MB" || len(o.All) != 3 {
		t.Errorf("fetch_meta = %+v", o)
	}
	if n := selectExists(r); n != 1000 {
		t.Errorf("selectExists = %d, want 1000", n)
	}
	if n := selectExists(imapReport{Ops: map[string]imapOp{"select": {Result: "NO [NONEXISTENT]"}}}); n != -1 {
		t.Errorf("selectExists(NO) = %d, want -1", n)
	}
	for _, bad := range []string{`{"ops": {}}`, `[]`, ``} {
		if _, err := parseIMAPReport([]byte(bad)); err == nil {
			t.Errorf("parseIMAPReport(%q) = nil error", bad)
		}
	}
}

func TestSummaryMessages(t *testing.T) {
	sum := "format=mdbox preindex=0\nmessages=10000\nimport_s=3.10 index_s=0.20 total_s=3.30\n"
	if n := summaryMessages([]byte(sum)); n != 10000 {
		t.Errorf("summaryMessages = %d, want 10000", n)
	}
	if n := summaryMessages([]byte("format=mdbox\nmessages=\n")); n != -1 {
		t.Errorf("summaryMessages(empty count) = %d, want -1", n)
	}
}

func TestParseProcStatus(t *testing.T) {
	st := "Name:\timap\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nPid:\t4242\nPPid:\t4200\n" +
		"VmPeak:\t   12000 kB\nVmHWM:\t    6620 kB\nVmRSS:\t    6000 kB\n"
	name, ppid, hwm, ok := parseProcStatus([]byte(st))
	if name != "imap" || ppid != 4200 || hwm != 6620 || !ok {
		t.Errorf("parseProcStatus = %q, %d, %d, %v; want imap, 4200, 6620, true", name, ppid, hwm, ok)
	}
	if _, _, _, ok := parseProcStatus([]byte("Name:\tkthreadd\nPPid:\t0\n")); ok {
		t.Error("parseProcStatus without VmHWM: ok")
	}
	// our own process has a status file with a VmHWM
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if _, ppid, hwm, ok := parseProcStatus(b); !ok || hwm <= 0 || ppid != os.Getppid() {
		t.Errorf("parseProcStatus(/proc/self/status) = ppid %d, VmHWM %d, %v; want ppid %d, VmHWM > 0", ppid, hwm, ok, os.Getppid())
	}
}

func TestHWMSampler(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	h := startHWMSampler(func() []int { return []int{os.Getpid()} }, time.Millisecond)
	time.Sleep(10 * time.Millisecond)
	peak, n := h.stop()
	if n != 1 || peak <= 0 {
		t.Errorf("sampler of this process = %d KiB over %d processes, want > 0 over 1", peak, n)
	}
}

func TestChildProcs(t *testing.T) {
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pids := childProcs(os.Getpid(), "sleep")
	if !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("childProcs(self, sleep) = %v, want it to hold %d", pids, cmd.Process.Pid)
	}
	if pids := childProcs(os.Getpid(), "no-such-name"); len(pids) != 0 {
		t.Errorf("childProcs(self, no-such-name) = %v", pids)
	}
}

func TestFmtMS(t *testing.T) {
	for _, tc := range []struct {
		sec  float64
		want string
	}{{0.00046, "0.46"}, {0.0147, "14.7"}, {0.131, "131"}, {2.5, "2500"}} {
		if got := fmtMS(tc.sec); got != tc.want {
			t.Errorf("fmtMS(%v) = %q, want %q", tc.sec, got, tc.want)
		}
	}
}

func TestRenderIMAPTable(t *testing.T) {
	ops := func(scale float64) map[string]imapOp {
		m := make(map[string]imapOp)
		for _, op := range imapOps {
			m[op] = imapOp{Run1: 0.02 * scale, Median: 0.01 * scale, Result: "1 hits"}
		}
		m["select"] = imapOp{Run1: 0.001, Median: 0.001, Result: "100 exists"}
		return m
	}
	sides := []imapSide{
		{Impl: "ours", Mailbox: "bench", Loaded: 100, Exists: 100, RSSKiB: 20480, Ops: ops(2)},
		{Impl: "Dovecot mdbox", Mailbox: "INBOX", Loaded: 100, Exists: 100, RSSKiB: 6144, Ops: ops(1),
			RSSNote: "max VmHWM of 4 imap processes"},
		{Impl: "public-inbox-imapd", Err: errors.New("boom"), Loaded: -1, Exists: -1, RSSKiB: -1},
	}
	in := imapInput{Label: "x.mbox", Count: 100, SubjectWord: "widget", BodyWord: "gizmo"}
	got := renderIMAPTable(in, 3, sides)
	for _, want := range []string{
		"| operation (ms, first / median) | ours | Dovecot mdbox | public-inbox-imapd | ours÷Dovecot |",
		"| fetch_meta | 40.0 / 20.0 | 20.0 / 10.0 | failed | 2.00 / 2.00 |",
		"| select | 1.00 / 1.00 | 1.00 / 1.00 | failed | 1.00 / 1.00 |",
		"| messages in mailbox (EXISTS) | 100 | 100 | failed | |",
		"| peak RSS MiB | 20 | 6 | failed | |",
		"| search_text | 1 hits | 1 hits | failed |",
		"max VmHWM of 4 imap processes",
		`SEARCH SUBJECT "widget", BODY and TEXT "gizmo"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	sides[1] = imapSide{Impl: "Dovecot mdbox", Skipped: true, Loaded: -1, Exists: -1, RSSKiB: -1}
	got = renderIMAPTable(in, 3, sides)
	if !strings.Contains(got, "| fetch_meta | 40.0 / 20.0 | skipped | failed |  |") {
		t.Errorf("table with Dovecot skipped:\n%s", got)
	}
}

// TestIMAPBenchSmall runs the whole IMAP benchmark on 30 generated
// messages, once per server, and checks that every server reports them
// all and finds the planted words.
func TestIMAPBenchSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mailswarm and starts three servers")
	}
	peertest.Need(t, "python3", "dovecot", "doveadm", "public-inbox", "sqlite3")
	shared := peertest.SharedDir(t)
	in, sides, err := runIMAPBench(t.Context(), imapConfig{N: 30, Repeat: 1, Shared: shared}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if in.Count != 30 || in.SubjectWord == "" || in.BodyWord == "" {
		t.Fatalf("input = %+v, want 30 messages and search words", in)
	}
	hits := make(map[string]string)
	for _, s := range sides {
		if s.Err != nil {
			t.Errorf("%s: %v", s.Impl, s.Err)
			continue
		}
		if s.Loaded != 30 || s.Exists != 30 {
			t.Errorf("%s: loaded %d, EXISTS %d; want 30, 30", s.Impl, s.Loaded, s.Exists)
		}
		// Dovecot's imap processes live for one connection, which on 30
		// messages may end between two samples
		if s.RSSKiB <= 0 && s.Impl != "Dovecot mdbox" {
			t.Errorf("%s: peak RSS %d KiB, want > 0", s.Impl, s.RSSKiB)
		}
		for _, op := range imapOps {
			o, ok := s.Ops[op]
			if !ok || o.Median <= 0 {
				t.Errorf("%s: %s = %+v, %v; want a time", s.Impl, op, o, ok)
			}
		}
		for _, op := range []string{"search_subj", "search_body", "search_text"} {
			if h, seen := hits[op]; seen && h != s.Ops[op].Result {
				t.Errorf("%s: %s = %q, another server said %q", s.Impl, op, s.Ops[op].Result, h)
			}
			hits[op] = s.Ops[op].Result
		}
	}
}
