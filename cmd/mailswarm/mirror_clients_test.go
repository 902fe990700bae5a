package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
	"mailswarm/message"
)

// Real clients read a mirror: mbsync over its IMAP; git fsck --strict and
// public-inbox-index over its list directory ("one copy": the mirror's
// git packs are the verified packs, usable as the origin's are).

// mirrorClientMsgs messages go to the origin over SMTP.
const mirrorClientMsgs = 25

// mirrorCluster starts an origin (list dev) and one mirror following it,
// sends mirrorClientMsgs messages to the origin over SMTP and waits until
// the mirror's export equals the origin's. It returns both nodes and the
// origin's export split into messages.
func mirrorCluster(t *testing.T) (origin, mirror *clusterNode, msgs [][]byte) {
	t.Helper()
	origin = newClusterNode(t, 0, true)
	origin.start(t)
	mirror = newClusterNode(t, 1, false)
	mirror.key, mirror.sources = listKey(t, origin.data), []string{origin.httpBase()}
	mirror.start(t)
	for i := 1; i <= mirrorClientMsgs; i++ {
		// Bodies with a line mbox must quote ("From ") and one reply a
		// thread, so that the bytes compared are not all alike.
		msg := fmt.Sprintf("From: Poster %d <p%d@example.net>\r\nTo: dev@example.org\r\nSubject: client post %d\r\n"+
			"Message-ID: <client%d@example.net>\r\n", i%4, i%4, i, i)
		if i > 1 {
			msg += "In-Reply-To: <client1@example.net>\r\n"
		}
		msg += fmt.Sprintf("\r\nbody %d\r\nFrom the start of a line\r\n%s", i, strings.Repeat("more text\r\n", i))
		origin.send(t, msg)
	}
	// The origin's export is read again each time: read at once after
	// the last 250 it may still change (seen once: the same size, another
	// sha256, the mirror equal to it later).
	deadline := time.Now().Add(60 * time.Second)
	for {
		want, on := exportSum(t, origin.data)
		got, mn := exportSum(t, mirror.data)
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the mirror did not follow the origin in 60 s: origin at seq %d, export %d bytes; mirror export %d bytes, %+v\nmirror:\n%s\norigin:\n%s",
				nodeStatus(t, origin).Seq, on, mn, nodeStatus(t, mirror).Follow, mirror.srv.log(), origin.srv.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitFollowed(t, mirror, nodeStatus(t, origin).Seq)
	out, stderr, err := mailswarm(t, "export", "--data", origin.data, "--list", "dev")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, stderr)
	}
	if err := message.ReadMbox(bytes.NewReader(out), message.MboxRD, func(m []byte) error {
		msgs = append(msgs, bytes.Clone(m))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != mirrorClientMsgs {
		t.Fatalf("origin's export holds %d messages, %d sent", len(msgs), mirrorClientMsgs)
	}
	return origin, mirror, msgs
}

// lf makes every CRLF an LF.
func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// mbsyncOf pulls mailbox dev from the IMAP server at addr into a fresh
// Maildir with mbsync and returns the messages by UID (mbsync's X-TUID
// line removed) and the server's UIDVALIDITY as mbsync recorded it.
func mbsyncOf(t *testing.T, addr string) (map[int][]byte, string) {
	t.Helper()
	dir := t.TempDir()
	maildir := filepath.Join(dir, "mail")
	if err := os.Mkdir(maildir, 0o755); err != nil { // mbsync wants Path to exist
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(addr, ":")
	rc := fmt.Sprintf(`IMAPAccount archive
Host %s
Port %s
User reader
Pass any-password
SSLType None
AuthMechs LOGIN

IMAPStore archive-far
Account archive

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel dev
Far :archive-far:
Near :local:
Patterns dev
Sync Pull
Create Near
SyncState *
`, host, port, maildir, maildir)
	config := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(config, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), "mbsync", "-c", config, "dev")
	cmd.Env = append(os.Environ(), "HOME="+dir)
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mbsync from %s: %v\n%s", addr, err, out)
	}
	t.Logf("mbsync from %s: %v", addr, time.Since(start).Round(time.Millisecond))
	box := filepath.Join(maildir, "dev")
	got := map[int][]byte{}
	name := regexp.MustCompile(`,U=([0-9]+):2,[A-Z]*$`)
	tuid := regexp.MustCompile(`\nX-TUID: [A-Za-z0-9+/]{12}\n`)
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(box, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			m := name.FindStringSubmatch(e.Name())
			if m == nil {
				t.Fatalf("maildir file %s/%s: no ,U=<uid>", sub, e.Name())
			}
			uid, _ := strconv.Atoi(m[1])
			b, err := os.ReadFile(filepath.Join(box, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			hdrEnd := bytes.Index(b, []byte("\n\n"))
			if hdrEnd < 0 {
				hdrEnd = len(b) - 1
			}
			if loc := tuid.FindIndex(b[:hdrEnd+1]); loc != nil {
				b = append(slices.Clip(b[:loc[0]]), b[loc[1]-1:]...)
			}
			if _, dup := got[uid]; dup {
				t.Errorf("UID %d twice in the maildir", uid)
			}
			got[uid] = b
		}
	}
	state, err := os.ReadFile(filepath.Join(box, ".mbsyncstate"))
	if err != nil {
		t.Fatal(err)
	}
	uv := regexp.MustCompile(`(?m)^FarUidValidity (\d+)$`).FindSubmatch(state)
	if uv == nil {
		t.Fatalf("no FarUidValidity in mbsync's state:\n%s", state)
	}
	return got, string(uv[1])
}

// TestMirrorIMAPClients: mbsync and mutt read list dev from a mirror's
// IMAP (the mirror got every message from the origin's swarm, none by
// mail). mbsync: every message of the origin's export arrives, byte for
// byte (CRLF made LF, as mbsync stores them), in UID order; the UIDs and
// the UIDVALIDITY are those mbsync sees at the origin. mutt: piping every
// message, undecoded, gives the export's messages in order.
func TestMirrorIMAPClients(t *testing.T) {
	peertest.Need(t, "mbsync", "mutt", "script")
	origin, mirror, msgs := mirrorCluster(t)
	got, uv := mbsyncOf(t, mirror.imapAddr())
	want, wantUV := mbsyncOf(t, origin.imapAddr())
	if len(got) != len(msgs) {
		t.Errorf("mbsync got %d messages from the mirror, the origin's export has %d", len(got), len(msgs))
	}
	uids := make([]int, 0, len(got))
	for uid := range got {
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	for i, uid := range uids {
		if i < len(msgs) && !bytes.Equal(got[uid], lf(msgs[i])) {
			t.Errorf("mirror UID %d: %d bytes differ from the origin's export message %d (%d bytes)\ngot  %q\nwant %q",
				uid, len(got[uid]), i+1, len(msgs[i]), got[uid][:min(200, len(got[uid]))], lf(msgs[i])[:min(200, len(msgs[i]))])
		}
		if !bytes.Equal(got[uid], want[uid]) {
			t.Errorf("UID %d: the mirror's message differs from the origin's", uid)
		}
	}
	if len(want) != len(got) {
		t.Errorf("mbsync got %d messages from the origin, %d from the mirror", len(want), len(got))
	}
	if uv != wantUV {
		t.Errorf("UIDVALIDITY %s at the mirror, %s at the origin", uv, wantUV)
	}
	t.Logf("mirror: %d messages, UIDs %d..%d, UIDVALIDITY %s", len(got), uids[0], uids[len(uids)-1], uv)

	piped := muttPipeAll(t, mirror.imapAddr())
	if len(piped) != len(msgs) {
		t.Errorf("mutt piped %d messages from the mirror, the origin's export has %d", len(piped), len(msgs))
	}
	for i := range min(len(piped), len(msgs)) {
		if !bytes.Equal(piped[i], lf(msgs[i])) {
			t.Errorf("mutt, message %d: %d bytes differ from the origin's export (%d bytes)", i+1, len(piped[i]), len(msgs[i]))
		}
	}
}

// muttSep follows each message mutt pipes (pipe_sep).
const muttSep = "=====mutt-message-end=====\n"

// muttPipeAll opens mailbox dev at the IMAP server addr with mutt, tags
// every message and pipes each, undecoded, to a file; it returns the
// messages as mutt fetched them (LF line endings).
func muttPipeAll(t *testing.T, addr string) [][]byte {
	t.Helper()
	dir := t.TempDir()
	if strings.ContainsAny(dir, `'"\ $`+"`") {
		t.Fatalf("temp dir %q needs quoting in a shell command", dir)
	}
	out := filepath.Join(dir, "piped")
	// No TLS, no caches (mutt fetches from the server), never ask
	// anything; once the index is up: tag all, pipe each, quit.
	rc := fmt.Sprintf(`set imap_user=reader
set imap_pass=any-password
set folder=imap://%[1]s/
set spoolfile=+dev
set ssl_starttls=no
set ssl_force_tls=no
set header_cache=
set message_cachedir=
set sort=mailbox-order
set pipe_decode=no
set pipe_split=yes
set pipe_sep="%[2]s"
set wait_key=no
set quit=yes
set delete=no
set move=no
set mail_check=0
set timeout=0
push "<tag-pattern>~A<enter><tag-prefix><pipe-message>cat >> %[3]s<enter><quit>"
`, addr, strings.TrimSuffix(muttSep, "\n")+`\n`, out)
	muttrc := filepath.Join(dir, "muttrc")
	if err := os.WriteFile(muttrc, []byte(rc), 0o600); err != nil {
		t.Fatal(err)
	}
	// mutt needs a terminal: script(1) gives it a pty (-e: mutt's exit
	// status; -q: no banner; the typescript goes to /dev/null).
	cmd := exec.CommandContext(t.Context(), "script", "-qec", fmt.Sprintf("mutt -n -F %s -f imap://reader@%s/dev", muttrc, addr), "/dev/null")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "TERM=dumb", "MAIL=")
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mutt: %v\n%s", err, b[max(0, len(b)-2000):])
	}
	t.Logf("mutt from %s: %v", addr, time.Since(start).Round(time.Millisecond))
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("mutt piped nothing: %v", err)
	}
	parts := bytes.Split(b, []byte(muttSep))
	if len(parts) > 0 && len(parts[len(parts)-1]) == 0 {
		parts = parts[:len(parts)-1]
	}
	return parts
}

// TestMirrorGitAndPublicInbox: a mirror's list directory is an ordinary
// one: git fsck --strict passes on its epoch, and public-inbox-index,
// run on a copy of it, indexes as many messages as the origin's export
// holds.
func TestMirrorGitAndPublicInbox(t *testing.T) {
	peertest.Need(t, "git", "public-inbox", "sqlite3")
	_, mirror, msgs := mirrorCluster(t)
	mirror.srv.stop(t)
	dir := filepath.Join(mirror.data, "lists", "dev")
	fsck := exec.CommandContext(t.Context(), "git", "--git-dir", filepath.Join(dir, "git", "0.git"), "fsck", "--strict", "--no-dangling")
	fsck.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null")
	if out, err := fsck.CombinedOutput(); err != nil {
		t.Fatalf("git fsck --strict on the mirror: %v\n%s", err, out)
	}
	packs, _ := filepath.Glob(filepath.Join(dir, "git", "0.git", "objects", "pack", "*.pack"))
	cp := filepath.Join(t.TempDir(), "dev")
	if out, err := exec.Command("cp", "-a", dir, cp).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	n := peertest.PIIndexBasic(t, cp)
	t.Logf("mirror: git fsck --strict passed over %d packs; public-inbox-index indexed %d messages, the origin's export holds %d",
		len(packs), n, len(msgs))
	if n != len(msgs) {
		t.Errorf("public-inbox-index indexed %d messages of the mirror, the origin's export holds %d", n, len(msgs))
	}
}
