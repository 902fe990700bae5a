package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mailswarm/internal/peertest"
)

// Scripts the IMAP benchmark runs, relative to the module root: copies of
// shared/peers/imap_bench.py and shared/peers/dovecot/{run.sh,mbox2maildir.py},
// kept byte for byte.
const (
	imapBenchScript = "bench/imap_bench.py"
	dovecotRunSh    = "bench/dovecot/run.sh"
)

// imapOps are imap_bench.py's timed operations, in its order.
var imapOps = []string{"select", "fetch_meta", "fetch_hdrs", "bodies_range", "bodies_single",
	"search_subj", "search_body", "search_text"}

// hwmInterval is how often the peak RSS of Dovecot's imap processes is
// sampled (each lives for one connection, so it cannot be read at the end).
const hwmInterval = 10 * time.Millisecond

// imapConfig is what the IMAP read benchmark was asked to do.
type imapConfig struct {
	N           int
	Mbox        string
	Repeat      int
	SkipPI      bool
	SkipDovecot bool
	SubjectWord string // "" = the generator's token, or picked from the mbox
	BodyWord    string
	Bin         string
	Shared      string
	Keep        bool
}

// imapInput is the mbox every server serves and the search words.
type imapInput struct {
	Label       string
	Path        string
	Count       int    // "From " separators
	SubjectWord string // SEARCH SUBJECT
	BodyWord    string // SEARCH BODY and TEXT
	Expect      string // what the words should find, for the reader; may be ""
}

// imapOp is one operation's times in seconds, as imap_bench.py --json
// writes them.
type imapOp struct {
	Run1   float64   `json:"run1"`
	Min    float64   `json:"min"`
	Median float64   `json:"median"`
	Result string    `json:"result"` // of the first run, e.g. "1000 msgs 4.2 MB", "12 hits"
	All    []float64 `json:"all"`
}

// imapReport is imap_bench.py's --json output (the fields used here).
type imapReport struct {
	Label   string            `json:"label"`
	Mailbox string            `json:"mailbox"`
	LoginS  float64           `json:"login_s"`
	Ops     map[string]imapOp `json:"ops"`
}

// imapSide is one server's run.
type imapSide struct {
	Impl    string
	Skipped bool
	Mailbox string
	Loaded  int   // messages the loader reports; -1 unknown
	Exists  int   // EXISTS of the benchmarked mailbox; -1 unknown
	RSSKiB  int64 // peak RSS of the serving process(es); -1 unknown
	RSSNote string
	Ops     map[string]imapOp
	Err     error
}

func imapMain(args []string) error {
	fs := flag.NewFlagSet("imap", flag.ContinueOnError)
	var c imapConfig
	fs.IntVar(&c.N, "n", 10000, "messages in the synthetic input (gen_mbox.py -n)")
	fs.StringVar(&c.Mbox, "mbox", "", "serve this mbox (.gz ok) instead of a synthetic one")
	fs.IntVar(&c.Repeat, "repeat", 3, "runs per server (imap_bench.py --repeat), a fresh connection each")
	fs.BoolVar(&c.SkipPI, "skip-pi", false, "do not run public-inbox-imapd")
	fs.BoolVar(&c.SkipDovecot, "skip-dovecot", false, "do not run Dovecot")
	fs.StringVar(&c.SubjectWord, "subject-word", "", "SEARCH SUBJECT word (default: the generator's token, or one picked from -mbox)")
	fs.StringVar(&c.BodyWord, "body-word", "", "SEARCH BODY/TEXT word (default: the generator's token, or one picked from -mbox)")
	fs.StringVar(&c.Bin, "bin", "", "mailswarm binary to run (default: go build ./cmd/mailswarm)")
	fs.StringVar(&c.Shared, "shared", "", "shared directory (default: $MAILSWARM_SHARED or ../shared)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("imap: unexpected arguments %q", fs.Args())
	}
	if c.Mbox == "" && c.N <= 0 {
		return errors.New("imap: -n must be positive (or give -mbox)")
	}
	if c.Repeat < 1 {
		return errors.New("imap: -repeat must be at least 1")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	in, sides, err := runIMAPBench(ctx, c, os.Stderr)
	if sides != nil {
		fmt.Print(renderIMAPTable(in, c.Repeat, sides))
	}
	if err != nil {
		return err
	}
	var failed []string
	for _, s := range sides {
		if s.Err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", s.Impl, s.Err))
		}
	}
	return runsFailed(failed)
}

// runIMAPBench prepares the input, then loads it into each server in turn,
// starts it, runs imap_bench.py against it and stops it. Per-server
// failures are in the sides; the error is for failures that stop
// everything.
func runIMAPBench(ctx context.Context, c imapConfig, log io.Writer) (imapInput, []imapSide, error) {
	var in imapInput
	root, err := peertest.ModuleRoot()
	if err != nil {
		return in, nil, err
	}
	if _, err := exec.LookPath("python3"); err != nil {
		return in, nil, errors.New("imap: python3 not in PATH (imap_bench.py needs it)")
	}
	work, cleanup, err := workDir("mailswarm-bench-imap-", c.Keep, log)
	if err != nil {
		return in, nil, err
	}
	defer cleanup()
	in, err = prepareIMAPInput(ctx, c, root, work, log)
	if err != nil {
		return in, nil, err
	}
	fmt.Fprintf(log, "bench: %s, %d messages; SUBJECT %q, BODY/TEXT %q\n", in.Label, in.Count, in.SubjectWord, in.BodyWord)
	script := filepath.Join(root, imapBenchScript)

	var sides []imapSide
	bin, err := mailswarmBinary(ctx, c.Bin, root, work, log)
	if err != nil {
		sides = append(sides, imapSide{Impl: "ours", Loaded: -1, Exists: -1, RSSKiB: -1, Err: err})
	} else {
		fmt.Fprintf(log, "bench: mailswarm import + serve\n")
		sides = append(sides, runOursIMAP(ctx, bin, script, in, c.Repeat, filepath.Join(work, "ours")))
	}
	if err := ctx.Err(); err != nil {
		return in, sides, err
	}
	if c.SkipDovecot {
		sides = append(sides, imapSide{Impl: "Dovecot mdbox", Skipped: true, Loaded: -1, Exists: -1, RSSKiB: -1})
	} else {
		fmt.Fprintf(log, "bench: Dovecot (mdbox, cold) load + serve\n")
		sides = append(sides, runDovecotIMAP(ctx, filepath.Join(root, dovecotRunSh), script, in, c.Repeat, filepath.Join(work, "dovecot")))
	}
	if err := ctx.Err(); err != nil {
		return in, sides, err
	}
	if c.SkipPI {
		sides = append(sides, imapSide{Impl: "public-inbox-imapd", Skipped: true, Loaded: -1, Exists: -1, RSSKiB: -1})
	} else {
		fmt.Fprintf(log, "bench: public-inbox import + public-inbox-imapd\n")
		sides = append(sides, runPIIMAP(ctx, filepath.Join(root, piImportScript), script, in, c.Repeat, filepath.Join(work, "pi")))
	}
	return in, sides, ctx.Err()
}

// prepareIMAPInput generates the synthetic mbox (or decompresses -mbox)
// and settles the search words.
func prepareIMAPInput(ctx context.Context, c imapConfig, root, work string, log io.Writer) (imapInput, error) {
	var in imapInput
	if c.Mbox != "" {
		in.Label = filepath.Base(c.Mbox)
		in.Path = c.Mbox
		if strings.HasSuffix(c.Mbox, ".gz") {
			in.Path = filepath.Join(work, strings.TrimSuffix(filepath.Base(c.Mbox), ".gz"))
			if err := peertest.GunzipFile(c.Mbox, in.Path); err != nil {
				return in, err
			}
		}
	} else {
		shared, err := sharedDir(c.Shared, root)
		if err != nil {
			return in, err
		}
		in.Label = fmt.Sprintf("synthetic (gen_mbox.py -n %d)", c.N)
		in.Path = filepath.Join(work, fmt.Sprintf("synthetic-%d.mbox", c.N))
		fmt.Fprintf(log, "bench: generating %d messages with gen_mbox.py\n", c.N)
		cmd := exec.CommandContext(ctx, "python3", filepath.Join(shared, "peers", "gen_mbox.py"), in.Path, "-n", strconv.Itoa(c.N))
		if b, err := cmd.CombinedOutput(); err != nil {
			return in, fmt.Errorf("gen_mbox.py -n %d: %w: %s", c.N, err, lastLines(b, 5))
		}
	}
	abs, err := filepath.Abs(in.Path)
	if err != nil {
		return in, err
	}
	in.Path = abs
	if in.Count, err = countMbox(in.Path); err != nil {
		return in, err
	}
	in.SubjectWord, in.BodyWord = c.SubjectWord, c.BodyWord
	if c.Mbox == "" {
		// gen_mbox.py plants its tokens and counts them in a sidecar
		b, err := os.ReadFile(in.Path + ".json")
		if err != nil {
			return in, fmt.Errorf("gen_mbox.py sidecar: %w", err)
		}
		g, err := parseGenStats(b)
		if err != nil {
			return in, err
		}
		if in.SubjectWord == "" {
			in.SubjectWord = g.SubjectToken
		}
		if in.BodyWord == "" {
			in.BodyWord = g.BodyToken
		}
		in.Expect = fmt.Sprintf("gen_mbox.py planted %q in %d subjects and %q in %d bodies",
			g.SubjectToken, g.SubjectCount, g.BodyToken, g.BodyCount)
		return in, nil
	}
	if in.SubjectWord == "" || in.BodyWord == "" {
		f, err := os.Open(in.Path)
		if err != nil {
			return in, err
		}
		w, err := pickSearchWords(f)
		f.Close()
		if err != nil {
			return in, err
		}
		if in.SubjectWord == "" {
			in.SubjectWord = w.Subject
		}
		if in.BodyWord == "" {
			in.BodyWord = w.Body
		}
		in.Expect = fmt.Sprintf("picked from the mbox: %q is a word of %d subjects, %q of %d bodies",
			w.Subject, w.SubjectDocs, w.Body, w.BodyDocs)
	}
	if in.SubjectWord == "" || in.BodyWord == "" {
		return in, errors.New("imap: no search words found in the mbox; give -subject-word and -body-word")
	}
	return in, nil
}

// genStats is the part of gen_mbox.py's sidecar JSON used here.
type genStats struct {
	SubjectToken string `json:"subject_token"`
	BodyToken    string `json:"body_token"`
	SubjectCount int    `json:"subject_token_count"`
	BodyCount    int    `json:"body_token_count"`
}

func parseGenStats(b []byte) (genStats, error) {
	var g genStats
	if err := json.Unmarshal(b, &g); err != nil {
		return g, fmt.Errorf("gen_mbox.py sidecar: %w", err)
	}
	if g.SubjectToken == "" || g.BodyToken == "" {
		return g, errors.New("gen_mbox.py sidecar: no subject_token or body_token")
	}
	return g, nil
}

// searchWords are the words pickSearchWords chose and in how many
// messages each occurs (as a whole word, ASCII case folded).
type searchWords struct {
	Subject     string
	SubjectDocs int
	Body        string
	BodyDocs    int
}

// wordRE is what counts as a search word: plain ASCII letters, so that
// substring search (Dovecot, ours) and word search (public-inbox's
// Xapian) mean nearly the same thing.
var wordRE = regexp.MustCompile(`[A-Za-z]{6,20}`)

// pickSearchWords reads an mboxrd and returns, for the Subject field and
// for the bodies, the word found in the number of messages closest to 1%
// of them (at least 2), ties going to the alphabetically first word. Only
// single-line Subject fields and text after the header are read, with no
// MIME decoding: a benchmark wants a selective word, not an exact count.
func pickSearchWords(r io.Reader) (searchWords, error) {
	subj := make(map[string]int)
	body := make(map[string]int)
	seenS := make(map[string]bool)
	seenB := make(map[string]bool)
	msgs := 0
	inHeader, prevBlank, started := false, true, false
	endMsg := func() {
		for w := range seenS {
			subj[w]++
		}
		for w := range seenB {
			body[w]++
		}
		clear(seenS)
		clear(seenB)
	}
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// a very long line (base64 without breaks?): not words
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			line = nil
		}
		if len(line) > 0 {
			blank := len(bytes.TrimRight(line, "\r\n")) == 0
			switch {
			case prevBlank && bytes.HasPrefix(line, []byte("From ")):
				if started {
					endMsg()
				}
				started, inHeader = true, true
				msgs++
			case !started:
			case inHeader && blank:
				inHeader = false
			case inHeader:
				if len(line) > 8 && strings.EqualFold(string(line[:8]), "subject:") {
					for _, w := range wordRE.FindAll(line[8:], -1) {
						seenS[strings.ToLower(string(w))] = true
					}
				}
			default:
				for _, w := range wordRE.FindAll(line, -1) {
					seenB[strings.ToLower(string(w))] = true
				}
			}
			prevBlank = blank
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return searchWords{}, fmt.Errorf("pick search words: %w", err)
		}
	}
	if started {
		endMsg()
	}
	target := max(2, msgs/100)
	var w searchWords
	w.Subject, w.SubjectDocs = closestDocs(subj, target)
	w.Body, w.BodyDocs = closestDocs(body, target)
	return w, nil
}

// closestDocs returns the word of counts whose count is closest to target
// (at least 2), ties to the alphabetically first; "" if none.
func closestDocs(counts map[string]int, target int) (string, int) {
	best, bestN := "", 0
	for w, n := range counts {
		if n < 2 {
			continue
		}
		d, bd := intAbs(n-target), intAbs(bestN-target)
		if best == "" || d < bd || d == bd && w < best {
			best, bestN = w, n
		}
	}
	return best, bestN
}

func intAbs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// parseIMAPReport reads imap_bench.py's --json output.
func parseIMAPReport(b []byte) (imapReport, error) {
	var r imapReport
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("imap_bench.py json: %w", err)
	}
	if len(r.Ops) == 0 {
		return r, errors.New("imap_bench.py json: no operations")
	}
	return r, nil
}

var existsRE = regexp.MustCompile(`^(\d+) exists`)

// selectExists returns N of the "N exists" result imap_bench.py gives the
// select operation, or -1.
func selectExists(r imapReport) int {
	m := existsRE.FindStringSubmatch(r.Ops["select"].Result)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return -1
	}
	return n
}

// runIMAPScript runs imap_bench.py against 127.0.0.1:port and returns its
// report; its output goes to logBase+".out"/".err"/".json".
func runIMAPScript(ctx context.Context, script string, port int, user, pass, mailbox string, in imapInput, repeat int, logBase string) (imapReport, error) {
	out := logBase + ".json"
	_, err := timed(ctx, nil, logBase, "python3", script,
		"--port", strconv.Itoa(port), "--user", user, "--password", pass, "--mailbox", mailbox,
		"--repeat", strconv.Itoa(repeat), "--subject-word", in.SubjectWord, "--body-word", in.BodyWord,
		"--json", out)
	if err != nil {
		return imapReport{}, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return imapReport{}, fmt.Errorf("imap_bench.py: %w", err)
	}
	return parseIMAPReport(b)
}

// setReport copies a report's operations and EXISTS count into s.
func (s *imapSide) setReport(r imapReport) {
	s.Ops = r.Ops
	s.Exists = selectExists(r)
}

// imapGreeted reports whether an IMAP server at addr sends "* OK".
func imapGreeted(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "* OK")
}

// startIMAPServer starts cmd and waits up to a minute for an IMAP
// greeting at addr. stop sends SIGTERM, then SIGKILL after a minute.
func startIMAPServer(ctx context.Context, cmd *exec.Cmd, addr, errLog string) (stop func() error, err error) {
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", filepath.Base(cmd.Path), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			var ee *exec.ExitError
			if errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled() {
				return nil // ended by our SIGTERM
			}
			return err
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s: no exit a minute after SIGTERM (killed)", filepath.Base(cmd.Path))
		}
	}
	deadline := time.Now().Add(time.Minute)
	for !imapGreeted(addr) {
		select {
		case err := <-exited:
			b, _ := os.ReadFile(errLog)
			return nil, fmt.Errorf("%s exited before greeting: %v: %s", filepath.Base(cmd.Path), err, lastLines(b, 5))
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("%s: no IMAP greeting on %s after a minute", filepath.Base(cmd.Path), addr)
		}
	}
	return stop, nil
}

// runOursIMAP imports the input with `mailswarm import`, serves it with
// `mailswarm serve` (IMAP only) and runs imap_bench.py on mailbox "bench".
func runOursIMAP(ctx context.Context, bin, script string, in imapInput, repeat int, dir string) imapSide {
	s := imapSide{Impl: "ours", Mailbox: benchList, Loaded: -1, Exists: -1, RSSKiB: -1,
		RSSNote: "VmHWM of mailswarm serve"}
	fail := func(err error) imapSide { s.Err = err; return s }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	data := filepath.Join(dir, "data")
	if _, err := timed(ctx, nil, filepath.Join(dir, "import"), bin,
		"import", "--data", data, "--list", benchList, "--address", benchAddr, in.Path); err != nil {
		return fail(fmt.Errorf("mailswarm import: %w", err))
	}
	if out, err := exec.CommandContext(ctx, bin, "stats", "--data", data, "--list", benchList, "--json").Output(); err == nil {
		if n, ok := statsMessages(out, benchList); ok {
			s.Loaded = n
		}
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cfgPath := filepath.Join(dir, "mailswarm.toml")
	cfg := fmt.Sprintf("data = %q\n\n[smtp]\nlisten = \"\"\n\n[imap]\nlisten = %q\n\n[http]\nlisten = \"\"\n\n"+
		"[[list]]\nname = %q\naddresses = [%q]\n", data, addr, benchList, benchAddr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return fail(err)
	}
	errPath := filepath.Join(dir, "serve.err")
	errFile, err := os.Create(errPath)
	if err != nil {
		return fail(err)
	}
	defer errFile.Close()
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = errFile, errFile
	stop, err := startIMAPServer(ctx, cmd, addr, errPath)
	if err != nil {
		return fail(fmt.Errorf("mailswarm serve: %w", err))
	}
	pid := cmd.Process.Pid
	rep, benchErr := runIMAPScript(ctx, script, port, "bench", "bench", benchList, in, repeat, filepath.Join(dir, "imap_bench"))
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		if _, _, hwm, ok := parseProcStatus(st); ok {
			s.RSSKiB = hwm
		}
	}
	if err := stop(); err != nil && benchErr == nil {
		benchErr = fmt.Errorf("mailswarm serve: %w", err)
	}
	if benchErr != nil {
		return fail(benchErr)
	}
	s.setReport(rep)
	return s
}

// runDovecotIMAP loads the input into a throwaway Dovecot with
// bench/dovecot/run.sh (mdbox, doveadm import, no pre-indexing, so the
// first run meets a cold index cache), runs imap_bench.py on INBOX as
// bench/bench while sampling the peak RSS of the imap processes, and
// stops Dovecot.
func runDovecotIMAP(ctx context.Context, runSh, script string, in imapInput, repeat int, dir string) imapSide {
	s := imapSide{Impl: "Dovecot mdbox", Mailbox: "INBOX", Loaded: -1, Exists: -1, RSSKiB: -1}
	fail := func(err error) imapSide { s.Err = err; return s }
	for _, p := range []string{"dovecot", "doveadm", "bash"} {
		if _, err := exec.LookPath(p); err != nil {
			return fail(fmt.Errorf("dovecot: %s not in PATH (apt-get install dovecot-imapd)", p))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	env := append(os.Environ(), "DV_FORMAT=mdbox", "DV_PREINDEX=0")
	// run.sh stop is harmless when start failed before the master began
	defer func() {
		_ = exec.Command("bash", runSh, "stop", dir).Run()
	}()
	if _, err := timed(ctx, env, filepath.Join(dir, "start"), "bash", runSh, "start", dir, in.Path, strconv.Itoa(port)); err != nil {
		return fail(fmt.Errorf("dovecot run.sh start: %w", err))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "dovecot", "summary.txt")); err == nil {
		s.Loaded = summaryMessages(b)
	}
	pidText, err := os.ReadFile(filepath.Join(dir, "dovecot", "dovecot.pid"))
	if err != nil {
		return fail(fmt.Errorf("dovecot: %w", err))
	}
	master, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		return fail(fmt.Errorf("dovecot.pid: %q", pidText))
	}
	sampler := startHWMSampler(func() []int { return childProcs(master, "imap") }, hwmInterval)
	rep, benchErr := runIMAPScript(ctx, script, port, "bench", "bench", "INBOX", in, repeat, filepath.Join(dir, "imap_bench"))
	peak, procs := sampler.stop()
	if procs > 0 {
		s.RSSKiB = peak
	}
	s.RSSNote = fmt.Sprintf("max VmHWM of %d imap processes (one per connection), sampled every %v", procs, hwmInterval)
	if benchErr != nil {
		return fail(benchErr)
	}
	s.setReport(rep)
	return s
}

// dovecotMessagesRE matches run.sh's "messages=N" summary line.
var dovecotMessagesRE = regexp.MustCompile(`(?m)^messages=\s*(\d+)\s*$`)

// summaryMessages returns N of run.sh's "messages=N" line, or -1.
func summaryMessages(b []byte) int {
	m := dovecotMessagesRE.FindSubmatch(b)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil {
		return -1
	}
	return n
}

// runPIIMAP imports the input into a fresh public-inbox v2 inbox (as the
// import benchmark does, without fsync), serves it with public-inbox-imapd
// -W0 and runs imap_bench.py on its first 50,000-message mailbox.
func runPIIMAP(ctx context.Context, importScript, script string, in imapInput, repeat int, dir string) imapSide {
	mailbox := peertest.PIMailbox(benchList, 0)
	s := imapSide{Impl: "public-inbox-imapd", Mailbox: mailbox, Loaded: -1, Exists: -1, RSSKiB: -1,
		RSSNote: "VmHWM of public-inbox-imapd -W0"}
	fail := func(err error) imapSide { s.Err = err; return s }
	inbox, env, err := initPIInbox(ctx, dir, "perl", "git", "sqlite3", "public-inbox-init", "public-inbox-index", "public-inbox-imapd")
	if err != nil {
		return fail(err)
	}
	if _, err := timed(ctx, env, filepath.Join(dir, "import"), "perl", importScript, "--no-fsync", benchList, in.Path); err != nil {
		return fail(err)
	}
	if _, err := timed(ctx, env, filepath.Join(dir, "index"), "public-inbox-index", "--no-fsync", inbox); err != nil {
		return fail(err)
	}
	if s.Loaded, err = msgmapCount(ctx, inbox); err != nil {
		return fail(err)
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	logs := filepath.Join(dir, "imapd")
	// -W0: no master/worker split, so the process started is the server
	cmd := exec.Command("public-inbox-imapd", "-W0", "-l", fmt.Sprintf("imap://127.0.0.1:%d", port),
		"--stdout", logs+".out.log", "--stderr", logs+".err.log")
	cmd.Env = env
	stop, err := startIMAPServer(ctx, cmd, fmt.Sprintf("127.0.0.1:%d", port), logs+".err.log")
	if err != nil {
		return fail(fmt.Errorf("public-inbox-imapd: %w", err))
	}
	pid := cmd.Process.Pid
	rep, benchErr := runIMAPScript(ctx, script, port, "bench", "bench", mailbox, in, repeat, filepath.Join(dir, "imap_bench"))
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		if _, _, hwm, ok := parseProcStatus(st); ok {
			s.RSSKiB = hwm
		}
	}
	if err := stop(); err != nil && benchErr == nil {
		benchErr = fmt.Errorf("public-inbox-imapd: %w", err)
	}
	if benchErr != nil {
		return fail(benchErr)
	}
	s.setReport(rep)
	return s
}

// parseProcStatus returns Name, PPid and VmHWM (KiB) of a
// /proc/PID/status file; ok is false without a VmHWM line (kernel
// threads, zombies).
func parseProcStatus(b []byte) (name string, ppid int, hwmKiB int64, ok bool) {
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Name":
			name = v
		case "PPid":
			ppid, _ = strconv.Atoi(v)
		case "VmHWM":
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
			if err == nil {
				hwmKiB, ok = n, true
			}
		}
	}
	return name, ppid, hwmKiB, ok
}

// childProcs returns the processes called name whose parent is ppid,
// from /proc/PPID/task/*/children when the kernel has them, else from a
// scan of /proc.
func childProcs(ppid int, name string) []int {
	var cands []string
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", ppid))
	for _, f := range tasks {
		if b, err := os.ReadFile(f); err == nil {
			cands = append(cands, strings.Fields(string(b))...)
		}
	}
	if len(tasks) == 0 {
		if ents, err := os.ReadDir("/proc"); err == nil {
			for _, e := range ents {
				cands = append(cands, e.Name())
			}
		}
	}
	var pids []int
	for _, c := range cands {
		pid, err := strconv.Atoi(c)
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + c + "/status")
		if err != nil {
			continue
		}
		if n, pp, _, _ := parseProcStatus(b); n == name && pp == ppid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// hwmSampler polls the VmHWM of a changing set of processes.
type hwmSampler struct {
	mu   sync.Mutex
	peak map[int]int64 // by pid
	quit chan struct{}
	wg   sync.WaitGroup
}

// startHWMSampler reads VmHWM of every process pids returns, every
// interval, until stop.
func startHWMSampler(pids func() []int, interval time.Duration) *hwmSampler {
	h := &hwmSampler{peak: make(map[int]int64), quit: make(chan struct{})}
	sample := func() {
		for _, pid := range pids() {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				continue
			}
			if _, _, hwm, ok := parseProcStatus(b); ok {
				h.mu.Lock()
				h.peak[pid] = max(h.peak[pid], hwm)
				h.mu.Unlock()
			}
		}
	}
	h.wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			sample()
			select {
			case <-h.quit:
				return
			case <-t.C:
			}
		}
	})
	return h
}

// stop ends the sampling and returns the largest VmHWM seen and the
// number of processes seen.
func (h *hwmSampler) stop() (peakKiB int64, procs int) {
	close(h.quit)
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, v := range h.peak {
		peakKiB = max(peakKiB, v)
	}
	return peakKiB, len(h.peak)
}

// renderIMAPTable formats the IMAP read results as markdown: times per
// operation (first run and median, ms) for each server with ours over
// Dovecot, then messages and peak RSS, then what each operation returned.
func renderIMAPTable(in imapInput, repeat int, sides []imapSide) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nIMAP read, %s, %d CPUs: %s, %d messages; %d run(s) per server, a fresh connection each; "+
		"SEARCH SUBJECT %q, BODY and TEXT %q\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), in.Label, in.Count, repeat, in.SubjectWord, in.BodyWord)
	var ours, dovecot *imapSide
	for i := range sides {
		switch sides[i].Impl {
		case "ours":
			ours = &sides[i]
		case "Dovecot mdbox":
			dovecot = &sides[i]
		}
	}
	b.WriteString("| operation (ms, first / median) |")
	for _, s := range sides {
		fmt.Fprintf(&b, " %s |", s.Impl)
	}
	b.WriteString(" ours÷Dovecot |\n|---|")
	for range sides {
		b.WriteString("---:|")
	}
	b.WriteString("---:|\n")
	for _, op := range imapOps {
		fmt.Fprintf(&b, "| %s |", op)
		for _, s := range sides {
			fmt.Fprintf(&b, " %s |", sideCell(s, func(s imapSide) string {
				o, ok := s.Ops[op]
				if !ok {
					return "n/a"
				}
				return fmtMS(o.Run1) + " / " + fmtMS(o.Median)
			}))
		}
		ratio := ""
		if ours != nil && dovecot != nil && ours.Err == nil && dovecot.Err == nil {
			o, ok1 := ours.Ops[op]
			d, ok2 := dovecot.Ops[op]
			if ok1 && ok2 && d.Run1 > 0 && d.Median > 0 {
				ratio = fmt.Sprintf("%.2f / %.2f", o.Run1/d.Run1, o.Median/d.Median)
			}
		}
		fmt.Fprintf(&b, " %s |\n", ratio)
	}
	row := func(label string, cell func(imapSide) string) {
		fmt.Fprintf(&b, "| %s |", label)
		for _, s := range sides {
			fmt.Fprintf(&b, " %s |", sideCell(s, cell))
		}
		b.WriteString(" |\n")
	}
	row("mailbox", func(s imapSide) string { return s.Mailbox })
	row("messages loaded", func(s imapSide) string { return countCell(s.Loaded) })
	row("messages in mailbox (EXISTS)", func(s imapSide) string { return countCell(s.Exists) })
	row("peak RSS MiB", func(s imapSide) string { return mib(s.RSSKiB) })

	b.WriteString("\nWhat the first run returned:\n\n| operation |")
	for _, s := range sides {
		fmt.Fprintf(&b, " %s |", s.Impl)
	}
	b.WriteString("\n|---|")
	for range sides {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, op := range imapOps {
		fmt.Fprintf(&b, "| %s |", op)
		for _, s := range sides {
			fmt.Fprintf(&b, " %s |", sideCell(s, func(s imapSide) string { return strings.ReplaceAll(s.Ops[op].Result, "|", "/") }))
		}
		b.WriteString("\n")
	}

	b.WriteString("\n")
	if in.Expect != "" {
		fmt.Fprintf(&b, "- Search words: %s.\n", in.Expect)
	}
	b.WriteString("- Dovecot: mdbox loaded with `doveadm import` (bench/dovecot/run.sh, DV_PREINDEX=0), " +
		"so its first run meets a cold index cache; one imap process per connection.\n")
	b.WriteString("- public-inbox-imapd serves an inbox as one mailbox per 50,000 articles (inbox.NAME.0, .1, ...); " +
		"the benchmark reads the first.\n")
	for _, s := range sides {
		if s.RSSNote != "" && !s.Skipped {
			fmt.Fprintf(&b, "- Peak RSS, %s: %s.\n", s.Impl, s.RSSNote)
		}
	}
	return b.String()
}

// sideCell is cell(s), or "skipped"/"failed".
func sideCell(s imapSide, cell func(imapSide) string) string {
	switch {
	case s.Skipped:
		return "skipped"
	case s.Err != nil:
		return "failed"
	}
	return cell(s)
}

// fmtMS formats seconds as milliseconds with three significant digits or so.
func fmtMS(sec float64) string {
	ms := sec * 1000
	switch {
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64)
	case ms < 100:
		return strconv.FormatFloat(ms, 'f', 1, 64)
	}
	return strconv.FormatFloat(ms, 'f', 0, 64)
}

func countCell(n int) string {
	if n < 0 {
		return "?"
	}
	return strconv.Itoa(n)
}
