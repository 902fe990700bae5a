package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/smtp"
	"os"
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
	pub := strings.TrimSpace(string(out))
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(pub) {
		t.Fatalf("keygen printed %q", out)
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
	srv := startServe(t, cfg, smtpPort)
	defer srv.stop(t)

	msg := "From: A <a@example.net>\r\nTo: dev@example.org\r\nSubject: swarm\r\nMessage-ID: <swarm@test>\r\n\r\nhello\r\n"
	if err := smtp.SendMail(fmt.Sprintf("127.0.0.1:%d", smtpPort), nil, "a@example.net", []string{"dev@example.org"}, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	get := func(url string) (int, []byte) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	_, keyHex := get(base + "/lists/dev/key")
	key, err := hex.DecodeString(strings.TrimSpace(string(keyHex)))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, body := get(base + "/lists/dev/manifest?after=0&wait=30")
	if code != 200 {
		t.Fatalf("long poll: %d %s\n%s", code, body, srv.log())
	}
	t.Logf("manifest with the new mail %v after the 250", time.Since(start))
	m, err := swarm.ParseManifest(body, key)
	if err != nil {
		t.Fatal(err)
	}
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
	if err := json.Unmarshal(out, &st); err != nil || !st.Seeding || st.Listen == "" || len(st.Packs) != 1 {
		t.Errorf("status of a serving node: %s (%v)", out, err)
	}
}
