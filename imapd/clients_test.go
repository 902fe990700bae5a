package imapd_test

// Interop tests with the IMAP clients people use to read a list archive:
// mbsync (isync), mutt, Node's imapflow and Python's imaplib. Each runs the
// real program against newTestServer on 127.0.0.1, loaded with real mail,
// and checks what the client got against the bytes the archive stores.
// The scripts they run are in testdata/clients.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailswarm/archive"
	"mailswarm/internal/peertest"
	"mailswarm/message"
)

// clientCorpus is the real mail the client tests archive: SpamAssassin's
// hard-ham-1, 250 newsletters and notices of 2002 (HTML, multipart,
// quoted-printable, ISO-2022-JP, up to 300 KB each).
const clientCorpus = "spamassassin/hard-ham-1.mboxrd.gz"

// Words the clients search for. searchBody was chosen, by reading the
// corpus, so that every message containing it has it in 7-bit or 8-bit
// text (none only in base64 or split by a quoted-printable soft break):
// a byte search of the raw bodies finds exactly the messages a
// MIME-decoding BODY search must find (8 of them). searchSubject is in 9
// plain ASCII subjects.
const (
	searchBody    = "palladium"
	searchSubject = "Dilbert"
)

// clientTimeout bounds each run of a client program.
const clientTimeout = 2 * time.Minute

// article is one message as the archive stores it.
type article struct {
	uid     uint32
	raw     []byte
	arrived int64 // INTERNALDATE, unix seconds
}

// corpusMsgs returns the messages of clientCorpus.
func corpusMsgs(t *testing.T) [][]byte {
	t.Helper()
	msgs := peertest.ReadMboxrd(t, peertest.Corpus(t, clientCorpus))
	if len(msgs) < 200 {
		t.Fatalf("%s: %d messages, want at least 200", clientCorpus, len(msgs))
	}
	return msgs
}

// archived returns the list's articles, read back from the archive.
func archived(t *testing.T, ts *testServer) []article {
	t.Helper()
	var arts []article
	err := ts.l.Articles(context.Background(), 1, 0, false, func(a *archive.Article) error {
		raw, err := ts.l.Read(a)
		if err != nil {
			return err
		}
		arts = append(arts, article{uid: uint32(a.Num), raw: raw, arrived: a.Arrived})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return arts
}

// addOne archives raw while clients are connected and returns it as stored.
func addOne(t *testing.T, ts *testServer, raw []byte) article {
	t.Helper()
	res, err := ts.l.Add(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if res.Added != 1 {
		t.Fatalf("Add: %+v, want one message added", res)
	}
	arts := archived(t, ts)
	a := arts[len(arts)-1]
	if int64(a.uid) != res.Last {
		t.Fatalf("last article %d, Add said %d", a.uid, res.Last)
	}
	return a
}

// crlf is what IMAP sends of a stored message: every bare LF made CRLF.
func crlf(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// lf undoes crlf, as clients that store mail with Unix line endings do:
// every CRLF becomes LF.
func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// parseMsg parses a message's header and returns it with the body.
func parseMsg(t *testing.T, raw []byte) (mail.Header, []byte) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("parse message: %v", err)
	}
	var body bytes.Buffer
	body.ReadFrom(m.Body)
	return m.Header, body.Bytes()
}

// wantBody returns the UIDs of arts whose body holds word (ASCII case
// insensitive), by a plain byte search: see searchBody.
func wantBody(t *testing.T, arts []article, word string) []uint32 {
	var out []uint32
	w := bytes.ToLower([]byte(word))
	for _, a := range arts {
		_, body := parseMsg(t, a.raw)
		if bytes.Contains(bytes.ToLower(body), w) {
			out = append(out, a.uid)
		}
	}
	return out
}

// wantSubject returns the UIDs of arts whose decoded Subject holds word.
func wantSubject(t *testing.T, arts []article, word string) []uint32 {
	var out []uint32
	for _, a := range arts {
		h, _ := parseMsg(t, a.raw)
		s := h.Get("Subject")
		if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
			s = d
		}
		if strings.Contains(strings.ToLower(s), strings.ToLower(word)) {
			out = append(out, a.uid)
		}
	}
	return out
}

// wantMailboxes is what LIST "" "*" must show for a server holding the
// list "test" with arts: INBOX, the list, and one mailbox per year of
// arrival (a year never goes back: see listState.refresh).
func wantMailboxes(arts []article) []string {
	out := []string{"INBOX", "test"}
	year := 0
	for _, a := range arts {
		if y := time.Unix(a.arrived, 0).UTC().Year(); y > year {
			year = y
			out = append(out, fmt.Sprintf("test/%04d", y))
		}
	}
	return out
}

// runClient runs a client program in dir with extra environment and a
// deadline, and returns its standard output; it fails t, showing both
// outputs, when the program fails.
func runClient(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	t.Logf("%s: %v", name, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%s %s: %v (context: %v)\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, ctx.Err(),
			tail(stdout.Bytes()), tail(stderr.Bytes()))
	}
	return stdout.Bytes()
}

// tail returns the end of a program's output, for error messages.
func tail(b []byte) string {
	const max = 4000
	if len(b) > max {
		b = append([]byte("..."), b[len(b)-max:]...)
	}
	return string(b)
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// flagsOf returns the FLAGS a raw client logged in as user sees on uid.
func flagsOf(t *testing.T, ts *testServer, user string, uid uint32) string {
	t.Helper()
	c := ts.dial(t, user)
	mustCmd(t, c, "SELECT test")
	rs := mustCmd(t, c, fmt.Sprintf("UID FETCH %d (FLAGS)", uid))
	m := regexp.MustCompile(`FLAGS \(([^)]*)\)`).FindSubmatch([]byte(rawStrings(rs)))
	if m == nil {
		t.Fatalf("%s: UID FETCH %d (FLAGS): no FLAGS in %q", user, uid, rawStrings(rs))
	}
	return string(m[1])
}

// TestMbsync mirrors the list into a Maildir with mbsync (isync), as a
// reader who wants the archive offline does, three times: everything,
// then nothing new, then the one message archived in between.
func TestMbsync(t *testing.T) {
	peertest.Need(t, "mbsync")
	msgs := corpusMsgs(t)
	ts := newTestServer(t, msgs[:len(msgs)-1], nil)
	arts := archived(t, ts)
	if len(arts) != len(msgs)-1 {
		t.Fatalf("archived %d messages of %d", len(arts), len(msgs)-1)
	}
	// Flags travel too: alice's \Flagged and \Seen on one message must
	// become the Maildir flags F and S.
	flagged := arts[2].uid
	c := ts.dial(t, "alice")
	mustCmd(t, c, "SELECT test")
	mustCmd(t, c, fmt.Sprintf(`UID STORE %d +FLAGS (\Flagged \Seen)`, flagged))

	dir := t.TempDir()
	maildir := filepath.Join(dir, "mail")
	config := filepath.Join(dir, "mbsyncrc")
	if err := os.Mkdir(maildir, 0o755); err != nil { // mbsync wants Path to exist
		t.Fatal(err)
	}
	// CopyArrivalDate: the files' mtimes are the INTERNALDATEs.
	// SyncState *: the state lives in the mailbox, nothing in HOME.
	rc := fmt.Sprintf(`IMAPAccount archive
Host 127.0.0.1
Port %s
User alice
Pass any-password
SSLType None
AuthMechs LOGIN

IMAPStore archive-far
Account archive

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel test
Far :archive-far:
Near :local:
Patterns test
Sync Pull
Create Near
SyncState *
CopyArrivalDate yes
`, port(t, ts.addr), maildir, maildir)
	if err := os.WriteFile(config, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + dir}
	mbsync := func() map[uint32]maildirFile {
		t.Helper()
		runClient(t, dir, env, "mbsync", "-c", config, "test")
		return readMaildir(t, filepath.Join(maildir, "test"))
	}

	first := mbsync()
	checkMaildir(t, first, arts, map[uint32]string{flagged: "FS"})

	// Nothing new: the same messages, untouched, and no error.
	second := mbsync()
	checkMaildir(t, second, arts, map[uint32]string{flagged: "FS"})

	// One message archived since: mbsync fetches it and only it.
	added := addOne(t, ts, msgs[len(msgs)-1])
	third := mbsync()
	checkMaildir(t, third, append(arts, added), map[uint32]string{flagged: "FS"})
}

// maildirFile is one message file mbsync wrote.
type maildirFile struct {
	name  string // under the mailbox directory: new/... or cur/...
	flags string // Maildir flags, after ":2,"
	data  []byte
	mtime time.Time
}

// mbsync names files "<unique>,U=<uid>:2,<flags>" (without AltMap).
var maildirName = regexp.MustCompile(`,U=([0-9]+):2,([A-Z]*)$`)

func readMaildir(t *testing.T, box string) map[uint32]maildirFile {
	t.Helper()
	out := map[uint32]maildirFile{}
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(box, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			name := sub + "/" + e.Name()
			m := maildirName.FindStringSubmatch(e.Name())
			if m == nil {
				t.Errorf("maildir file %s: no ,U=<uid>:2,<flags>", name)
				continue
			}
			uid, _ := strconv.ParseUint(m[1], 10, 32)
			p := filepath.Join(box, sub, e.Name())
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if old, dup := out[uint32(uid)]; dup {
				t.Errorf("UID %d twice: %s and %s", uid, old.name, name)
			}
			out[uint32(uid)] = maildirFile{name: name, flags: m[2], data: data, mtime: fi.ModTime()}
		}
	}
	return out
}

// mbsync adds its own header to every message it stores, at the end of
// the header: "X-TUID: " and 12 base64 characters, which it uses to find
// a message again after an interrupted copy.
var xTUID = regexp.MustCompile(`\nX-TUID: [A-Za-z0-9+/]{12}\n`)

// checkMaildir checks that files holds exactly arts, byte for byte, with
// the given Maildir flags (none for the others).
func checkMaildir(t *testing.T, files map[uint32]maildirFile, arts []article, flags map[uint32]string) {
	t.Helper()
	if len(files) != len(arts) {
		t.Errorf("maildir holds %d messages, the list %d", len(files), len(arts))
	}
	bad := 0
	for _, a := range arts {
		f, ok := files[a.uid]
		if !ok {
			t.Errorf("UID %d: not in the maildir", a.uid)
			bad++
			continue
		}
		// What we normalise: the server sends the stored bytes with CRLF
		// line endings (crlf); mbsync writes the Maildir with LF, so the
		// file must be the stored bytes with every CRLF made LF (lf), plus
		// mbsync's X-TUID line, which is removed here (once, in the
		// header). Nothing else. (mbsync also drops bare CRs, which
		// clientCorpus does not have.)
		data := f.data
		hdrEnd := bytes.Index(data, []byte("\n\n"))
		if hdrEnd < 0 {
			hdrEnd = len(data)
		}
		if loc := xTUID.FindIndex(data[:min(hdrEnd+1, len(data))]); loc != nil {
			data = append(slices.Clip(data[:loc[0]]), data[loc[1]-1:]...)
		}
		if want := lf(a.raw); !bytes.Equal(data, want) {
			bad++
			if bad <= 3 {
				t.Errorf("UID %d (%s): %d bytes differ from the %d archived (after CRLF->LF and without X-TUID)\ngot  %q\nwant %q",
					a.uid, f.name, len(data), len(want), head(data), head(want))
			}
		}
		if want := time.Unix(a.arrived, 0); !f.mtime.Equal(want) {
			t.Errorf("UID %d: mtime %v, want INTERNALDATE %v", a.uid, f.mtime.UTC(), want.UTC())
		}
		if f.flags != flags[a.uid] {
			t.Errorf("UID %d: Maildir flags %q, want %q", a.uid, f.flags, flags[a.uid])
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d messages differ", bad, len(arts))
	}
}

func head(b []byte) []byte { return b[:min(len(b), 300)] }

// TestMutt reads the list with mutt over IMAP: it opens the list, pipes
// one message to a file, copies it to an mbox and displays it, which
// must set \Seen for its user only, then copies the messages a
// server-side search (mutt's =b, IMAP SEARCH BODY) finds to another mbox.
func TestMutt(t *testing.T) {
	peertest.Need(t, "mutt", "script")
	msgs := corpusMsgs(t)
	ts := newTestServer(t, msgs, nil)
	arts := archived(t, ts)
	// Message 42: text/plain in ISO-2022-JP (escape sequences in the
	// body), with an RFC 2047 subject.
	const seq = 42
	want := arts[seq-1]

	dir := t.TempDir()
	piped := filepath.Join(dir, "piped.eml")
	saved := filepath.Join(dir, "saved.mbox")
	found := filepath.Join(dir, "found.mbox")
	// No TLS; no caches, so mutt fetches from the server; pipe the
	// message undecoded; never ask anything (quit, no purge, no move).
	// The push runs once the index is up: jump to the message, pipe it,
	// copy it to a new mbox, show it (marking it read), tag what the
	// server finds for =b, copy the tagged messages to another mbox and
	// quit, which stores the flags on the server.
	rc := fmt.Sprintf(`set imap_user=alice
set imap_pass=any-password
set folder=imap://127.0.0.1:%[1]s/
set spoolfile=+test
set ssl_starttls=no
set ssl_force_tls=no
set header_cache=
set message_cachedir=
set sort=mailbox-order
set pipe_decode=no
set wait_key=no
set confirmappend=no
set confirmcreate=no
set mbox_type=mbox
set quit=yes
set delete=no
set move=no
set mail_check=0
set timeout=0
push "<jump>%[2]d<enter><pipe-message>cat > %[3]s<enter><copy-message>%[4]s<enter><display-message><exit><tag-pattern>=b %[5]s<enter><tag-prefix><copy-message>%[6]s<enter><quit>"
`, port(t, ts.addr), seq, piped, saved, searchBody, found)
	muttrc := filepath.Join(dir, "muttrc")
	if err := os.WriteFile(muttrc, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(dir, `'"\ $`+"`") {
		t.Fatalf("temp dir %q needs quoting in a shell command", dir)
	}
	// mutt needs a terminal: script(1) gives it a pty (-e: mutt's exit
	// status; -q: no banner; the typescript goes to /dev/null).
	runClient(t, dir, []string{"HOME=" + dir, "TERM=dumb", "MAIL="},
		"script", "-qec", fmt.Sprintf("mutt -n -F %s -f imap://alice@127.0.0.1:%s/test", muttrc, port(t, ts.addr)), "/dev/null")

	// pipe-message with pipe_decode unset writes the message as
	// fetched; mutt stores it with LF line endings, so compare with the
	// stored bytes with CRLF made LF.
	got, err := os.ReadFile(piped)
	if err != nil {
		t.Fatalf("mutt did not pipe the message: %v", err)
	}
	if !bytes.Equal(got, lf(want.raw)) {
		t.Errorf("piped message %d: %d bytes, archived %d; differ\ngot  %q\nwant %q", seq, len(got), len(want.raw), head(got), head(want.raw))
	}

	// The mbox copy: mutt adds its From_ line and Status headers, and
	// quotes body lines starting "From "; compare what a reader sees.
	mbox := readMbox(t, saved)
	if len(mbox) != 1 {
		t.Fatalf("saved mbox holds %d messages, want 1", len(mbox))
	}
	gh, gb := parseMsg(t, mbox[0])
	wh, wb := parseMsg(t, lf(want.raw))
	for _, k := range []string{"Subject", "From", "Date", "Message-Id", "Content-Type"} {
		if gh.Get(k) != wh.Get(k) {
			t.Errorf("saved message: %s %q, want %q", k, gh.Get(k), wh.Get(k))
		}
	}
	if !bytes.Equal(gb, wb) {
		t.Errorf("saved message: body of %d bytes differs from the archived %d", len(gb), len(wb))
	}

	// The search: the messages holding searchBody, in mailbox order.
	var gotIDs, wantIDs []string
	for _, m := range readMbox(t, found) {
		h, _ := parseMsg(t, m)
		gotIDs = append(gotIDs, h.Get("Message-Id"))
	}
	byUID := map[uint32]article{}
	for _, a := range arts {
		byUID[a.uid] = a
	}
	for _, uid := range wantBody(t, arts, searchBody) {
		h, _ := parseMsg(t, byUID[uid].raw)
		wantIDs = append(wantIDs, h.Get("Message-Id"))
	}
	if !slices.Equal(gotIDs, wantIDs) {
		t.Errorf("mutt =b %s copied %q, want %q", searchBody, gotIDs, wantIDs)
	}

	// Displaying the message made it \Seen, for alice only.
	if fl := flagsOf(t, ts, "alice", want.uid); !slices.Contains(strings.Fields(fl), `\Seen`) {
		t.Errorf("alice's flags on UID %d after mutt displayed it: (%s), want \\Seen", want.uid, fl)
	}
	if fl := flagsOf(t, ts, "bob", want.uid); fl != "" {
		t.Errorf("bob's flags on UID %d: (%s), want none (alice read it, not bob)", want.uid, fl)
	}
	if fl := flagsOf(t, ts, "alice", arts[seq].uid); slices.Contains(strings.Fields(fl), `\Seen`) {
		t.Errorf("alice's flags on UID %d, which mutt did not display: (%s), want no \\Seen", arts[seq].uid, fl)
	}
}

// readMbox returns the messages of an mbox file mutt wrote (mboxo: it
// quotes body lines starting "From ").
func readMbox(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("mutt did not write %s: %v", filepath.Base(path), err)
	}
	defer f.Close()
	var msgs [][]byte
	if err := message.ReadMbox(f, message.MboxO, func(m []byte) error {
		msgs = append(msgs, bytes.Clone(m))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// imapflowEvent is one line imapflow.mjs prints.
type imapflowEvent struct {
	Event     string `json:"event"`
	Mailboxes []struct {
		Path      string   `json:"path"`
		Delimiter string   `json:"delimiter"`
		Flags     []string `json:"flags"`
	} `json:"mailboxes"`
	Path        string            `json:"path"`
	Exists      uint32            `json:"exists"`
	UIDNext     uint32            `json:"uidNext"`
	UIDValidity string            `json:"uidValidity"`
	Messages    []imapflowMessage `json:"messages"`
	BodyUIDs    []uint32          `json:"bodyUIDs"`
	SubjectUIDs []uint32          `json:"subjectUIDs"`
	Count       uint32            `json:"count"`
	PrevCount   uint32            `json:"prevCount"`
	imapflowMessage
}

type imapflowMessage struct {
	Seq          uint32   `json:"seq"`
	UID          uint32   `json:"uid"`
	Size         int      `json:"size"`
	Flags        []string `json:"flags"`
	MessageID    string   `json:"messageId"`
	Subject      string   `json:"subject"`
	InternalDate string   `json:"internalDate"`
	SourceLength int      `json:"sourceLength"`
	SourceSHA256 string   `json:"sourceSHA256"`
}

// TestImapflow runs Node's imapflow (testdata/clients/imapflow): LIST,
// SELECT, FETCH of every envelope and source, SEARCH, then IDLE while the
// test archives one more message, which the client must be told of.
func TestImapflow(t *testing.T) {
	peertest.Need(t, "node", "npm")
	needNode(t, 20)
	msgs := corpusMsgs(t)
	ts := newTestServer(t, msgs[:len(msgs)-1], nil)
	arts := archived(t, ts)

	// imapflow, pinned by package-lock.json, into a temporary directory.
	dir := t.TempDir()
	for _, name := range []string{"package.json", "package-lock.json", "imapflow.mjs"} {
		b, err := os.ReadFile(filepath.Join("testdata", "clients", "imapflow", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runClient(t, dir, nil, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")

	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "imapflow.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "IMAP_HOST=127.0.0.1", "IMAP_PORT="+port(t, ts.addr), "IMAP_USER=alice",
		"IMAP_MAILBOX=test", "SEARCH_BODY="+searchBody, "SEARCH_SUBJECT="+searchSubject)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	events := map[string]imapflowEvent{}
	var order []string
	var added article
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		var ev imapflowEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("imapflow.mjs printed %q: %v", head(sc.Bytes()), err)
		}
		events[ev.Event] = ev
		order = append(order, ev.Event)
		if ev.Event == "idling" {
			// The server said "+ idling": archive the last message now.
			added = addOne(t, ts, msgs[len(msgs)-1])
		}
	}
	werr := cmd.Wait()
	t.Logf("node imapflow.mjs: %v", time.Since(start).Round(time.Millisecond))
	if werr != nil || sc.Err() != nil {
		t.Fatalf("node imapflow.mjs: %v, %v (context: %v); events %v\nstderr:\n%s", werr, sc.Err(), ctx.Err(), order, tail(stderr.Bytes()))
	}
	if want := []string{"list", "mailbox", "messages", "search", "idling", "exists", "new", "done"}; !slices.Equal(order, want) {
		t.Fatalf("imapflow.mjs events %v, want %v\nstderr:\n%s", order, want, tail(stderr.Bytes()))
	}

	var boxes []string
	for _, b := range events["list"].Mailboxes {
		boxes = append(boxes, b.Path)
		if b.Delimiter != "/" {
			t.Errorf("LIST: %s has delimiter %q, want /", b.Path, b.Delimiter)
		}
	}
	if want := wantMailboxes(arts); !slices.Equal(boxes, want) {
		t.Errorf("LIST: %q, want %q", boxes, want)
	}

	mb := events["mailbox"]
	last := arts[len(arts)-1].uid
	if mb.Path != "test" || mb.Exists != uint32(len(arts)) || mb.UIDNext != last+1 ||
		mb.UIDValidity != strconv.FormatUint(uint64(ts.l.UIDValidity("test")), 10) {
		t.Errorf("SELECT test: path %q exists %d uidNext %d uidValidity %s; want test, %d, %d, %d",
			mb.Path, mb.Exists, mb.UIDNext, mb.UIDValidity, len(arts), last+1, ts.l.UIDValidity("test"))
	}

	got := events["messages"].Messages
	if len(got) != len(arts) {
		t.Errorf("FETCH 1:*: %d messages, want %d", len(got), len(arts))
	}
	for i, a := range arts[:min(len(arts), len(got))] {
		checkImapflowMessage(t, got[i], uint32(i+1), a)
	}

	s := events["search"]
	if want := wantBody(t, arts, searchBody); !slices.Equal(s.BodyUIDs, want) {
		t.Errorf("SEARCH BODY %s: %v, want %v", searchBody, s.BodyUIDs, want)
	}
	if want := wantSubject(t, arts, searchSubject); !slices.Equal(s.SubjectUIDs, want) {
		t.Errorf("SEARCH SUBJECT %s: %v, want %v", searchSubject, s.SubjectUIDs, want)
	}

	ex := events["exists"]
	if ex.Path != "test" || ex.Count != uint32(len(arts)+1) || ex.PrevCount != uint32(len(arts)) {
		t.Errorf("IDLE: exists event %+v, want path test, count %d, prevCount %d", ex, len(arts)+1, len(arts))
	}
	nw := events["new"]
	nw.Seq = uint32(len(arts) + 1) // fetchOne does not report it
	checkImapflowMessage(t, nw.imapflowMessage, nw.Seq, added)
}

// needNode skips t (fails it under CI, as peertest.Need does) unless node
// is at least version major: imapflow 2 requires Node 20, and Debian 12's
// own nodejs package is 18.
func needNode(t *testing.T, major int) {
	t.Helper()
	out, err := exec.Command("node", "--version").Output()
	v := strings.TrimSpace(string(out))
	m, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	if n, aerr := strconv.Atoi(m); err == nil && aerr == nil && n >= major {
		return
	}
	msg := fmt.Sprintf("need node >= %d for imapflow 2, have %q (%v)", major, v, err)
	if peertest.InCI() {
		t.Fatalf("%s (CI is set, so this fails: .ci/run must provide it)", msg)
	}
	t.Skipf("%s: skipping", msg)
}

// checkImapflowMessage compares what imapflow fetched with the archive.
func checkImapflowMessage(t *testing.T, m imapflowMessage, seq uint32, a article) {
	t.Helper()
	wire := crlf(a.raw)
	sum := sha256.Sum256(wire)
	if m.Seq != seq || m.UID != a.uid {
		t.Errorf("message %d: seq %d UID %d, want UID %d", seq, m.Seq, m.UID, a.uid)
	}
	if m.SourceLength != len(wire) || m.SourceSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("UID %d: source of %d bytes (sha256 %s), want the archived %d bytes with CRLF (%x)",
			a.uid, m.SourceLength, m.SourceSHA256, len(wire), sum)
	}
	if m.Size != 0 && m.Size != len(wire) { // fetchOne of the new message asks no size
		t.Errorf("UID %d: RFC822.SIZE %d, want %d", a.uid, m.Size, len(wire))
	}
	// Message-ID and Subject as the header has them; whitespace runs,
	// folding included, count as one space (net/mail and imapflow unfold
	// differently). Subjects with RFC 2047 words or 8-bit bytes are left
	// out: their charsets are imapflow's business.
	h, _ := parseMsg(t, a.raw)
	if got, want := spaces(m.MessageID), spaces(h.Get("Message-Id")); got != want {
		t.Errorf("UID %d: ENVELOPE message-id %q, want %q", a.uid, got, want)
	}
	if subj := h.Get("Subject"); !strings.Contains(subj, "=?") && isASCII(subj) {
		if got, want := spaces(m.Subject), spaces(subj); got != want {
			t.Errorf("UID %d: ENVELOPE subject %q, want %q", a.uid, got, want)
		}
	}
	if m.InternalDate != "" {
		if d, err := time.Parse(time.RFC3339, m.InternalDate); err != nil || d.Unix() != a.arrived {
			t.Errorf("UID %d: INTERNALDATE %s, want %s", a.uid, m.InternalDate, time.Unix(a.arrived, 0).UTC().Format(time.RFC3339))
		}
	}
	if len(m.Flags) != 0 {
		t.Errorf("UID %d: flags %q, want none", a.uid, m.Flags)
	}
}

func spaces(s string) string { return strings.Join(strings.Fields(s), " ") }

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// TestPythonImaplib drives the server with Python's imaplib
// (testdata/clients/imaplib_client.py): LIST, SELECT, FETCH RFC822 (which
// sets \Seen) and BODY.PEEK[] (which does not), UID SEARCH, UID STORE
// +FLAGS (\Flagged), then the flags from a second connection of the same
// user and from another user.
func TestPythonImaplib(t *testing.T) {
	peertest.Need(t, "python3")
	msgs := corpusMsgs(t)
	ts := newTestServer(t, msgs, nil)
	arts := archived(t, ts)
	script, err := filepath.Abs(filepath.Join("testdata", "clients", "imaplib_client.py"))
	if err != nil {
		t.Fatal(err)
	}
	const rfc822Seq, peekSeq, flagSeq = 7, 8, 9
	flagUID := arts[flagSeq-1].uid
	out := runClient(t, t.TempDir(), nil, "python3", script, "--port", port(t, ts.addr), "--mailbox", "test",
		"--user", "alice", "--other", "bob", "--rfc822-seq", strconv.Itoa(rfc822Seq), "--peek-seq", strconv.Itoa(peekSeq),
		"--flag-uid", strconv.Itoa(int(flagUID)), "--body", searchBody, "--subject", searchSubject)
	var res struct {
		List          []string            `json:"list"`
		Exists        int                 `json:"exists"`
		RFC822        string              `json:"rfc822"`
		RFC822UID     uint32              `json:"rfc822_uid"`
		Peek          string              `json:"peek"`
		PeekUID       uint32              `json:"peek_uid"`
		SearchBody    []uint32            `json:"search_body"`
		SearchSubject []uint32            `json:"search_subject"`
		FlagsAgain    map[string][]string `json:"flags_again"`
		FlagsOther    map[string][]string `json:"flags_other"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("imaplib_client.py printed %q: %v", head(out), err)
	}

	var boxes []string
	for _, l := range res.List {
		// (\HasChildren) "/" "test"
		m := regexp.MustCompile(`^\(([^)]*)\) "/" "?([^"]*)"?$`).FindStringSubmatch(l)
		if m == nil {
			t.Errorf("LIST response %q: not (attrs) \"/\" name", l)
			continue
		}
		boxes = append(boxes, m[2])
	}
	if want := wantMailboxes(arts); !slices.Equal(boxes, want) {
		t.Errorf("LIST: %q, want %q", boxes, want)
	}
	if res.Exists != len(arts) {
		t.Errorf("SELECT: %d EXISTS, want %d", res.Exists, len(arts))
	}
	for _, c := range []struct {
		what string
		seq  int
		uid  uint32
		b64  string
	}{{"FETCH RFC822", rfc822Seq, res.RFC822UID, res.RFC822}, {"FETCH BODY.PEEK[]", peekSeq, res.PeekUID, res.Peek}} {
		a := arts[c.seq-1]
		got, err := base64.StdEncoding.DecodeString(c.b64)
		if err != nil {
			t.Fatal(err)
		}
		if c.uid != a.uid {
			t.Errorf("%s %d: UID %d, want %d", c.what, c.seq, c.uid, a.uid)
		}
		if want := crlf(a.raw); !bytes.Equal(got, want) {
			t.Errorf("%s %d: %d bytes, want the archived message with CRLF, %d bytes\ngot  %q\nwant %q",
				c.what, c.seq, len(got), len(want), head(got), head(want))
		}
	}
	if want := wantBody(t, arts, searchBody); !slices.Equal(res.SearchBody, want) {
		t.Errorf("UID SEARCH BODY %s: %v, want %v", searchBody, res.SearchBody, want)
	}
	if want := wantSubject(t, arts, searchSubject); !slices.Equal(res.SearchSubject, want) {
		t.Errorf("UID SEARCH SUBJECT %s: %v, want %v", searchSubject, res.SearchSubject, want)
	}

	key := func(u uint32) string { return strconv.FormatUint(uint64(u), 10) }
	wantAgain := map[string][]string{
		key(arts[rfc822Seq-1].uid): {`\Seen`},    // FETCH RFC822 sets \Seen (RFC 3501 section 6.4.5)
		key(arts[peekSeq-1].uid):   {},           // BODY.PEEK[] does not
		key(flagUID):               {`\Flagged`}, // STORE, kept for alice's next connection
	}
	wantOther := map[string][]string{key(arts[rfc822Seq-1].uid): {}, key(arts[peekSeq-1].uid): {}, key(flagUID): {}}
	for _, c := range []struct {
		who       string
		got, want map[string][]string
	}{{"alice, second connection", res.FlagsAgain, wantAgain}, {"bob", res.FlagsOther, wantOther}} {
		if len(c.got) != len(c.want) {
			t.Errorf("%s: flags %v, want %v", c.who, c.got, c.want)
		}
		for uid, want := range c.want {
			if got := c.got[uid]; !slices.Equal(got, want) {
				t.Errorf("%s: UID %s flags %q, want %q", c.who, uid, got, want)
			}
		}
	}
}
