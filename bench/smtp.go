package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mailswarm/internal/peertest"
)

// smtpConfig is what the SMTP ingest benchmark was asked to do.
type smtpConfig struct {
	N      int
	PIN    int
	Conns  int
	SkipPI bool
	Bin    string
	// Baseline is a second mailswarm binary (e.g. built from the commit
	// before a change), run first on the same messages; "" runs none.
	Baseline string
	Shared   string
	Keep     bool
}

// smtpResult is one side's delivery of its messages.
type smtpResult struct {
	Impl      string
	Messages  int // messages sent
	Conns     int
	Wall      time.Duration // first send to last reply
	Latencies []time.Duration
	Fsyncs    int // -1 if unknown (public-inbox)
	Appends   int
	Kept      int // -1 if unknown
	Failed    int // deliveries that got no success reply
	Err       error
}

func smtpMain(args []string) error {
	fs := flag.NewFlagSet("smtp", flag.ContinueOnError)
	var c smtpConfig
	fs.IntVar(&c.N, "n", 5000, "messages to deliver over SMTP (gen_mbox.py -n)")
	fs.IntVar(&c.PIN, "pi-n", 500, "messages public-inbox-mda delivers (the first of the same set)")
	fs.IntVar(&c.Conns, "conns", 16, "parallel SMTP connections / public-inbox-mda workers")
	fs.BoolVar(&c.SkipPI, "skip-pi", false, "do not run public-inbox-mda")
	fs.StringVar(&c.Bin, "bin", "", "mailswarm binary to run (default: go build ./cmd/mailswarm)")
	fs.StringVar(&c.Baseline, "baseline", "", "a second mailswarm binary (e.g. built from the commit before a change), run first on the same messages and shown above")
	fs.StringVar(&c.Shared, "shared", "", "shared directory (default: $MAILSWARM_SHARED or ../shared)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("smtp: unexpected arguments %q", fs.Args())
	}
	if c.N <= 0 || c.Conns <= 0 {
		return errors.New("smtp: -n and -conns must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	results, err := runSMTPBench(ctx, c, os.Stderr)
	if results != nil {
		fmt.Print(renderSMTPTable(results))
	}
	if err != nil {
		return err
	}
	var failed []string
	for _, r := range results {
		if r.Err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", r.Impl, r.Err))
		}
	}
	return runsFailed(failed)
}

func runSMTPBench(ctx context.Context, c smtpConfig, log io.Writer) ([]smtpResult, error) {
	root, err := peertest.ModuleRoot()
	if err != nil {
		return nil, err
	}
	shared, err := sharedDir(c.Shared, root)
	if err != nil {
		return nil, err
	}
	work, cleanup, err := workDir("mailswarm-bench-smtp-", c.Keep, log)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	mbox := filepath.Join(work, fmt.Sprintf("synthetic-%d.mbox", c.N))
	fmt.Fprintf(log, "bench: generating %d messages with gen_mbox.py\n", c.N)
	cmd := exec.CommandContext(ctx, "python3", filepath.Join(shared, "peers", "gen_mbox.py"), mbox, "-n", strconv.Itoa(c.N))
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("gen_mbox.py -n %d: %w: %s", c.N, err, lastLines(b, 5))
	}
	f, err := os.Open(mbox)
	if err != nil {
		return nil, err
	}
	msgs, err := splitMboxrd(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "bench: %d messages\n", len(msgs))

	var results []smtpResult
	// With a baseline, both binaries deliver the same messages over the
	// same connections in this one run, the baseline first.
	type side struct{ impl, bin, dir string }
	var sides []side
	impl := "mailswarm"
	if c.Baseline != "" {
		bin, err := mailswarmBinary(ctx, c.Baseline, root, work, log)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		sides = append(sides, side{"mailswarm baseline", bin, "ours-baseline"})
		impl = "mailswarm this"
	}
	bin, buildErr := mailswarmBinary(ctx, c.Bin, root, work, log)
	if buildErr == nil {
		sides = append(sides, side{impl, bin, "ours"})
	}
	for _, s := range sides {
		fmt.Fprintf(log, "bench: %s serve (%s), %d messages over %d SMTP connections\n", s.impl, s.bin, len(msgs), c.Conns)
		r := runOursSMTP(ctx, s.bin, filepath.Join(work, s.dir), msgs, c.Conns)
		r.Impl = s.impl
		results = append(results, r)
		if err := ctx.Err(); err != nil {
			return results, err
		}
	}
	if buildErr != nil {
		results = append(results, smtpResult{Impl: impl, Err: buildErr, Kept: -1, Fsyncs: -1})
	}
	if !c.SkipPI {
		pm := msgs[:min(c.PIN, len(msgs))]
		fmt.Fprintf(log, "bench: public-inbox-mda, %d messages with %d workers\n", len(pm), c.Conns)
		results = append(results, runPIMDA(ctx, filepath.Join(work, "pi"), pm, c.Conns))
	}
	return results, ctx.Err()
}

// splitMboxrd splits an mboxrd into messages: the "From " separator lines
// (at the start or after an empty line) are dropped, ">From " quoting is
// undone and the empty line before each separator is removed.
func splitMboxrd(r io.Reader) ([][]byte, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	var msgs [][]byte
	var cur *bytes.Buffer
	prevBlank := true
	flush := func() {
		if cur == nil {
			return
		}
		b := cur.Bytes()
		if bytes.HasSuffix(b, []byte("\n\n")) {
			b = b[:len(b)-1]
		} else if bytes.HasSuffix(b, []byte("\r\n\r\n")) {
			b = b[:len(b)-2]
		}
		msgs = append(msgs, b)
	}
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			switch {
			case prevBlank && bytes.HasPrefix(line, []byte("From ")):
				flush()
				cur = new(bytes.Buffer)
			case cur == nil:
				// text before the first separator: ignored
			default:
				if q := bytes.TrimLeft(line, ">"); len(q) < len(line) && bytes.HasPrefix(q, []byte("From ")) {
					line = line[1:]
				}
				cur.Write(line)
			}
			prevBlank = len(bytes.TrimRight(line, "\r\n")) == 0
		}
		if err == io.EOF {
			flush()
			return msgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("split mbox: %w", err)
		}
	}
}

// percentile returns the q-quantile (0 < q <= 1) of sorted by the
// nearest-rank method, or 0 for no values.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// spoolLineRE matches serve's shutdown line (slog text format), e.g.
// `time=... level=INFO msg=spool list=bench appends=5000 fsyncs=312`.
var spoolLineRE = regexp.MustCompile(`(?m)\bmsg=spool list=(\S+) appends=(\d+) fsyncs=(\d+)`)

// parseSpoolLine returns appends and fsyncs of list from serve's stderr
// (the last matching line).
func parseSpoolLine(stderr []byte, list string) (appends, fsyncs int, ok bool) {
	for _, m := range spoolLineRE.FindAllSubmatch(stderr, -1) {
		if strings.Trim(string(m[1]), `"`) != list {
			continue
		}
		a, err1 := strconv.Atoi(string(m[2]))
		f, err2 := strconv.Atoi(string(m[3]))
		if err1 == nil && err2 == nil {
			appends, fsyncs, ok = a, f, true
		}
	}
	return appends, fsyncs, ok
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// runOursSMTP starts `mailswarm serve` on a fresh data directory under dir
// and delivers msgs over conns SMTP connections.
func runOursSMTP(ctx context.Context, bin, dir string, msgs [][]byte, conns int) smtpResult {
	r := smtpResult{Impl: "mailswarm", Messages: len(msgs), Conns: conns, Kept: -1, Fsyncs: -1}
	fail := func(err error) smtpResult { r.Err = err; return r }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	data := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "mailswarm.toml")
	cfg := fmt.Sprintf("data = %q\n\n[smtp]\nlisten = %q\n\n[imap]\nlisten = \"\"\n\n[http]\nlisten = \"\"\n\n"+
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
	cmd.Stdout = errFile
	cmd.Stderr = errFile
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("mailswarm serve: %w", err))
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopServe := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(2 * time.Minute):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("mailswarm serve: no exit 2 minutes after SIGTERM (killed)")
		}
	}
	// wait for the port
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(errPath)
			return fail(fmt.Errorf("mailswarm serve exited before listening: %v: %s", err, lastLines(b, 5)))
		case <-ctx.Done():
			stopServe()
			return fail(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stopServe()
			return fail(fmt.Errorf("mailswarm serve: %s not listening after 60 s", addr))
		}
	}

	lat, failed, wall, sendErr := sendSMTP(ctx, addr, msgs, conns)
	r.Latencies, r.Failed, r.Wall = lat, failed, wall
	if err := stopServe(); err != nil && sendErr == nil {
		sendErr = fmt.Errorf("mailswarm serve: %w", err)
	}
	errText, _ := os.ReadFile(errPath)
	if a, f, ok := parseSpoolLine(errText, benchList); ok {
		r.Appends, r.Fsyncs = a, f
	} else if sendErr == nil {
		sendErr = errors.New("mailswarm serve: no `msg=spool` line on stderr")
	}
	if out, err := exec.CommandContext(ctx, bin, "stats", "--data", data, "--list", benchList, "--json").Output(); err == nil {
		if n, ok := statsMessages(out, benchList); ok {
			r.Kept = n
		}
	}
	if r.Kept < 0 && sendErr == nil {
		sendErr = errors.New("mailswarm stats: message count unknown")
	}
	r.Err = sendErr
	return r
}

// sendSMTP delivers msgs to addr over conns connections, each sending
// every conns-th message. A message's latency runs from MAIL FROM to the
// reply to the end of its DATA.
func sendSMTP(ctx context.Context, addr string, msgs [][]byte, conns int) (lat []time.Duration, failed int, wall time.Duration, err error) {
	lat = make([]time.Duration, len(msgs))
	ok := make([]bool, len(msgs))
	errs := make([]error, conns)
	clients := make([]*smtp.Client, conns)
	for w := range conns {
		c, err := smtp.Dial(addr)
		if err != nil {
			return nil, len(msgs), 0, fmt.Errorf("smtp dial: %w", err)
		}
		if err := c.Hello("bench.localhost"); err != nil {
			return nil, len(msgs), 0, fmt.Errorf("smtp EHLO: %w", err)
		}
		clients[w] = c
	}
	send := func(c *smtp.Client, msg []byte) error {
		if err := c.Mail("sender@example.org"); err != nil {
			return err
		}
		if err := c.Rcpt(benchAddr); err != nil {
			return err
		}
		wc, err := c.Data()
		if err != nil {
			return err
		}
		if _, err := wc.Write(msg); err != nil {
			return err
		}
		return wc.Close()
	}
	var wg sync.WaitGroup
	t0 := time.Now()
	for w, c := range clients {
		wg.Go(func() {
			defer c.Quit()
			for i := w; i < len(msgs); i += conns {
				if ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				s := time.Now()
				if err := send(c, msgs[i]); err != nil {
					if errs[w] == nil {
						errs[w] = fmt.Errorf("message %d: %w", i, err)
					}
					var te *textproto.Error
					if errors.As(err, &te) {
						_ = c.Reset()
						continue
					}
					return
				}
				lat[i] = time.Since(s)
				ok[i] = true
			}
		})
	}
	wg.Wait()
	wall = time.Since(t0)
	var good []time.Duration
	for i, o := range ok {
		if o {
			good = append(good, lat[i])
		} else {
			failed++
		}
	}
	return good, failed, wall, errors.Join(errs...)
}

// runPIMDA delivers msgs into a fresh public-inbox v2 inbox (full index
// level, Mirror filter, no spam check) with conns workers, each running
// `public-inbox-mda --no-precheck` per message.
func runPIMDA(ctx context.Context, dir string, msgs [][]byte, conns int) smtpResult {
	r := smtpResult{Impl: "public-inbox-mda", Messages: len(msgs), Conns: conns, Kept: -1, Fsyncs: -1}
	fail := func(err error) smtpResult { r.Err = err; return r }
	inbox, env, err := initPIInbox(ctx, dir, "git", "sqlite3", "public-inbox-init", "public-inbox-mda")
	if err != nil {
		return fail(err)
	}
	mdaEnv := append(env, "ORIGINAL_RECIPIENT="+benchAddr)
	lat := make([]time.Duration, len(msgs))
	ok := make([]bool, len(msgs))
	errs := make([]error, conns)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := range conns {
		wg.Go(func() {
			for i := w; i < len(msgs); i += conns {
				if ctx.Err() != nil {
					errs[w] = ctx.Err()
					return
				}
				cmd := exec.CommandContext(ctx, "public-inbox-mda", "--no-precheck")
				cmd.Env = mdaEnv
				cmd.Stdin = bytes.NewReader(msgs[i])
				s := time.Now()
				out, err := cmd.CombinedOutput()
				if err != nil {
					if errs[w] == nil {
						errs[w] = fmt.Errorf("message %d: %w: %s", i, err, lastLines(out, 3))
					}
					continue
				}
				lat[i] = time.Since(s)
				ok[i] = true
			}
		})
	}
	wg.Wait()
	r.Wall = time.Since(t0)
	for i, o := range ok {
		if o {
			r.Latencies = append(r.Latencies, lat[i])
		} else {
			r.Failed++
		}
	}
	r.Err = errors.Join(errs...)
	if r.Kept, err = msgmapCount(ctx, inbox); err != nil {
		return fail(errors.Join(r.Err, err))
	}
	return r
}

// renderSMTPTable formats the SMTP ingest results as a markdown table.
func renderSMTPTable(rs []smtpResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nSMTP ingest, %s, %d CPUs\n\n", time.Now().UTC().Format("2006-01-02"), runtime.NumCPU())
	b.WriteString("| impl | messages | conns | seconds | msg/s | p50 ms | p99 ms | fsyncs/msg | kept | failed |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rs {
		if r.Wall == 0 && r.Err != nil {
			fmt.Fprintf(&b, "| %s | %d | %d | failed | | | | | | |\n", r.Impl, r.Messages, r.Conns)
			continue
		}
		sorted := slices.Clone(r.Latencies)
		slices.Sort(sorted)
		fs := "n/a"
		if r.Fsyncs >= 0 && r.Appends > 0 {
			fs = fmt.Sprintf("%.3f", float64(r.Fsyncs)/float64(r.Appends))
		}
		kept := "?"
		if r.Kept >= 0 {
			kept = strconv.Itoa(r.Kept)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %.2f | %.0f | %.1f | %.1f | %s | %s | %d |\n",
			r.Impl, r.Messages, r.Conns, r.Wall.Seconds(), float64(len(r.Latencies))/r.Wall.Seconds(),
			ms(percentile(sorted, 0.50)), ms(percentile(sorted, 0.99)), fs, kept, r.Failed)
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
