package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// gnuTime is GNU time's path, or "" when it is missing.
var gnuTime = func() string {
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		return "/usr/bin/time"
	}
	return ""
}()

// measurement is one timed command.
type measurement struct {
	Wall   time.Duration
	RSSKiB int64 // peak resident set, -1 if unknown
}

// timed runs name with args (env nil: ours) under GNU time -v, with its
// standard output and error going to logBase+".out" and ".err", and
// returns the wall time and the peak RSS. The error carries the tail of
// the command's standard error.
func timed(ctx context.Context, env []string, logBase, name string, args ...string) (measurement, error) {
	m := measurement{RSSKiB: -1}
	argv := append([]string{name}, args...)
	timeFile := logBase + ".time"
	if gnuTime != "" {
		argv = append([]string{gnuTime, "-v", "-o", timeFile}, argv...)
	}
	stdout, err := os.Create(logBase + ".out")
	if err != nil {
		return m, fmt.Errorf("run %s: %w", name, err)
	}
	defer stdout.Close()
	stderr, err := os.Create(logBase + ".err")
	if err != nil {
		return m, fmt.Errorf("run %s: %w", name, err)
	}
	defer stderr.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.WaitDelay = 10 * time.Second
	t0 := time.Now()
	runErr := cmd.Run()
	m.Wall = time.Since(t0)
	if gnuTime != "" {
		if b, err := os.ReadFile(timeFile); err == nil {
			m.RSSKiB = parseMaxRSS(b)
		}
	}
	if runErr != nil {
		errText, _ := os.ReadFile(logBase + ".err")
		return m, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), runErr, lastLines(errText, 5))
	}
	return m, nil
}

// parseMaxRSS returns "Maximum resident set size (kbytes)" from GNU time
// -v output, or -1.
func parseMaxRSS(b []byte) int64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "Maximum resident set size (kbytes):"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// lastLines returns the last n non-empty lines of b, joined by " | ".
func lastLines(b []byte, n int) string {
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "(no output)"
	}
	return strings.Join(lines, " | ")
}

// diskKiB returns the disk space used by the files under dir, in KiB, as
// du -sk counts it (allocated blocks, hard links once).
func diskKiB(dir string) (int64, error) {
	var blocks int64
	seen := make(map[[2]uint64]bool)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			blocks += (fi.Size() + 511) / 512
			return nil
		}
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if seen[key] {
			return nil
		}
		seen[key] = true
		blocks += st.Blocks
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	return blocks / 2, nil
}

// countMbox counts the "From " separator lines of an mbox (a line starting
// "From " at the start of the file or after an empty line).
func countMbox(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("count messages: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	n := 0
	prevBlank := true
	for {
		line, err := r.ReadSlice('\n')
		if len(line) > 0 {
			if prevBlank && bytes.HasPrefix(line, []byte("From ")) {
				n++
			}
			prevBlank = len(bytes.TrimRight(line, "\r\n")) == 0
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			// a very long line: its rest is not a line start
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			prevBlank = false
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, fmt.Errorf("count messages in %s: %w", path, err)
		}
	}
}

// sharedDir returns flagDir, else $MAILSWARM_SHARED, else the first
// "shared" directory beside the module root or one of its parents.
func sharedDir(flagDir, root string) (string, error) {
	for _, d := range []string{flagDir, os.Getenv("MAILSWARM_SHARED")} {
		if d == "" {
			continue
		}
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("shared directory %s: not a directory", d)
		}
		return filepath.Abs(d)
	}
	for d := root; ; {
		parent := filepath.Dir(d)
		cand := filepath.Join(parent, "shared")
		if fi, err := os.Stat(filepath.Join(cand, "corpora")); err == nil && fi.IsDir() {
			return cand, nil
		}
		if parent == d {
			return "", fmt.Errorf("no shared directory beside %s (use -shared or MAILSWARM_SHARED)", root)
		}
		d = parent
	}
}

// initPIInbox makes a fresh public-inbox v2 inbox under dir at full index
// level, taking every message (Mirror filter, no spam check), after
// checking that tools are installed. It returns the inbox directory and
// the environment (PI_CONFIG and friends) public-inbox commands need.
func initPIInbox(ctx context.Context, dir string, tools ...string) (inbox string, env []string, err error) {
	for _, p := range tools {
		if _, err := exec.LookPath(p); err != nil {
			return "", nil, fmt.Errorf("public-inbox: %s not in PATH (apt-get install public-inbox sqlite3)", p)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	cfg := filepath.Join(dir, "config")
	inbox = filepath.Join(dir, "inbox")
	env = append(os.Environ(), "PI_CONFIG="+cfg, "PI_DIR="+dir, "PI_EMERGENCY="+filepath.Join(dir, "emergency")+"/")
	setup := [][]string{
		{"public-inbox-init", "-V2", "-L", "full", "--ng", "inbox." + benchList,
			"-c", "listid=" + benchList + ".lists.example.org",
			benchList, inbox, "http://127.0.0.1/" + benchList, benchAddr},
		// mirror-style delivery: accept everything
		{"git", "config", "-f", cfg, "publicinbox." + benchList + ".filter", "PublicInbox::Filter::Mirror"},
		{"git", "config", "-f", cfg, "publicinboxmda.spamcheck", "none"},
	}
	for _, argv := range setup {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = env
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", nil, fmt.Errorf("%s: %w: %s", argv[0], err, lastLines(b, 5))
		}
	}
	return inbox, env, nil
}

// workDir makes a fresh work directory for one bench run (prefix as for
// os.MkdirTemp). cleanup removes it, unless keep, when its path is logged
// instead.
func workDir(prefix string, keep bool, log io.Writer) (dir string, cleanup func(), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, fmt.Errorf("work directory: %w", err)
	}
	if keep {
		fmt.Fprintf(log, "bench: work directory %s (kept)\n", dir)
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// runsFailed is the error for the runs of a bench command that failed
// (each "label: error"), or nil when none did.
func runsFailed(failed []string) error {
	if len(failed) == 0 {
		return nil
	}
	return fmt.Errorf("%d run(s) failed:\n  %s", len(failed), strings.Join(failed, "\n  "))
}
