package swarm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Many ranges in one request get the whole pack as a plain 200 (RFC 9110
// §14.2 lets a server ignore Range), not a multipart answer many times the
// request's size; a few ranges are still served as asked.
func TestHTTPManyRangesIgnored(t *testing.T) {
	tn := startTestNode(t, 3)
	p := tn.manifest(t).Packs[0]
	want, err := os.ReadFile(filepath.Join(tn.node.list("demo").origin.Dir(), packsDir, p.File))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 1000 {
		t.Fatalf("pack of %d bytes: want at least 1000 for 1000 one-byte ranges", len(want))
	}
	url := tn.url + "/lists/demo/packs/" + p.File
	var ranges []string
	for i := range 1000 {
		ranges = append(ranges, fmt.Sprintf("%d-%d", i, i))
	}
	resp, b := httpGet(t, url, "Range", "bytes="+strings.Join(ranges, ","))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, want) {
		t.Errorf("1000 ranges: %s, %d bytes for a %d-byte pack; want 200 and the pack", resp.Status, len(b), len(want))
	}
	// Two ranges: a multipart/byteranges answer as before.
	resp, b = httpGet(t, url, "Range", "bytes=0-9,20-29")
	if resp.StatusCode != http.StatusPartialContent || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") ||
		!bytes.Contains(b, want[20:30]) {
		t.Errorf("2 ranges: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
}

// wait= that is not a finite number of seconds is refused; a huge one is
// capped (it waits for the next manifest) instead of overflowing into an
// immediate 304.
func TestManifestLongPollWaitOverflow(t *testing.T) {
	tn := startTestNode(t, 2)
	seq := tn.manifest(t).Seq
	base := fmt.Sprintf("%s/lists/demo/manifest?after=%d", tn.url, seq)
	for _, w := range []string{"Inf", "+Inf", "-Inf", "NaN", "infinity", "1e400"} {
		if resp, b := httpGet(t, base+"&wait="+w); resp.StatusCode != http.StatusBadRequest || len(b) == 0 {
			t.Errorf("wait=%s: %s, want 400 with a reason", w, resp.Status)
		}
	}
	type result struct {
		status int
		body   []byte
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "&wait=1e10")
		if err != nil {
			done <- result{}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{resp.StatusCode, b}
	}()
	waitPolls(t, tn.node, 1, done) // before the fix it had its 304 at once
	addAt(t, tn.l, 100, tn.now.Add(time.Minute))
	tn.now = tn.now.Add(2 * time.Minute)
	if _, err := tn.node.Publish("demo"); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.status != http.StatusOK {
		t.Fatalf("wait=1e10: status %d, want 200 once the next manifest is out", r.status)
	}
	if m, err := ParseManifest(r.body, tn.l.PublicKey()); err != nil || m.Seq != seq+1 {
		t.Fatalf("wait=1e10: got %v: %v", m, err)
	}
}

// The public status has no server paths; the node's own command line
// (holding list.key, in the same directory) gets them.
func TestStatusHTTPHidesPaths(t *testing.T) {
	tn := startTestNode(t, 2)
	dir, err := filepath.Abs(tn.node.list("demo").origin.Dir())
	if err != nil {
		t.Fatal(err)
	}
	resp, b := httpGet(t, tn.url+"/lists/demo/status")
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"infohash"`)) {
		t.Fatalf("status: %s\n%s", resp.Status, b)
	}
	if bytes.Contains(b, []byte(dir)) || bytes.Contains(b, []byte(`"path"`)) || bytes.Contains(b, []byte(`"dir"`)) {
		t.Errorf("public status shows server paths:\n%s", b)
	}
	// With the list's token: the paths, as `swarm status` shows them.
	tok, err := StatusToken(tn.l)
	if err != nil {
		t.Fatal(err)
	}
	resp, b = httpGet(t, tn.url+"/lists/demo/status", StatusTokenHeader, tok)
	var st Status
	if err := json.Unmarshal(b, &st); err != nil || resp.StatusCode != http.StatusOK || st.Dir != dir ||
		len(st.Packs) == 0 || st.Packs[0].Path == "" {
		t.Errorf("status with the token: %s, dir %q (want %q), %v", resp.Status, st.Dir, dir, err)
	}
	// A wrong token is no token.
	if _, b := httpGet(t, tn.url+"/lists/demo/status", StatusTokenHeader, strings.Repeat("0", len(tok))); bytes.Contains(b, []byte(dir)) {
		t.Error("a wrong token got the paths")
	}
}
