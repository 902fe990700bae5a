package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/smtp"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailswarm/archive"
	"mailswarm/internal/peertest"
	"mailswarm/swarm"
)

// keygen makes a list with a private key only its owner reads; a second
// keygen refuses to replace it. Real mail imported into it publishes as
// day packs and month bundles; status lists each with a path whose bytes
// are what it says; a second publish has nothing to do.
func TestKeygenAndSwarmCommands(t *testing.T) {
	data := t.TempDir()
	out, stderr, err := mailswarm(t, "keygen", "--data", data, "--list", "lkml", "--address", "lkml@example.org")
	if err != nil {
		t.Fatalf("keygen: %v\n%s", err, stderr)
	}
	// The key first (scripts take the first line), then the follow string.
	pub, followLine, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(pub) {
		t.Fatalf("keygen printed %q", out)
	}
	if want := "mailswarm:lkml:" + pub + "@http://127.0.0.1:8080"; followLine != want {
		t.Fatalf("keygen printed the follow string %q, want %q", followLine, want)
	}
	fi, err := os.Stat(filepath.Join(data, "lists", "lkml", "list.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("list.key: %v %v", fi, err)
	}
	if _, stderr, err := mailswarm(t, "keygen", "--data", data, "--list", "lkml"); exitCode(err) != 1 || !strings.Contains(string(stderr), pub) {
		t.Errorf("second keygen: exit %d, %s", exitCode(err), stderr)
	}

	mbox := peertest.Corpus(t, "notmuch-test/lkml.mboxrd.gz")
	if _, stderr, err := mailswarm(t, "import", "--data", data, "--list", "lkml", mbox); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	out, stderr, err = mailswarm(t, "swarm", "publish", "--data", data, "--list", "lkml", "--json")
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, stderr)
	}
	var pr struct {
		Seq     int64
		Changed bool
		Days    []string
		Bundles []string
	}
	if err := json.Unmarshal(out, &pr); err != nil || pr.Seq != 1 || !pr.Changed || len(pr.Days) == 0 || len(pr.Bundles) == 0 {
		t.Fatalf("publish said %s (%v)", out, err)
	}
	out, _, err = mailswarm(t, "swarm", "publish", "--data", data, "--list", "lkml", "--json")
	if err != nil || !strings.Contains(string(out), `"changed":false`) {
		t.Errorf("second publish: %s %v", out, err)
	}

	// Given a relative data directory, status still gives absolute paths.
	cwd, _ := os.Getwd()
	rel, err := filepath.Rel(cwd, data)
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, err = mailswarm(t, "swarm", "status", "--data", rel, "--list", "lkml", "--json")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, stderr)
	}
	var st swarm.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	if st.FollowString != followLine {
		t.Errorf("status follow_string = %q, want keygen's %q", st.FollowString, followLine)
	}
	if st.Key != pub || st.Seq != 1 || len(st.Packs) != len(pr.Days) || len(st.Bundles) != len(pr.Bundles) {
		t.Fatalf("status: key %s seq %d, %d packs, %d bundles", st.Key, st.Seq, len(st.Packs), len(st.Bundles))
	}
	total := int64(0)
	if !filepath.IsAbs(st.Dir) {
		t.Errorf("status dir %q is not absolute", st.Dir)
	}
	for _, it := range st.Packs {
		b, err := os.ReadFile(it.Path)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) != it.Size || fmt.Sprintf("%x", sha256.Sum256(b)) != it.SHA256 || len(it.InfoHash) != 40 ||
			!strings.HasSuffix(it.TorrentURL, "/lists/lkml/torrents/"+it.Name+".torrent") {
			t.Errorf("%s: status does not describe the file: %+v", it.Name, it)
		}
		if _, err := archive.VerifyPack(b); err != nil {
			t.Errorf("%s: %v", it.Name, err)
		}
		total += int64(it.Commits)
	}
	// verify checks the published packs too; a damaged one is named.
	if _, stderr, err := mailswarm(t, "verify", "--data", data, "--list", "lkml"); err != nil ||
		!strings.Contains(string(stderr), fmt.Sprintf("%d published packs", len(st.Packs))) {
		t.Errorf("verify: %v %s", err, stderr)
	}
	victim := st.Packs[len(st.Packs)/2]
	b, _ := os.ReadFile(victim.Path)
	b[len(b)/2] ^= 1
	os.WriteFile(victim.Path, b, 0o644)
	if _, stderr, err := mailswarm(t, "verify", "--data", data, "--list", "lkml"); exitCode(err) != 1 || !strings.Contains(string(stderr), victim.Name) {
		t.Errorf("verify of a damaged pack: exit %d, %s", exitCode(err), stderr)
	}
	b[len(b)/2] ^= 1
	os.WriteFile(victim.Path, b, 0o644)

	// Every message of the corpus is in exactly one day pack.
	stats, _, err := mailswarm(t, "stats", "--data", data, "--list", "lkml", "--json")
	if err != nil || !strings.Contains(string(stats), fmt.Sprintf(`"messages":%d`, total)) {
		t.Errorf("day packs hold %d commits; stats %s", total, stats)
	}
}

// serve publishes new mail as a slice within its slice interval, and a
// long-poll on the manifest sees it; the manifest verifies against the
// served key, the slice against the manifest; status shows the live node.
func TestServeSwarm(t *testing.T) {
	data := t.TempDir()
	smtpPort, httpPort := peertest.FreePort(t), peertest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "mailswarm.toml")
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	os.WriteFile(cfg, fmt.Appendf(nil, `data = %q
[smtp]
listen = "127.0.0.1:%d"
[imap]
listen = ""
[http]
listen = "127.0.0.1:%d"
[bittorrent]
slice_interval = "1s"
[[list]]
name = "dev"
addresses = ["dev@example.org"]
`, data, smtpPort, httpPort), 0o644)
	srv := startServe(t, cfg, smtpPort, httpPort)
	defer srv.stop(t)

	msg := "From: A <a@example.net>\r\nTo: dev@example.org\r\nSubject: swarm\r\nMessage-ID: <swarm@test>\r\n\r\nhello\r\n"
	if err := smtp.SendMail(fmt.Sprintf("127.0.0.1:%d", smtpPort), nil, "a@example.net", []string{"dev@example.org"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m, _ := firstManifest(t, base, srv.log)
	t.Logf("manifest with the new mail %v after the 250", time.Since(start))
	get := func(u string) (int, []byte) { return getURL(t, u) }
	if len(m.Packs) != 1 || m.Packs[0].Kind != swarm.KindSlice || m.Packs[0].FirstArticle != 1 {
		t.Fatalf("packs %+v", m.Packs)
	}
	code, pack := get(base + "/lists/dev/packs/" + m.Packs[0].File)
	if code != 200 || sha256.Sum256(pack) != m.Packs[0].SHA256 {
		t.Fatalf("slice: %d, sha256 differs", code)
	}
	if _, err := archive.VerifyPack(pack); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := mailswarm(t, "swarm", "status", "--data", data, "--list", "dev", "--config", cfg, "--json")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, stderr)
	}
	var st swarm.Status
	if err := json.Unmarshal(out, &st); err != nil || !st.Seeding || st.Listen == "" || len(st.Packs) != 1 ||
		!filepath.IsAbs(st.Dir) || !filepath.IsAbs(st.Packs[0].Path) || st.Tracker != base+"/announce" {
		t.Errorf("status of a serving node: %s (%v)", out, err)
	}
	// serve's tracker: the slice's infohash is known (the node is its
	// seeder), another is refused with a BEP 3 failure reason.
	ih := m.Packs[0].InfoHash
	q := "?info_hash=" + url.QueryEscape(string(ih[:])) + "&port=40001&left=1"
	if code, b := get(st.Tracker + q); code != 200 || !strings.Contains(string(b), "5:peers6:") {
		t.Errorf("announce of the slice: %d %q, want one peer (the node)", code, b)
	}
	q = "?info_hash=" + strings.Repeat("%01", 20) + "&port=40001&left=1"
	if code, b := get(st.Tracker + q); code != 200 || string(b) != "d14:failure reason16:unknown infohashe" {
		t.Errorf("announce of an unknown infohash: %d %q", code, b)
	}
	// Over public HTTP the same status has no server paths.
	if _, b := get(base + "/lists/dev/status"); !strings.Contains(string(b), `"seeding": true`) || strings.Contains(string(b), data) {
		t.Errorf("public status shows the data directory %s:\n%s", data, b)
	}
}

// `swarm publish` killed with SIGKILL while it writes a long history
// loses at most the step under way: each time, the manifest on disk is
// whole and signed and names only complete files; the next run goes on
// from it, and at the end every day is published once and verify passes.
func TestSwarmPublishKill9(t *testing.T) {
	data := t.TempDir()
	if _, stderr, err := mailswarm(t, "keygen", "--data", data, "--list", "long"); err != nil {
		t.Fatalf("keygen: %v\n%s", err, stderr)
	}
	const days = 1200
	var mbox strings.Builder
	start := time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC)
	for d := range days {
		at := start.AddDate(0, 0, d)
		fmt.Fprintf(&mbox, "From poster@example.org %s\nFrom: Poster <poster@example.org>\nTo: long@example.org\n"+
			"Subject: day %d\nDate: %s\nMessage-ID: <day%d@example.org>\n\nThe post of day %d.\n%s\n\n",
			at.Format(time.ANSIC), d, at.Format(time.RFC1123Z), d, d, strings.Repeat("words of the day ", 40))
	}
	mboxPath := filepath.Join(t.TempDir(), "long.mbox")
	if err := os.WriteFile(mboxPath, []byte(mbox.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := mailswarm(t, "import", "--data", data, "--list", "long", mboxPath); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	swarmDir := filepath.Join(data, "lists", "long", "swarm")
	key := readPub(t, filepath.Join(data, "lists", "long"))
	var prev *swarm.Manifest
	kills := 0
	for round := 0; ; round++ {
		cmd := exec.Command(buildBinary(t), "swarm", "publish", "--data", data, "--list", "long")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		finished := false
		select {
		case err = <-done:
			finished = true
		case <-time.After(time.Duration(100+round*200) * time.Millisecond):
			cmd.Process.Kill()
			<-done
			kills++
		}
		if finished && err != nil {
			t.Fatalf("round %d: publish failed: %v", round, err)
		}
		// Whatever happened, the manifest on disk is whole and extends
		// the one before.
		if b, err := os.ReadFile(filepath.Join(swarmDir, "manifest")); err == nil {
			m, err := swarm.ParseManifest(b, key)
			if err != nil {
				t.Fatalf("round %d: manifest after SIGKILL: %v", round, err)
			}
			if prev != nil && m.Seq != prev.Seq {
				if err := m.Follows(prev); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			for _, p := range m.Packs {
				if fi, err := os.Stat(filepath.Join(swarmDir, "packs", p.File)); err != nil || fi.Size() != p.Size {
					t.Fatalf("round %d: the manifest names %s, on disk %v %v", round, p.File, fi, err)
				}
			}
			prev = m
		}
		if finished {
			break
		}
		if round > 40 {
			t.Fatal("publish never finished")
		}
	}
	t.Logf("killed %d times", kills)
	if kills == 0 {
		t.Fatal("publish finished before the first kill: nothing was interrupted (make the history longer)")
	}
	months := map[string]bool{} // and closed years: a bundle each
	for d := range days {
		months[start.AddDate(0, 0, d).Format("2006-01")] = true
		if y := start.AddDate(0, 0, d).Format("2006"); y < time.Now().UTC().Format("2006") {
			months[y] = true
		}
	}
	if len(prev.Packs) != days || len(prev.Bundles) != len(months) {
		t.Errorf("%d packs and %d bundles after the kills, want %d and %d", len(prev.Packs), len(prev.Bundles), days, len(months))
	}
	ents, _ := os.ReadDir(filepath.Join(swarmDir, "packs"))
	if len(ents) != days {
		t.Errorf("packs/ holds %d files, the manifest %d packs: leftovers stayed", len(ents), days)
	}
	if _, stderr, err := mailswarm(t, "verify", "--data", data, "--list", "long"); err != nil {
		t.Fatalf("verify: %v\n%s", err, stderr)
	}
}

// readPub reads a list's public key (list.pub, PEM).
func readPub(t *testing.T, dir string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "list.pub"))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("list.pub is not PEM")
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(ed25519.PublicKey)
}
