package peertest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"context"
	_ "embed" // scripts the helpers run
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

//go:embed testdata/public-inbox/import_mbox.pl
var importMboxPL []byte

//go:embed testdata/imap_fetch_all.py
var imapFetchAllPY []byte

// piName is the inbox name PIImportMbox gives the inboxes it makes.
const piName = "peertest"

// commandTimeout bounds every peer program a helper runs.
const commandTimeout = 10 * time.Minute

// PIMailbox returns the IMAP mailbox under which public-inbox-imapd, as
// started by PIStartIMAPD, serves epoch of the inbox called name: its
// newsgroup "inbox.NAME" plus ".EPOCH" (each 50,000 articles of an inbox
// form one such mailbox, whatever the git epochs are).
func PIMailbox(name string, epoch int) string {
	return fmt.Sprintf("inbox.%s.%d", name, epoch)
}

// Gunzip returns path unchanged unless it ends in ".gz"; then it writes
// the decompressed bytes to a file in a fresh t.TempDir and returns that
// file's path.
func Gunzip(t testing.TB, path string) string {
	t.Helper()
	if !strings.HasSuffix(path, ".gz") {
		return path
	}
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(path), ".gz"))
	if err := GunzipFile(path, out); err != nil {
		t.Fatalf("peertest: %v", err)
	}
	return out
}

// GunzipFile writes the decompressed src to dst.
func GunzipFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("gunzip: %w", err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(bufio.NewReader(in))
	if err != nil {
		return fmt.Errorf("gunzip %s: %w", src, err)
	}
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("gunzip: %w", err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		out.Close()
		return fmt.Errorf("gunzip %s: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("gunzip %s: %w", src, err)
	}
	return nil
}

// piEnv returns the environment for public-inbox programs using the config
// file cfg; PI_DIR and PI_EMERGENCY point beside it so nothing is written
// to the user's home.
func piEnv(cfg string) []string {
	dir := filepath.Dir(cfg)
	return append(os.Environ(),
		"PI_CONFIG="+cfg,
		"PI_DIR="+dir,
		"PI_EMERGENCY="+filepath.Join(dir, "emergency")+"/",
	)
}

// run runs name with args and env (nil: the test's own), failing t with
// the command's output when it fails or outlives commandTimeout.
func run(t testing.TB, env []string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("peertest: %s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 4000))
	}
	return out
}

// tail returns at most the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// writeScript writes an embedded script into dir and returns its path.
func writeScript(t testing.TB, dir, name string, body []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, body, 0o755); err != nil {
		t.Fatalf("peertest: %v", err)
	}
	return p
}

// PIImportMbox imports an mbox (mboxrd; ".gz" is decompressed first) into
// a new public-inbox v2 inbox in a t.TempDir, the way
// shared/peers/public-inbox/run.sh does it: public-inbox-init -V2 -L full,
// the Mirror filter (accept everything), then import_mbox.pl, which indexes
// inline. It returns the inbox directory and the number of messages
// public-inbox kept (rows of its msgmap). The inbox's name is "peertest";
// any name can be given to PIStartIMAPD.
func PIImportMbox(t testing.TB, mbox string) (inboxDir string, count int) {
	t.Helper()
	Need(t, "public-inbox", "git", "sqlite3")
	mbox, err := filepath.Abs(Gunzip(t, mbox))
	if err != nil {
		t.Fatalf("peertest: %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	inboxDir = filepath.Join(dir, "inbox")
	env := piEnv(cfg)
	run(t, env, "public-inbox-init", "-V2", "-L", "full", "--ng", "inbox."+piName,
		"-c", "listid="+piName+".example.org",
		piName, inboxDir, "http://127.0.0.1/"+piName, piName+"@example.org")
	// mirror-style delivery: accept everything (the default filter rejects
	// text/html parts)
	run(t, env, "git", "config", "-f", cfg, "publicinbox."+piName+".filter", "PublicInbox::Filter::Mirror")
	run(t, env, "git", "config", "-f", cfg, "publicinboxmda.spamcheck", "none")
	script := writeScript(t, dir, "import_mbox.pl", importMboxPL)
	run(t, env, "perl", script, "--no-fsync", piName, mbox)
	return inboxDir, PICount(t, inboxDir)
}

// PIIndex runs public-inbox-index (full level, no fsync) on a v2 inbox
// directory, e.g. a mailswarm list directory (inbox.lock, git/N.git): it
// writes msgmap.sqlite3, xap15/ and all.git there. The inbox need not be
// configured anywhere. It returns the number of messages indexed.
func PIIndex(t testing.TB, inboxDir string) int {
	t.Helper()
	return piIndex(t, inboxDir, "-L", "full")
}

// PIIndexBasic is PIIndex at index level basic with one Xapian shard
// (--jobs=0): the same msgmap and over.sqlite3 (threads), for tests that
// need no full-text search, in about a quarter of the time (easy-ham-1:
// 12 s against 49 s, on a loaded 2-core machine).
func PIIndexBasic(t testing.TB, inboxDir string) int {
	t.Helper()
	return piIndex(t, inboxDir, "-L", "basic", "--jobs=0")
}

func piIndex(t testing.TB, inboxDir string, args ...string) int {
	t.Helper()
	Need(t, "public-inbox", "sqlite3")
	cfg := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(cfg, nil, 0o644); err != nil {
		t.Fatalf("peertest: %v", err)
	}
	args = append(append([]string{"--no-fsync"}, args...), inboxDir)
	run(t, piEnv(cfg), "public-inbox-index", args...)
	return PICount(t, inboxDir)
}

// PICount returns the number of articles in a public-inbox's msgmap.
func PICount(t testing.TB, inboxDir string) int {
	t.Helper()
	Need(t, "sqlite3")
	db := filepath.Join(inboxDir, "msgmap.sqlite3")
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("peertest: %s has no msgmap.sqlite3 (not indexed?): %v", inboxDir, err)
	}
	out := run(t, nil, "sqlite3", "-readonly", db, "SELECT COUNT(*) FROM msgmap")
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("peertest: count msgmap of %s: %q: %v", inboxDir, out, err)
	}
	return n
}

// PIStartIMAPD serves the indexed v2 inbox at inboxDir with
// public-inbox-imapd on 127.0.0.1 and returns the port. name is the inbox
// name (mailboxes: PIMailbox(name, N)), addr its address. Any user name
// and password log in. The server's logs go to files in a t.TempDir; it is
// stopped (SIGTERM, then SIGKILL) in t.Cleanup. The inbox must already be
// indexed: see PIIndex.
func PIStartIMAPD(t testing.TB, name, inboxDir, addr string) (port int) {
	t.Helper()
	Need(t, "public-inbox", "git")
	inboxDir, err := filepath.Abs(inboxDir)
	if err != nil {
		t.Fatalf("peertest: %v", err)
	}
	if _, err := os.Stat(filepath.Join(inboxDir, "msgmap.sqlite3")); err != nil {
		t.Fatalf("peertest: %s is not indexed (no msgmap.sqlite3): call PIIndex first", inboxDir)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	env := piEnv(cfg)
	sec := "publicinbox." + name + "."
	run(t, env, "git", "config", "-f", cfg, sec+"inboxdir", inboxDir)
	run(t, env, "git", "config", "-f", cfg, sec+"address", addr)
	run(t, env, "git", "config", "-f", cfg, sec+"newsgroup", "inbox."+name)

	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		port = FreePort(t)
		logs := filepath.Join(dir, fmt.Sprintf("imapd-%d", attempt))
		lastErr = startIMAPD(t, env, port, logs)
		if lastErr == nil {
			return port
		}
		t.Logf("peertest: public-inbox-imapd attempt %d on port %d: %v", attempt, port, lastErr)
	}
	t.Fatalf("peertest: public-inbox-imapd did not start: %v", lastErr)
	return 0
}

// startIMAPD starts one public-inbox-imapd on port and waits for its
// greeting; on success it registers the cleanup that stops it.
func startIMAPD(t testing.TB, env []string, port int, logs string) error {
	t.Helper()
	// -W0: no master/worker split, so the process we start is the server
	cmd := exec.Command("public-inbox-imapd", "-W0",
		"-l", fmt.Sprintf("imap://127.0.0.1:%d", port),
		"--stdout", logs+".out.log", "--stderr", logs+".err.log")
	cmd.Env = env
	cmd.Stdout = io.Discard
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			return
		case <-time.After(10 * time.Second):
		}
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Logf("peertest: public-inbox-imapd pid %d did not exit after SIGKILL", cmd.Process.Pid)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			errLog, _ := os.ReadFile(logs + ".err.log")
			return fmt.Errorf("exited (%v): %s", err, tail(errLog, 2000))
		default:
		}
		if greeting(port) {
			t.Cleanup(stop)
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			errLog, _ := os.ReadFile(logs + ".err.log")
			return fmt.Errorf("no greeting within 30s: %s", tail(errLog, 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// greeting reports whether an IMAP server on port answers "* OK".
func greeting(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && strings.HasPrefix(line, "* OK")
}

// PIIMAPFetchAll logs in to the IMAP server on 127.0.0.1:port (user and
// password "anonymous"), selects mailbox read-only and fetches every
// message with UID FETCH BODY.PEEK[] in chunks, using python3's imaplib
// (an independent client). It returns the messages in UID order, as the
// server sent them (IMAP line ends are CRLF). It fails t unless it got as
// many messages as the mailbox EXISTS count.
func PIIMAPFetchAll(t testing.TB, port int, mailbox string) [][]byte {
	t.Helper()
	Need(t, "python3")
	dir := t.TempDir()
	script := writeScript(t, dir, "imap_fetch_all.py", imapFetchAllPY)
	out := filepath.Join(dir, "msgs")
	run(t, nil, "python3", script, "--port", strconv.Itoa(port), "--mailbox", mailbox, "--out", out)
	ents, err := os.ReadDir(out)
	if err != nil {
		t.Fatalf("peertest: %v", err)
	}
	// names are zero-padded UIDs, so ReadDir's order is UID order
	msgs := make([][]byte, 0, len(ents))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			t.Fatalf("peertest: %v", err)
		}
		msgs = append(msgs, b)
	}
	return msgs
}

// ReadMboxrd splits an mboxrd file (".gz" allowed) into messages: each
// "From " separator line is dropped, one ">" is removed from lines matching
// ^>+From , and the single empty line mboxrd writes after each message is
// removed. It is a plain reference reader for checking peers' output, not
// the product's parser.
func ReadMboxrd(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := readMaybeGz(path)
	if err != nil {
		t.Fatalf("peertest: %v", err)
	}
	return splitMboxrd(data)
}

func readMaybeGz(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read mbox: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("read mbox %s: %w", path, err)
		}
		r = zr
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read mbox %s: %w", path, err)
	}
	return b, nil
}

func splitMboxrd(data []byte) [][]byte {
	var msgs [][]byte
	var cur []byte
	inMsg := false
	flush := func() {
		if !inMsg {
			return
		}
		// mboxrd: the message is followed by one empty line
		cur = bytes.TrimSuffix(cur, []byte("\n"))
		msgs = append(msgs, cur)
		cur = nil
	}
	prevBlank := true
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i+1], data[i+1:]
		} else {
			data = nil
		}
		if prevBlank && bytes.HasPrefix(line, []byte("From ")) {
			flush()
			inMsg = true
			prevBlank = false
			continue
		}
		prevBlank = len(bytes.TrimRight(line, "\r\n")) == 0
		if !inMsg {
			continue
		}
		if q := bytes.TrimLeft(line, ">"); len(q) < len(line) && bytes.HasPrefix(q, []byte("From ")) {
			line = line[1:]
		}
		cur = append(cur, line...)
	}
	flush()
	return msgs
}

// PIDroppedHeaders are the header fields public-inbox 1.9 removes from
// every message it imports (PublicInbox::Import @UNWANTED_HEADERS and
// PublicInbox::MDA @BAD_HEADERS), lower case. mailswarm stores messages
// unchanged, so a byte comparison with public-inbox's copy must first drop
// these: see PIStrip.
var PIDroppedHeaders = []string{
	"bytes", "lines", "content-length", "status", "x-status",
	"delivered-to", "x-original-to",
	"approved", "approve", "x-approved", "x-approve", "urgent",
	"return-receipt-to", "disposition-notification-to", "x-confirm-reading-to",
	"x-pmrqc",
}

// PIStrip returns msg without the header fields in PIDroppedHeaders
// (continuation lines included): the bytes public-inbox would store for it.
// Line ends are kept as they are.
func PIStrip(msg []byte) []byte {
	drop := make(map[string]bool, len(PIDroppedHeaders))
	for _, h := range PIDroppedHeaders {
		drop[h] = true
	}
	out := make([]byte, 0, len(msg))
	rest := msg
	skipping := false
	for len(rest) > 0 {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			// end of the header: the body is kept as it is
			out = append(out, line...)
			return append(out, rest...)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if !skipping {
				out = append(out, line...)
			}
			continue
		}
		skipping = false
		if i := bytes.IndexByte(line, ':'); i > 0 {
			skipping = drop[strings.ToLower(strings.TrimRight(string(line[:i]), " \t"))]
		}
		if !skipping {
			out = append(out, line...)
		}
	}
	return out
}

// PIThreads returns, for the indexed v2 inbox at inboxDir, each article's
// thread id (over.sqlite3 tid) keyed by the git blob id (hex) of the
// message, so that it can be matched with another index of the same
// repositories whatever numbers public-inbox gave the articles (it skips a
// message without a Message-ID, or with one an earlier different message
// has, when it indexes a v2 inbox it did not write). Ghosts (num < 0) are
// left out. Only the partition tid draws is meaningful: its values depend
// on the order in which public-inbox met the messages and merged threads.
func PIThreads(t testing.TB, inboxDir string) map[string]int64 {
	t.Helper()
	Need(t, "sqlite3")
	over := filepath.Join(inboxDir, "xap15", "over.sqlite3")
	if _, err := os.Stat(over); err != nil {
		t.Fatalf("peertest: %s is not indexed: %v", inboxDir, err)
	}
	out := run(t, nil, "sqlite3", "-readonly", "-separator", " ", over,
		"SELECT tid, hex(ddd) FROM over WHERE num > 0")
	tids := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		ts, dh, ok := strings.Cut(line, " ")
		tid, err := strconv.ParseInt(ts, 10, 64)
		if !ok || err != nil {
			t.Fatalf("peertest: %s: row %.100q", over, line)
		}
		blob, err := piDocBlob(dh)
		if err != nil {
			t.Fatalf("peertest: %s: tid %d: %v", over, tid, err)
		}
		tids[blob] = tid
	}
	return tids
}

// piDocBlob returns the blob id in an over.sqlite3 ddd column given in
// hex: zlib-compressed Smsg to_doc_data, whose sixth line is the blob id.
func piDocBlob(hexDDD string) (string, error) {
	z, err := hex.DecodeString(hexDDD)
	if err != nil {
		return "", fmt.Errorf("ddd: %w", err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		return "", fmt.Errorf("ddd: %w", err)
	}
	dd, err := io.ReadAll(zr)
	if err != nil {
		return "", fmt.Errorf("ddd: %w", err)
	}
	lines := strings.Split(string(dd), "\n")
	if len(lines) < 6 || len(lines[5]) < 40 {
		return "", fmt.Errorf("ddd: no blob id in %.200q", dd)
	}
	return lines[5], nil
}
