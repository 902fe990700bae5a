package main

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mailswarm/internal/peertest"
	"mailswarm/swarm"
)

// Under a limit of 256 descriptors, 300 BitTorrent handshakes from 15
// clients for the torrents the manifest names (11: ten day packs and a
// month bundle) do not stop SMTP, IMAP and HTTP from answering: the
// BitTorrent side holds at most a quarter of the limit (before, anacrolix
// held up to 50 connections per torrent, all 300 here, until accept4
// failed with "too many open files" on every listener).
func TestServeBitTorrentCannotStarveSMTP(t *testing.T) {
	peertest.Need(t, "prlimit") // util-linux, before the import
	data := t.TempDir()
	if _, stderr, err := mailswarm(t, "keygen", "--data", data, "--list", "dev"); err != nil {
		t.Fatalf("keygen: %v\n%s", err, stderr)
	}
	var mbox strings.Builder
	start := time.Date(2020, 1, 1, 12, 0, 0, 0, time.UTC)
	for d := range 10 {
		at := start.AddDate(0, 0, d)
		fmt.Fprintf(&mbox, "From poster@example.org %s\nFrom: Poster <poster@example.org>\nTo: dev@example.org\n"+
			"Subject: day %d\nDate: %s\nMessage-ID: <day%d@example.org>\n\nThe post of day %d.\n\n",
			at.Format(time.ANSIC), d, at.Format(time.RFC1123Z), d, d)
	}
	mboxPath := filepath.Join(t.TempDir(), "dev.mbox")
	os.WriteFile(mboxPath, []byte(mbox.String()), 0o644)
	if _, stderr, err := mailswarm(t, "import", "--data", data, "--list", "dev", mboxPath); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	srv, p := serveUnder256(t, data, true)
	defer srv.stop(t)
	httpPort, btPort := p.http, p.bt

	// The infohashes, from the published manifest (as a stranger finds them).
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	client := &http.Client{Timeout: 40 * time.Second}
	resp, err := client.Get(base + "/lists/dev/manifest?after=0&wait=30")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m, err := swarm.ParseManifest(body, readPub(t, filepath.Join(data, "lists", "dev")))
	if err != nil {
		t.Fatalf("manifest: %v\n%s", err, srv.log())
	}
	var ihs [][20]byte
	for _, p := range m.Packs {
		ihs = append(ihs, p.InfoHash)
	}
	for _, b := range m.Bundles {
		ihs = append(ihs, b.InfoHash)
	}
	if len(ihs) < 7 {
		t.Fatalf("%d torrents, want more than 6 (300 handshakes at anacrolix's 50 per torrent)", len(ihs))
	}

	// 300 handshakes from 127.0.0.1 to 127.0.0.15 (20 each: over the cap
	// per client too), all at once (each within 5 s), each then held
	// open.
	began := time.Now()
	var mu sync.Mutex
	var conns []net.Conn
	var dials sync.WaitGroup
	for i := range 300 {
		dials.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%15))}, Timeout: 5 * time.Second}
			c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", btPort))
			if err != nil {
				return
			}
			ih := ihs[i%len(ihs)]
			hs := append([]byte("\x13BitTorrent protocol"), make([]byte, 8)...)
			hs = append(hs, ih[:]...)
			id := make([]byte, 20)
			rand.Read(id)
			hs = append(hs, id...)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			reply := make([]byte, 68)
			if _, err := c.Write(hs); err != nil {
				c.Close()
				return
			}
			if _, err := io.ReadFull(c, reply); err != nil || !bytes.Equal(reply[28:48], ih[:]) {
				c.Close()
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		})
	}
	dials.Wait()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// Held: reading what the node sends runs into a deadline, not the end.
	var held atomic.Int32
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
				held.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("%d of 300 BitTorrent handshakes answered, %d connections held (%v)", len(conns), held.Load(),
		time.Since(began).Round(time.Millisecond))
	if held.Load() > 256/4 {
		t.Errorf("%d BitTorrent connections held, want at most 64 (a quarter of 256 descriptors)", held.Load())
	}
	stillAnswers(t, srv, "with the BitTorrent clients holding on", listenerCheck{"smtp", "", "220 ", p.smtp},
		listenerCheck{"imap", "", "* OK", p.imap}, listenerCheck{"http", "GET /lists/ HTTP/1.1\r\nHost: test\r\n\r\n", "HTTP/1.1 200", p.http})
}
