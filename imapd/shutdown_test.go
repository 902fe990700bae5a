package imapd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFetchShutdownBye: Shutdown during a long FETCH says BYE between two
// message responses, never inside one. FETCH writes past go-imap's
// response lock (fetch.go), so Shutdown first stops it at the end of a
// message. Before, the BYE landed between two of FETCH's 64 KiB writes,
// inside a literal, and the client read it as message text.
func TestFetchShutdownBye(t *testing.T) {
	body := strings.Repeat("0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 abcdefghijklmnopqrstuvwxyz\n", 2000)
	msgs := make([][]byte, 60) // 9 MB: more than the socket buffers hold
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, "From: a@example.org\nSubject: big %d\nMessage-ID: <big%d@example.org>\n\n%s", i, i, body)
	}
	ts := newTestServer(t, msgs, nil)
	rc := selected(t, ts.addr)
	rc.send("c FETCH 1:* BODY.PEEK[]")
	first, err := rc.readLine(5 * time.Second)
	if err != nil || !strings.HasPrefix(first, "* 1 FETCH") {
		t.Fatalf("FETCH: %q, %v", first, err)
	}
	// Nobody reads: the server is stuck in FETCH when Shutdown comes.
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	time.Sleep(200 * time.Millisecond) // let BYE queue up behind FETCH (the test holds either way)
	rc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	all, err := io.ReadAll(io.LimitReader(rc.r, 32<<20)) // until the server hangs up
	if err != nil {
		t.Fatal(err)
	}
	all = append([]byte(first+"\r\n"), all...)
	// Walk the responses, skipping literals (a response goes on after
	// one): BYE must start a response.
	literal := regexp.MustCompile(`\{(\d+)\}\r?$`)
	bye, cont := false, false
	for pos := 0; pos < len(all) && !bye; {
		end := bytes.IndexByte(all[pos:], '\n')
		if end < 0 {
			break
		}
		line := all[pos : pos+end]
		bye = !cont && bytes.HasPrefix(line, []byte("* BYE "))
		pos += end + 1
		m := literal.FindSubmatch(line)
		if cont = m != nil; cont {
			n, _ := strconv.Atoi(string(m[1]))
			pos += n
		}
	}
	if !bye {
		i := bytes.Index(all, []byte("* BYE"))
		t.Fatalf("BYE not at a response boundary: at %d of %d bytes, after %q", i, len(all), all[max(0, i-40):max(0, i)])
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
