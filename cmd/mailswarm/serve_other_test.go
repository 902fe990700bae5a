package main

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
	"mailswarm/swarm"
)

// TestServeSeesOtherWriters: mail committed by another process into a list
// serve has open reaches serve. `deliver` (which commits the message
// itself) and `import` of 100 messages each make an IMAP client idling on
// the list see EXISTS with the new count, and the swarm publish a slice
// with the new articles (seen by a manifest long-poll).
func TestServeSeesOtherWriters(t *testing.T) {
	data := t.TempDir()
	smtpPort, imapPort, httpPort := peertest.FreePort(t), peertest.FreePort(t), peertest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "mailswarm.toml")
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	text := fmt.Sprintf(`data = %q
[smtp]
listen = "127.0.0.1:%d"
[imap]
listen = "127.0.0.1:%d"
[http]
listen = "127.0.0.1:%d"
[bittorrent]
slice_interval = "1s"
[[list]]
name = "dev"
addresses = ["dev@example.org"]
`, data, smtpPort, imapPort, httpPort)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, cfg, smtpPort, imapPort, httpPort)
	defer func() {
		if s.cmd.ProcessState == nil {
			s.stop(t)
		}
	}()

	get := func(url string) (int, []byte) {
		t.Helper()
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
		t.Fatalf("key %q: %v", keyHex, err)
	}
	// manifestAfter long-polls for a manifest newer than seq and returns
	// it once it holds article last (the publisher may cut a slice before
	// all of a batch is announced).
	manifestAfter := func(seq, last int64) *swarm.Manifest {
		t.Helper()
		for range 10 {
			code, body := get(fmt.Sprintf("%s/lists/dev/manifest?after=%d&wait=30", base, seq))
			if code != 200 {
				t.Fatalf("manifest after %d: %d %s\n%s", seq, code, body, s.log())
			}
			m, err := swarm.ParseManifest(body, key)
			if err != nil {
				t.Fatal(err)
			}
			var top int64
			for _, p := range m.Packs {
				top = max(top, p.LastArticle)
			}
			if top >= last {
				return m
			}
			seq = m.Seq
		}
		t.Fatalf("no manifest with article %d\n%s", last, s.log())
		return nil
	}

	until, send := idleOnEmpty(t, s, imapPort, "dev")

	msg := "From: a@example.org\r\nTo: dev@example.org\r\nSubject: delivered\r\nMessage-ID: <deliver@example.org>\r\n\r\nhello\r\n"
	if code, stderr := deliver(t, data, "dev", []byte(msg)); code != 0 {
		t.Fatalf("deliver: exit %d, %s", code, stderr)
	}
	done := time.Now()
	until("* 1 EXISTS")
	t.Logf("EXISTS %v after deliver exited", time.Since(done))
	m := manifestAfter(0, 1)
	t.Logf("slice with article 1 %v after deliver exited", time.Since(done))

	if _, stderr, err := mailswarm(t, "import", "--data", data, "--list", "dev", testMbox(t, "bulk", 100)); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	done = time.Now()
	until("* 101 EXISTS")
	t.Logf("EXISTS %v after import exited", time.Since(done))
	manifestAfter(m.Seq, 101)
	t.Logf("slice with article 101 %v after import exited", time.Since(done))

	send("DONE")
	until("c OK")
	send("d FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)])")
	if lines := until("d OK"); !strings.Contains(strings.Join(lines, "\n"), "Subject: delivered") {
		t.Fatalf("FETCH: %q", lines)
	}
}
