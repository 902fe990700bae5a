package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"mailswarm/internal/peertest"
)

// idleConfig is what the IDLE latency benchmark was asked to do.
type idleConfig struct {
	Rates    []int         // steady sending rates, msg/s
	Duration time.Duration // per rate
	Max      int           // messages per rate at most
	Senders  int           // SMTP connections of the steady sender
	IngestN  int           // messages of the ingest run
	Conns    int           // SMTP connections of the ingest run
	Bin      string
	Baseline string
	Keep     bool
}

// idleRate is one steady phase of one side.
type idleRate struct {
	Rate     int
	Sent     int     // messages acknowledged with 250
	Failed   int     // messages without a 250
	Achieved float64 // 250s per second over the phase
	Delays   []time.Duration
	Unseen   int // acknowledged but never counted by EXISTS
	// Packs is how many git packs the committer wrote during the phase:
	// one per commit pass, so the price of a short delay (a pack per
	// message on a list that gets one at a time).
	Packs int
}

// idleSide is one mailswarm binary's run.
type idleSide struct {
	Label  string
	Bin    string
	Rates  []idleRate
	Ingest smtpResult
	// Committed runs from the first ingest message sent until IDLE
	// counted the last: 250s a committer that falls behind does not show.
	Committed time.Duration
	Err       error
}

func idleMain(args []string) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	c := idleConfig{}
	rates := fs.String("rates", "10,100,1000", "steady SMTP sending rates, msg/s, comma-separated")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long each rate is sent")
	fs.IntVar(&c.Max, "max", 5000, "messages per rate at most")
	fs.IntVar(&c.Senders, "senders", 32, "SMTP connections of the steady sender")
	fs.IntVar(&c.IngestN, "ingest-n", 3000, "messages of the ingest throughput run (0: none)")
	fs.IntVar(&c.Conns, "conns", 16, "SMTP connections of the ingest throughput run")
	fs.StringVar(&c.Bin, "bin", "", "mailswarm binary to run (default: go build ./cmd/mailswarm)")
	fs.StringVar(&c.Baseline, "baseline", "", "a second mailswarm binary (e.g. built from the commit before a change), run first and shown beside")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("idle: unexpected arguments %q", fs.Args())
	}
	for _, f := range strings.Split(*rates, ",") {
		r, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || r <= 0 {
			return fmt.Errorf("idle: -rates: %q is not a positive number", f)
		}
		c.Rates = append(c.Rates, r)
	}
	if c.Duration <= 0 || c.Max <= 0 || c.Senders <= 0 || c.Conns <= 0 || c.IngestN < 0 {
		return errors.New("idle: -duration, -max, -senders and -conns must be positive")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sides, err := runIdleBench(ctx, c, os.Stderr)
	if len(sides) > 0 {
		fmt.Print(renderIdleTable(c, sides))
	}
	if err != nil {
		return err
	}
	var failed []string
	for _, s := range sides {
		if s.Err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", s.Label, s.Err))
		}
	}
	return runsFailed(failed)
}

func runIdleBench(ctx context.Context, c idleConfig, log io.Writer) ([]idleSide, error) {
	root, err := peertest.ModuleRoot()
	if err != nil {
		return nil, err
	}
	work, cleanup, err := workDir("mailswarm-bench-idle-", c.Keep, log)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	bins, err := sideBinaries(ctx, c.Baseline, c.Bin, root, work, log)
	if err != nil {
		return nil, err
	}
	var sides []idleSide
	for _, b := range bins {
		sides = append(sides, idleSide{Label: b.Label, Bin: b.Bin})
	}
	for i := range sides {
		s := &sides[i]
		fmt.Fprintf(log, "bench: %s: %s\n", s.Label, s.Bin)
		runIdleSide(ctx, s, c, filepath.Join(work, s.Label), log)
		if err := ctx.Err(); err != nil {
			return sides, err
		}
	}
	return sides, nil
}

// runIdleSide starts `mailswarm serve` (SMTP and IMAP) on a fresh data
// directory, keeps an IMAP client in IDLE on the list while mail is sent
// at each steady rate, then measures ingest throughput.
func runIdleSide(ctx context.Context, s *idleSide, c idleConfig, dir string, log io.Writer) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.Err = err
		return
	}
	smtpAddr, imapAddr, _, stop, err := startServe(ctx, s.Bin, dir, filepath.Join(dir, "data"))
	if err != nil {
		s.Err = err
		return
	}
	defer func() {
		if err := stop(); err != nil && s.Err == nil {
			s.Err = fmt.Errorf("mailswarm serve: %w", err)
		}
	}()

	ic, err := dialIdle(imapAddr)
	if err != nil {
		s.Err = err
		return
	}
	defer ic.close()
	type phase struct {
		acks []time.Time
		ids  []string
	}
	var phases []phase
	want := ic.base
	packDir := filepath.Join(dir, "data", "lists", benchList, "git")
	packs := countPacks(packDir)
	for _, rate := range c.Rates {
		n := min(c.Max, max(1, int(float64(rate)*c.Duration.Seconds())))
		msgs, ids := idleMessages(s.Label, rate, n)
		fmt.Fprintf(log, "bench: %s: %d messages at %d msg/s over %d SMTP connections\n", s.Label, n, rate, c.Senders)
		acks, wall, err := sendSteady(ctx, smtpAddr, msgs, rate, c.Senders)
		r := idleRate{Rate: rate}
		for _, a := range acks {
			if a.IsZero() {
				r.Failed++
			} else {
				r.Sent++
			}
		}
		if wall > 0 {
			r.Achieved = float64(r.Sent) / wall.Seconds()
		}
		s.Rates = append(s.Rates, r)
		phases = append(phases, phase{acks, ids})
		if err != nil {
			s.Err = fmt.Errorf("%d msg/s: %w", rate, err)
			return
		}
		want += r.Sent
		ic.waitExists(want, 30*time.Second)
		n2 := countPacks(packDir)
		s.Rates[len(s.Rates)-1].Packs, packs = n2-packs, n2
	}
	seqs, err := ic.messageIDs()
	if err != nil {
		s.Err = err
		return
	}
	for i, p := range phases {
		s.Rates[i].Delays, s.Rates[i].Unseen = idleDelays(p.acks, p.ids, seqs, ic.events)
	}
	if c.IngestN > 0 {
		if err := ic.idle("e"); err != nil {
			s.Err = fmt.Errorf("imap: %w", err)
			return
		}
		msgs, _ := idleMessages(s.Label, 0, c.IngestN)
		fmt.Fprintf(log, "bench: %s: ingest, %d messages over %d SMTP connections\n", s.Label, len(msgs), c.Conns)
		t0 := time.Now()
		lat, failed, wall, err := sendSMTP(ctx, smtpAddr, msgs, c.Conns)
		s.Ingest = smtpResult{Impl: s.Label, Messages: len(msgs), Conns: c.Conns, Wall: wall, Latencies: lat, Failed: failed, Err: err}
		if err != nil {
			s.Err = fmt.Errorf("ingest: %w", err)
			return
		}
		// Until IDLE counts them all: what the committer kept up with.
		if at, ok := ic.waitExists(len(seqs)+len(lat), 2*time.Minute); ok {
			s.Committed = at.Sub(t0)
		}
		ic.endIdle()
	}
}

// countPacks counts the pack files of every epoch under gitDir (the list's
// git/ directory).
func countPacks(gitDir string) int {
	m, _ := filepath.Glob(filepath.Join(gitDir, "*.git", "objects", "pack", "*.pack"))
	return len(m)
}

// idleMessages makes n distinct messages (Message-ID <label-rate-i@bench>)
// of a few KiB, like list mail.
func idleMessages(label string, rate, n int) (msgs [][]byte, ids []string) {
	body := strings.Repeat("The quick brown fox jumps over the lazy dog, as list mail does.\r\n", 40)
	for i := range n {
		id := fmt.Sprintf("%s-%d-%d@bench", label, rate, i)
		ids = append(ids, id)
		msgs = append(msgs, fmt.Appendf(nil, "From: Sender %d <s%d@example.org>\r\nTo: %s\r\nSubject: idle %d/%d\r\n"+
			"Date: Thu, 03 Dec 2026 08:00:00 +0000\r\nMessage-ID: <%s>\r\n\r\n%s", i%97, i%97, benchAddr, rate, i, id, body))
	}
	return msgs, ids
}

// sendSteady sends msgs to addr at rate messages per second over senders
// SMTP connections: message i is handed to a free connection at i/rate
// seconds (later when all are busy). acks[i] is when its 250 came (zero:
// none); wall runs from the first hand-over to the last reply.
func sendSteady(ctx context.Context, addr string, msgs [][]byte, rate, senders int) (acks []time.Time, wall time.Duration, err error) {
	acks = make([]time.Time, len(msgs))
	senders = min(senders, len(msgs))
	clients := make([]*smtp.Client, senders)
	for w := range clients {
		c, err := smtp.Dial(addr)
		if err != nil {
			return acks, 0, fmt.Errorf("smtp dial: %w", err)
		}
		if err := c.Hello("bench.localhost"); err != nil {
			return acks, 0, fmt.Errorf("smtp EHLO: %w", err)
		}
		clients[w] = c
	}
	jobs := make(chan int)
	errs := make([]error, senders)
	var wg sync.WaitGroup
	for w, c := range clients {
		wg.Go(func() {
			defer c.Quit()
			for i := range jobs {
				if err := sendOne(c, msgs[i]); err != nil {
					if errs[w] == nil {
						errs[w] = fmt.Errorf("message %d: %w", i, err)
					}
					_ = c.Reset()
					continue
				}
				acks[i] = time.Now()
			}
		})
	}
	period := time.Second / time.Duration(rate)
	t0 := time.Now()
	for i := range msgs {
		if d := time.Until(t0.Add(time.Duration(i) * period)); d > 0 {
			time.Sleep(d)
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return acks, time.Since(t0), errors.Join(append(errs, ctx.Err())...)
}

func sendOne(c *smtp.Client, msg []byte) error {
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

// existsEvent is one "* n EXISTS" and when the client read it.
type existsEvent struct {
	at time.Time
	n  int
}

// idleConn is an IMAP client in IDLE on the bench list.
type idleConn struct {
	c    net.Conn
	r    *bufio.Reader
	base int // EXISTS at SELECT

	mu     sync.Mutex
	events []existsEvent
	done   chan error // the reader ended (DONE answered, or an error)
}

var idleExistsRE = regexp.MustCompile(`^\* (\d+) EXISTS\r?\n$`)

// dialIdle logs in (loopback: any password), selects the list and starts
// IDLE.
func dialIdle(addr string) (*idleConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, fmt.Errorf("imap dial: %w", err)
	}
	ic := &idleConn{c: c, r: bufio.NewReader(c)}
	fail := func(err error) (*idleConn, error) { c.Close(); return nil, fmt.Errorf("imap: %w", err) }
	c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := ic.r.ReadString('\n'); err != nil {
		return fail(err)
	}
	if _, err := ic.cmd("a LOGIN bench bench"); err != nil {
		return fail(err)
	}
	lines, err := ic.cmd("b SELECT " + benchList)
	if err != nil {
		return fail(err)
	}
	for _, l := range lines {
		if m := idleExistsRE.FindStringSubmatch(l); m != nil {
			ic.base, _ = strconv.Atoi(m[1])
		}
	}
	if err := ic.idle("c"); err != nil {
		return fail(err)
	}
	return ic, nil
}

// idle starts IDLE (RFC 2177) with tag; a goroutine records EXISTS until
// DONE is answered.
func (ic *idleConn) idle(tag string) error {
	ic.c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(ic.c, tag+" IDLE\r\n"); err != nil {
		return err
	}
	if l, err := ic.r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+") {
		return fmt.Errorf("IDLE: %q %v", l, err)
	}
	ic.c.SetDeadline(time.Time{})
	ic.done = make(chan error, 1)
	go func() {
		for {
			l, err := ic.r.ReadString('\n')
			if err != nil {
				ic.done <- err
				return
			}
			if m := idleExistsRE.FindStringSubmatch(l); m != nil {
				n, _ := strconv.Atoi(m[1])
				ic.mu.Lock()
				ic.events = append(ic.events, existsEvent{time.Now(), n})
				ic.mu.Unlock()
			}
			if strings.HasPrefix(l, tag+" ") {
				ic.done <- nil
				return
			}
		}
	}()
	return nil
}

// endIdle sends DONE and waits for IDLE's end.
func (ic *idleConn) endIdle() error {
	ic.c.SetDeadline(time.Now().Add(2 * time.Minute))
	if _, err := io.WriteString(ic.c, "DONE\r\n"); err != nil {
		return err
	}
	if err := <-ic.done; err != nil {
		return fmt.Errorf("imap IDLE: %w", err)
	}
	return nil
}

// cmd sends a command and returns its response lines (no literals).
func (ic *idleConn) cmd(line string) ([]string, error) {
	tag, _, _ := strings.Cut(line, " ")
	if _, err := io.WriteString(ic.c, line+"\r\n"); err != nil {
		return nil, err
	}
	var out []string
	for {
		l, err := ic.r.ReadString('\n')
		if err != nil {
			return out, err
		}
		out = append(out, l)
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l, tag+" OK") {
				return out, fmt.Errorf("%s: %s", line, strings.TrimSpace(l))
			}
			return out, nil
		}
	}
}

// waitExists waits up to d for EXISTS to reach n and returns when the
// client read that EXISTS.
func (ic *idleConn) waitExists(n int, d time.Duration) (time.Time, bool) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		ic.mu.Lock()
		var last existsEvent
		if len(ic.events) > 0 {
			last = ic.events[len(ic.events)-1]
		}
		ic.mu.Unlock()
		if last.n >= n {
			return last.at, true
		}
	}
	return time.Time{}, false
}

// messageIDs ends IDLE and returns the sequence number of each Message-ID
// in the mailbox: the order mail was committed in.
func (ic *idleConn) messageIDs() (map[string]int, error) {
	if err := ic.endIdle(); err != nil {
		return nil, err
	}
	if _, err := io.WriteString(ic.c, "d FETCH 1:* (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])\r\n"); err != nil {
		return nil, err
	}
	seqs := map[string]int{}
	for {
		l, err := ic.r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("imap FETCH: %w", err)
		}
		if strings.HasPrefix(l, "d ") {
			if !strings.HasPrefix(l, "d OK") {
				return nil, fmt.Errorf("imap FETCH: %s", strings.TrimSpace(l))
			}
			return seqs, nil
		}
		var seq int
		if _, err := fmt.Sscanf(l, "* %d FETCH", &seq); err != nil {
			continue
		}
		t := strings.TrimRight(l, "\r\n")
		i := strings.LastIndexByte(t, '{')
		if i < 0 || !strings.HasSuffix(t, "}") {
			continue
		}
		n, err := strconv.Atoi(t[i+1 : len(t)-1])
		if err != nil {
			return nil, fmt.Errorf("imap FETCH: %q", l)
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(ic.r, lit); err != nil {
			return nil, err
		}
		if m := msgIDRE.FindSubmatch(lit); m != nil {
			seqs[string(m[1])] = seq
		}
		if _, err := ic.r.ReadString('\n'); err != nil { // ")"
			return nil, err
		}
	}
}

var msgIDRE = regexp.MustCompile(`<([^>]+)>`)

func (ic *idleConn) close() { ic.c.Close() }

// idleDelays returns, sorted, how long after its 250 each message was
// first counted by EXISTS (the first EXISTS at or past its sequence
// number), and how many never were.
func idleDelays(acks []time.Time, ids []string, seqs map[string]int, events []existsEvent) ([]time.Duration, int) {
	var out []time.Duration
	unseen := 0
	for i, a := range acks {
		if a.IsZero() {
			continue
		}
		seq, ok := seqs[ids[i]]
		j := sort.Search(len(events), func(k int) bool { return events[k].n >= seq })
		if !ok || j == len(events) {
			unseen++
			continue
		}
		out = append(out, max(0, events[j].at.Sub(a)))
	}
	slices.Sort(out)
	return out, unseen
}

// renderIdleTable formats the sides side by side: per rate the 250 →
// EXISTS delays, then ingest throughput.
func renderIdleTable(c idleConfig, sides []idleSide) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nIMAP IDLE latency (SMTP 250 → `* n EXISTS`), %s, %d CPUs, %d sender connections, up to %s or %d messages per rate\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), c.Senders, c.Duration, c.Max)
	b.WriteString("| rate msg/s |")
	sep := "|---:|"
	for _, s := range sides {
		for _, h := range []string{"sent msg/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "unseen", "packs"} {
			fmt.Fprintf(&b, " %s %s |", s.Label, h)
			sep += "---:|"
		}
	}
	b.WriteString("\n" + sep + "\n")
	for i, rate := range c.Rates {
		fmt.Fprintf(&b, "| %d |", rate)
		for _, s := range sides {
			if i >= len(s.Rates) || len(s.Rates[i].Delays) == 0 {
				b.WriteString(" failed | | | | | | |")
				continue
			}
			r := s.Rates[i]
			d := r.Delays
			fmt.Fprintf(&b, " %.0f | %.0f | %.0f | %.0f | %.0f | %d | %d |", r.Achieved,
				ms(percentile(d, 0.50)), ms(percentile(d, 0.95)), ms(percentile(d, 0.99)), ms(d[len(d)-1]), r.Unseen+r.Failed, r.Packs)
		}
		b.WriteString("\n")
	}
	if c.IngestN > 0 {
		fmt.Fprintf(&b, "\nIngest throughput (%d messages, %d SMTP connections, as fast as they go)\n\n", c.IngestN, c.Conns)
		b.WriteString("| side | 250 msg/s | p50 ms | p99 ms | failed | committed msg/s (until IDLE counts all) |\n|---|---:|---:|---:|---:|---:|\n")
		for _, s := range sides {
			r := s.Ingest
			if r.Wall <= 0 {
				fmt.Fprintf(&b, "| %s | failed | | | | |\n", s.Label)
				continue
			}
			sorted := slices.Clone(r.Latencies)
			slices.Sort(sorted)
			committed := "?"
			if s.Committed > 0 {
				committed = fmt.Sprintf("%.0f", float64(len(r.Latencies))/s.Committed.Seconds())
			}
			fmt.Fprintf(&b, "| %s | %.0f | %.1f | %.1f | %d | %s |\n", s.Label, float64(len(r.Latencies))/r.Wall.Seconds(),
				ms(percentile(sorted, 0.50)), ms(percentile(sorted, 0.99)), r.Failed, committed)
		}
	}
	return b.String()
}

// startServe starts `bin serve` with SMTP and IMAP on free loopback ports
// over the data directory data (HTTP off; its log in dir/serve.err) and
// waits until both listen. Only keys every mailswarm since issue 3 reads
// go in its configuration, so that a baseline binary takes the same file.
// stop ends it (SIGTERM) and reports how it exited.
func startServe(ctx context.Context, bin, dir, data string) (smtpAddr, imapAddr string, cmd *exec.Cmd, stop func() error, err error) {
	smtpPort, err1 := freePort()
	imapPort, err2 := freePort()
	if err := errors.Join(err1, err2); err != nil {
		return "", "", nil, nil, err
	}
	smtpAddr = fmt.Sprintf("127.0.0.1:%d", smtpPort)
	imapAddr = fmt.Sprintf("127.0.0.1:%d", imapPort)
	cfgPath := filepath.Join(dir, "mailswarm.toml")
	cfg := fmt.Sprintf("data = %q\n\n[smtp]\nlisten = %q\n\n[imap]\nlisten = %q\n\n[http]\nlisten = \"\"\n\n"+
		"[[list]]\nname = %q\naddresses = [%q]\n", data, smtpAddr, imapAddr, benchList, benchAddr)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return "", "", nil, nil, err
	}
	errPath := filepath.Join(dir, "serve.err")
	errFile, err := os.Create(errPath)
	if err != nil {
		return "", "", nil, nil, err
	}
	defer errFile.Close() // the child has its own descriptor
	cmd = exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = errFile, errFile
	stop, err = startIMAPServer(ctx, cmd, imapAddr, errPath)
	if err != nil {
		return "", "", nil, nil, fmt.Errorf("mailswarm serve: %w", err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", smtpAddr, time.Second); err == nil {
			c.Close()
			return smtpAddr, imapAddr, cmd, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", "", nil, nil, fmt.Errorf("mailswarm serve: SMTP %s not listening after a minute", smtpAddr)
		}
	}
}
