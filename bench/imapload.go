package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mailswarm/internal/peertest"
)

// imapLoadConfig is what the IMAP load benchmark was asked to do.
type imapLoadConfig struct {
	N        int           // messages imported before serve starts
	Clients  int           // IMAP clients at once
	Duration time.Duration // how long the clients run
	Rate     int           // new mail over SMTP during the run, msg/s (0: none)
	Senders  int           // SMTP connections of the new mail
	// Sources is how many loopback addresses (127.0.0.1, .2, …) the
	// clients dial from, in turn: 1 is TestManyClients (all from one
	// address); more is closer to clients on many hosts, which a
	// per-address limit treats differently.
	Sources  int
	Bin      string
	Baseline string
	Shared   string
	Keep     bool
}

// The kinds of command a load client sends, in its order (imapd's
// loadClient in load_test.go: one of each in turn).
const (
	loadFetchEnv = iota
	loadFetchBody
	loadSearch
	loadIdle
	loadKinds
)

var loadKindNames = [loadKinds]string{"UID FETCH 51 envelopes", "FETCH one message", "UID SEARCH BODY", "IDLE (2 s at most)"}

// imapLoadSide is one mailswarm binary's run.
type imapLoadSide struct {
	Label  string
	Bin    string
	Loaded int // messages in the list after import; -1 unknown
	Wall   time.Duration
	// Commands completed with OK, of every kind, and their latencies by
	// kind. An IDLE's runs from IDLE to the OK after DONE: up to 2 s,
	// less when the server tells of new mail sooner.
	Commands      int
	Lat           [loadKinds][]time.Duration
	Idles         int // IDLEs ended with OK
	IdlesSaw      int // of those, ones that saw an EXISTS beyond what the client knew
	FailedCmds    int // tagged NO or BAD
	FailedClients int // clients ended by an error (dial, greeting, login, I/O, timeout)
	Errs          []string
	Sent          int // new mail acknowledged with 250
	SendFailed    int
	PeakRSSKiB    int64 // VmHWM of serve; -1 unknown
	EndRSSKiB     int64 // VmRSS of serve at the end; -1 unknown
	Err           error
}

func imapLoadMain(args []string) error {
	fs := flag.NewFlagSet("imapload", flag.ContinueOnError)
	var c imapLoadConfig
	fs.IntVar(&c.N, "n", 1000, "messages imported before the run (gen_mbox.py -n)")
	fs.IntVar(&c.Clients, "clients", 200, "IMAP clients at once")
	fs.DurationVar(&c.Duration, "duration", 60*time.Second, "how long the clients run")
	fs.IntVar(&c.Rate, "rate", 20, "new mail over SMTP during the run, msg/s (0: none)")
	fs.IntVar(&c.Senders, "senders", 4, "SMTP connections of the new mail")
	fs.IntVar(&c.Sources, "sources", 1, "loopback addresses the clients dial from (127.0.0.1 … 127.0.0.N, in turn)")
	fs.StringVar(&c.Bin, "bin", "", "mailswarm binary to run (default: go build ./cmd/mailswarm)")
	fs.StringVar(&c.Baseline, "baseline", "", "a second mailswarm binary (e.g. built from the commit before a change), run first and shown above")
	fs.StringVar(&c.Shared, "shared", "", "shared directory (default: $MAILSWARM_SHARED or ../shared)")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("imapload: unexpected arguments %q", fs.Args())
	}
	if c.N <= 0 || c.Clients <= 0 || c.Duration <= 0 || c.Rate < 0 || c.Senders <= 0 || c.Sources <= 0 || c.Sources > 254 {
		return errors.New("imapload: -n, -clients, -duration, -senders must be positive, -rate not negative, -sources 1 to 254")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	sides, err := runIMAPLoadBench(ctx, c, os.Stderr)
	if len(sides) > 0 {
		fmt.Print(renderIMAPLoadTable(c, sides))
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

func runIMAPLoadBench(ctx context.Context, c imapLoadConfig, log io.Writer) ([]imapLoadSide, error) {
	root, err := peertest.ModuleRoot()
	if err != nil {
		return nil, err
	}
	work, cleanup, err := workDir("mailswarm-bench-imapload-", c.Keep, log)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	in, err := prepareIMAPInput(ctx, imapConfig{N: c.N, Shared: c.Shared}, root, work, log)
	if err != nil {
		return nil, err
	}
	bins, err := sideBinaries(ctx, c.Baseline, c.Bin, root, work, log)
	if err != nil {
		return nil, err
	}
	var sides []imapLoadSide
	for _, b := range bins {
		sides = append(sides, imapLoadSide{Label: b.Label, Bin: b.Bin})
	}
	for i := range sides {
		s := &sides[i]
		fmt.Fprintf(log, "bench: %s: %s\n", s.Label, s.Bin)
		runIMAPLoadSide(ctx, s, c, in, filepath.Join(work, s.Label), log)
		if err := ctx.Err(); err != nil {
			return sides, err
		}
	}
	return sides, nil
}

// runIMAPLoadSide imports the input into a fresh data directory, starts
// `mailswarm serve` (SMTP and IMAP) on it and runs the clients while new
// mail arrives over SMTP.
func runIMAPLoadSide(ctx context.Context, s *imapLoadSide, c imapLoadConfig, in imapInput, dir string, log io.Writer) {
	s.Loaded, s.PeakRSSKiB, s.EndRSSKiB = -1, -1, -1
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.Err = err
		return
	}
	data := filepath.Join(dir, "data")
	fmt.Fprintf(log, "bench: %s: mailswarm import of %d messages\n", s.Label, in.Count)
	if _, err := timed(ctx, nil, filepath.Join(dir, "import"), s.Bin,
		"import", "--data", data, "--list", benchList, "--address", benchAddr, in.Path); err != nil {
		s.Err = fmt.Errorf("mailswarm import: %w", err)
		return
	}
	if out, err := exec.CommandContext(ctx, s.Bin, "stats", "--data", data, "--list", benchList, "--json").Output(); err == nil {
		if n, ok := statsMessages(out, benchList); ok {
			s.Loaded = n
		}
	}
	smtpAddr, imapAddr, cmd, stop, err := startServe(ctx, s.Bin, dir, data)
	if err != nil {
		s.Err = err
		return
	}
	defer func() {
		if err := stop(); err != nil && s.Err == nil {
			s.Err = fmt.Errorf("mailswarm serve: %w", err)
		}
	}()

	runCtx, cancel := context.WithTimeout(ctx, c.Duration)
	defer cancel()
	var sender, clients sync.WaitGroup
	var sendErr error
	if n := c.Rate * int(c.Duration/time.Second); c.Rate > 0 && n > 0 {
		msgs, _ := idleMessages("load", c.Rate, n)
		fmt.Fprintf(log, "bench: %s: %d clients for %v, %d new messages at %d msg/s over SMTP\n", s.Label, c.Clients, c.Duration, n, c.Rate)
		sender.Go(func() {
			// The whole run's mail, sent at the rate: it ends with the
			// clients, or later if the server falls behind.
			acks, _, err := sendSteady(ctx, smtpAddr, msgs, c.Rate, c.Senders)
			for _, a := range acks {
				if a.IsZero() {
					s.SendFailed++
				} else {
					s.Sent++
				}
			}
			sendErr = err
		})
	}
	words := [3]string{in.BodyWord, in.SubjectWord, "xylophone"}
	stats := make([]loadStats, c.Clients)
	t0 := time.Now()
	for i := range c.Clients {
		clients.Go(func() {
			st := &stats[i]
			src := net.IPv4(127, 0, 0, byte(1+i%c.Sources))
			if err := loadClient(runCtx, imapAddr, src, i, words, st); err != nil {
				st.err = fmt.Errorf("client %d: %w", i, err)
			}
		})
	}
	clients.Wait()
	s.Wall = time.Since(t0)
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)); err == nil {
		if _, _, hwm, ok := parseProcStatus(b); ok {
			s.PeakRSSKiB = hwm
		}
		s.EndRSSKiB = procStatusField(b, "VmRSS:")
	}
	sender.Wait()
	for _, st := range stats {
		s.Commands += st.commands
		for k := range st.lat {
			s.Lat[k] = append(s.Lat[k], st.lat[k]...)
		}
		s.Idles += st.idles
		s.IdlesSaw += st.idlesSaw
		s.FailedCmds += st.failedCmds
		if st.err != nil {
			s.FailedClients++
		}
		for _, e := range append(st.errs, st.err) {
			if e != nil && len(s.Errs) < 5 {
				s.Errs = append(s.Errs, e.Error())
			}
		}
	}
	for k := range s.Lat {
		slices.Sort(s.Lat[k])
	}
	for _, e := range s.Errs {
		fmt.Fprintf(log, "bench: %s: %s\n", s.Label, e)
	}
	if sendErr != nil {
		s.Err = fmt.Errorf("new mail over SMTP: %w", sendErr)
	}
}

// procStatusField returns a "Name:  N kB" field of /proc/PID/status in
// KiB, or -1.
func procStatusField(status []byte, field string) int64 {
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, field); ok {
			if f := strings.Fields(v); len(f) > 0 {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return n
				}
			}
		}
	}
	return -1
}

// loadStats is what one load client did.
type loadStats struct {
	commands   int
	lat        [loadKinds][]time.Duration
	idles      int
	idlesSaw   int
	failedCmds int
	errs       []error // the first few tagged NO/BAD
	err        error   // what ended the client early
}

// loadClient is one client: it logs in as one of 20 users, selects the
// list and, until ctx ends, sends in turn a UID FETCH of 51 envelopes, a
// FETCH of one whole message, a UID SEARCH BODY of one of words and an
// IDLE of up to 2 s that counts when it hears of mail it had not been
// told of (imapd's loadClient in load_test.go). A tagged NO or BAD is
// counted and the client goes on; anything else ends it.
func loadClient(ctx context.Context, addr string, src net.IP, i int, words [3]string, st *loadStats) error {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	lc := &loadConn{c: nc, r: bufio.NewReader(nc)}
	if l, err := lc.line(10 * time.Second); err != nil || !strings.HasPrefix(l, "* OK") {
		return fmt.Errorf("greeting: %q %v", l, err)
	}
	if ok, l, err := lc.cmd("a", fmt.Sprintf("LOGIN user%d x", i%20)); err != nil || !ok {
		return fmt.Errorf("LOGIN: %q %v", l, err)
	}
	if ok, l, err := lc.cmd("b", "SELECT "+benchList); err != nil || !ok {
		return fmt.Errorf("SELECT: %q %v", l, err)
	}
	if lc.exists == 0 {
		return errors.New("SELECT: no messages")
	}
	rng := rand.New(rand.NewPCG(uint64(i), 1))
	for n := 0; ctx.Err() == nil; n++ {
		tag := fmt.Sprintf("c%d", n)
		kind := n % loadKinds
		var line string
		switch kind {
		case loadFetchEnv:
			lo := 1 + rng.IntN(max(1, lc.exists-50))
			line = fmt.Sprintf("UID FETCH %d:%d (UID FLAGS RFC822.SIZE ENVELOPE)", lo, lo+50)
		case loadFetchBody:
			line = fmt.Sprintf("FETCH %d (BODY.PEEK[] BODYSTRUCTURE)", 1+rng.IntN(lc.exists))
		case loadSearch:
			line = "UID SEARCH BODY " + words[rng.IntN(len(words))]
		case loadIdle:
			t := time.Now()
			saw, ok, l, err := lc.idle(tag, 2*time.Second)
			if err != nil {
				return fmt.Errorf("IDLE: %w", err)
			}
			if !ok {
				st.fail(fmt.Errorf("IDLE: %s", l))
				continue
			}
			st.commands++
			st.idles++
			st.lat[kind] = append(st.lat[kind], time.Since(t))
			if saw {
				st.idlesSaw++
			}
			continue
		}
		t := time.Now()
		ok, l, err := lc.cmd(tag, line)
		if err != nil {
			return fmt.Errorf("%s: %w", line, err)
		}
		if !ok {
			st.fail(fmt.Errorf("%s: %s", line, l))
			continue
		}
		st.commands++
		st.lat[kind] = append(st.lat[kind], time.Since(t))
	}
	lc.send("z LOGOUT")
	return nil
}

func (st *loadStats) fail(err error) {
	st.failedCmds++
	if len(st.errs) < 3 {
		st.errs = append(st.errs, err)
	}
}

// loadConn is a line-level IMAP client connection that reads literals
// whole and keeps the highest EXISTS it was told of.
type loadConn struct {
	c       net.Conn
	r       *bufio.Reader
	partial string // a line cut short by a read deadline
	exists  int
}

func (lc *loadConn) send(line string) error {
	lc.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := io.WriteString(lc.c, line+"\r\n")
	return err
}

// line reads one response line within d, without CRLF, with the bytes
// of any literals in it: a line cut short by the deadline is kept for
// the next call.
func (lc *loadConn) line(d time.Duration) (string, error) {
	lc.c.SetReadDeadline(time.Now().Add(d))
	var b strings.Builder
	for {
		s, err := lc.r.ReadString('\n')
		lc.partial += s
		if err != nil {
			return "", err
		}
		s, lc.partial = strings.TrimRight(lc.partial, "\r\n"), ""
		b.WriteString(s)
		// a literal {n} (or {n+}) ends the line: its n bytes follow
		j := strings.LastIndexByte(s, '{')
		if j < 0 || !strings.HasSuffix(s, "}") {
			break
		}
		n, err := strconv.Atoi(strings.TrimSuffix(s[j+1:len(s)-1], "+"))
		if err != nil {
			break
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(lc.r, lit); err != nil {
			return "", fmt.Errorf("literal of %d bytes: %w", n, err)
		}
		b.Write(lit)
	}
	l := b.String()
	if f := strings.Fields(l); len(f) == 3 && f[0] == "*" && f[2] == "EXISTS" {
		if k, err := strconv.Atoi(f[1]); err == nil {
			lc.exists = max(lc.exists, k)
		}
	}
	return l, nil
}

// cmd sends tag and line and reads up to the tagged reply, within 30 s.
// ok tells OK from NO and BAD; last is the tagged line.
func (lc *loadConn) cmd(tag, line string) (ok bool, last string, err error) {
	if err := lc.send(tag + " " + line); err != nil {
		return false, "", err
	}
	return lc.until(tag, 30*time.Second)
}

// until reads up to the line tagged tag, within d.
func (lc *loadConn) until(tag string, d time.Duration) (ok bool, last string, err error) {
	deadline := time.Now().Add(d)
	for {
		l, err := lc.line(time.Until(deadline))
		if err != nil {
			return false, "", fmt.Errorf("waiting for %s: %w", tag, err)
		}
		if strings.HasPrefix(l, tag+" ") {
			return strings.HasPrefix(l, tag+" OK"), l, nil
		}
	}
}

// idle runs IDLE (RFC 2177) for up to d, ending it early once the
// server tells of more messages than the client knew of at its start.
func (lc *loadConn) idle(tag string, d time.Duration) (saw, ok bool, last string, err error) {
	before := lc.exists
	if err := lc.send(tag + " IDLE"); err != nil {
		return false, false, "", err
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		l, err := lc.line(time.Until(deadline))
		if err != nil {
			return false, false, "", fmt.Errorf("waiting for +: %w", err)
		}
		if strings.HasPrefix(l, "+") {
			break
		}
		if strings.HasPrefix(l, tag+" ") {
			return false, false, l, nil // refused
		}
	}
	for deadline := time.Now().Add(d); lc.exists <= before && time.Now().Before(deadline); {
		if _, err := lc.line(time.Until(deadline)); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			return false, false, "", err
		}
	}
	saw = lc.exists > before
	if err := lc.send("DONE"); err != nil {
		return saw, false, "", err
	}
	ok, last, err = lc.until(tag, 10*time.Second)
	return saw, ok, last, err
}

// renderIMAPLoadTable formats the sides as markdown: a row per binary,
// then latencies per binary and kind of command.
func renderIMAPLoadTable(c imapLoadConfig, sides []imapLoadSide) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nIMAP load, %s, %d CPUs: %d clients for %v on a list of %d imported messages (gen_mbox.py), new mail over SMTP at %d msg/s, clients from %d loopback address(es)\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), c.Clients, c.Duration, c.N, c.Rate, c.Sources)
	b.WriteString("| side | messages | seconds | commands | commands/s | p50 ms | p99 ms | IDLEs | IDLEs saw mail | failed commands | failed clients | new mail sent | peak RSS MiB | end RSS MiB |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range sides {
		if s.Wall <= 0 {
			fmt.Fprintf(&b, "| %s | failed | | | | | | | | | | | | |\n", s.Label)
			continue
		}
		var all []time.Duration // but IDLE, which waits on purpose
		for k := range loadIdle {
			all = append(all, s.Lat[k]...)
		}
		slices.Sort(all)
		fmt.Fprintf(&b, "| %s | %s | %.1f | %d | %.0f | %.1f | %.1f | %d | %d | %d | %d | %d | %s | %s |\n",
			s.Label, countCell(s.Loaded), s.Wall.Seconds(), s.Commands, float64(s.Commands)/s.Wall.Seconds(),
			ms(percentile(all, 0.50)), ms(percentile(all, 0.99)), s.Idles, s.IdlesSaw,
			s.FailedCmds, s.FailedClients, s.Sent, mib(s.PeakRSSKiB), mib(s.EndRSSKiB))
	}
	b.WriteString("\nBy command (IDLE: from IDLE to the OK after DONE; it ends early when new mail is told of)\n\n")
	b.WriteString("| side | command | n | p50 ms | p99 ms | max ms |\n|---|---|---:|---:|---:|---:|\n")
	for _, s := range sides {
		for k, l := range s.Lat {
			mx := time.Duration(0)
			if len(l) > 0 {
				mx = l[len(l)-1]
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %.1f | %.1f | %.1f |\n", s.Label, loadKindNames[k], len(l),
				ms(percentile(l, 0.50)), ms(percentile(l, 0.99)), ms(mx))
		}
	}
	return b.String()
}
