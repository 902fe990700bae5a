package swarm

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"mailswarm/archive"
)

// dialFrom connects to the node's HTTP from local address ip (127.0.0.x:
// another client) with a small receive buffer when rcvbuf > 0.
func dialFrom(t testing.TB, tn *testNode, ip string, rcvbuf int) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	c, err := d.Dial("tcp", strings.TrimPrefix(tn.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// answers reports whether c answers a GET /lists/ with 200 (within 10 s);
// the connection stays open (keep-alive).
func answers(c net.Conn, br *bufio.Reader) bool {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, "GET /lists/ HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
		return false
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return false
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err == nil && resp.StatusCode == http.StatusOK
}

// With caps of 4 connections per client and 8 in all, a client's 5th to
// 14th connections are closed unanswered, a third client gets none while
// two hold 8, and a closed connection frees its place.
func TestHTTPConnectionCap(t *testing.T) {
	tn := startTestNodeWith(t, 1, HTTPLimits{MaxConns: 8, MaxConnsPerClient: 4}, nil)
	type conn struct {
		c  net.Conn
		br *bufio.Reader
	}
	open := func(ip string, n int) (conns []conn) {
		for range n {
			c := dialFrom(t, tn, ip, 0)
			conns = append(conns, conn{c, bufio.NewReader(c)})
		}
		return conns
	}
	count := func(conns []conn) (ok int) {
		for _, c := range conns {
			if answers(c.c, c.br) {
				ok++
			}
		}
		return ok
	}
	first := open("127.0.0.1", 4+10)
	if n := count(first); n != 4 {
		t.Errorf("client 127.0.0.1: %d of 14 connections answered, want 4 (the cap per client)", n)
	}
	if n := count(open("127.0.0.2", 4)); n != 4 {
		t.Errorf("client 127.0.0.2: %d of 4 connections answered, want 4", n)
	}
	if n := count(open("127.0.0.3", 3)); n != 0 {
		t.Errorf("client 127.0.0.3 with 8 open: %d of 3 connections answered, want 0 (the cap in all)", n)
	}
	// The first client closes one: a new one of its own is served once
	// the server has seen the close.
	first[0].c.Close()
	for try := 0; ; try++ {
		if count(open("127.0.0.1", 1)) == 1 {
			break
		}
		if try == 100 {
			t.Fatal("no place freed after a close")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Still answering on the connections it kept.
	if !answers(first[1].c, first[1].br) {
		t.Error("a kept connection stopped answering")
	}
}

// readToEOF reads c until the server closes it, at most 10 s; it reports
// whether the server closed it and how many bytes came.
func readToEOF(c net.Conn) (closed bool, n int64) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout()), n
}

// An idle keep-alive connection is closed after IdleTimeout.
func TestHTTPIdleTimeout(t *testing.T) {
	tn := startTestNodeWith(t, 1, HTTPLimits{IdleTimeout: 200 * time.Millisecond}, nil)
	c := dialFrom(t, tn, "127.0.0.1", 0)
	br := bufio.NewReader(c)
	if !answers(c, br) {
		t.Fatal("no answer")
	}
	if closed, _ := readToEOF(c); !closed {
		t.Error("idle keep-alive connection still open after 10 s (idle timeout 200 ms)")
	}
}

// A request announcing a body that never comes is cut off after
// ReadTimeout; so is one whose header never ends.
func TestHTTPReadTimeout(t *testing.T) {
	tn := startTestNodeWith(t, 1, HTTPLimits{ReadTimeout: 300 * time.Millisecond, ReadHeaderTimeout: 300 * time.Millisecond}, nil)
	for _, req := range []string{
		"GET /lists/ HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nonly some",
		"GET /lists/ HTTP/1.1\r\nHost: test\r\nX-Slow: ",
	} {
		c := dialFrom(t, tn, "127.0.0.1", 0)
		if _, err := io.WriteString(c, req); err != nil {
			t.Fatal(err)
		}
		if closed, _ := readToEOF(c); !closed {
			t.Errorf("%q: connection still open after 10 s (read timeout 300 ms)", req)
		}
	}
}

// bigPackNode is a node whose newest slice holds about 2 MB of
// incompressible mail, served with WriteStall stall; the server side of
// every connection has a small send buffer, so that a client that stops
// reading stops the server's writes soon. It returns the slice's URL and
// size.
func bigPackNode(t *testing.T, stall time.Duration) (tn *testNode, url string, size int64) {
	tn = startTestNodeWith(t, 1, HTTPLimits{WriteStall: stall}, func(ln net.Listener) net.Listener {
		return smallSendBuffer{ln}
	})
	var ps []*archive.Prepared
	at := tn.now.Add(time.Minute)
	for i := range 32 {
		body := make([]byte, 48<<10)
		rand.Read(body)
		raw := fmt.Appendf(nil, "From: Big <big@example.org>\r\nTo: demo@example.org\r\nSubject: big %d\r\n"+
			"Date: %s\r\nMessage-ID: <big%d@example.org>\r\n\r\n%s\r\n", i, at.Format(time.RFC1123Z), i,
			base64.StdEncoding.EncodeToString(body))
		ps = append(ps, archive.Prepare(raw, at))
	}
	if _, err := tn.l.AddPrepared(t.Context(), ps); err != nil {
		t.Fatal(err)
	}
	tn.now = tn.now.Add(2 * time.Minute)
	if _, err := tn.node.Publish("demo"); err != nil {
		t.Fatal(err)
	}
	m := tn.manifest(t)
	p := m.Packs[len(m.Packs)-1]
	if p.Size < 1<<20 {
		t.Fatalf("newest pack %s has %d bytes, want a big slice", p.File, p.Size)
	}
	return tn, tn.url + "/lists/demo/packs/" + p.File, p.Size
}

// getRaw sends a GET of url on c.
func getRaw(t *testing.T, c net.Conn, url string) {
	t.Helper()
	path := url[strings.Index(strings.TrimPrefix(url, "http://"), "/")+len("http://"):]
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		t.Fatal(err)
	}
}

// waitOpen waits (at most 10 s) until the node's HTTP listener counts
// want open connections.
func waitOpen(t *testing.T, tn *testNode, want int) bool {
	for range 200 {
		if tn.ln.counts.Open() == want {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// A client that stops reading a pack download is cut off after
// WriteStall: the server closes the connection (before WriteStall, it was
// held as long as the client wanted).
func TestHTTPWriteStallCutsStalledDownload(t *testing.T) {
	tn, url, size := bigPackNode(t, 300*time.Millisecond)
	c := dialFrom(t, tn, "127.0.0.1", 4<<10)
	getRaw(t, c, url)
	// Read nothing: the server's writes stop once the buffers are full.
	if !waitOpen(t, tn, 0) {
		t.Fatal("a stalled download still holds its connection after 10 s (write stall 300 ms)")
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// What the socket buffers held before the stall arrives; usually that
	// is far less than the pack, but on a busy machine the kernel let the
	// whole 1.6 MB through before the server's write stalled (1 run in 3,
	// with 4 KiB buffers asked for on both sides). Either way the server
	// closed the connection above: that is the promise.
	n, err := io.Copy(io.Discard, resp.Body)
	t.Logf("stalled download: %d of %d bytes arrived, err %v", n, size, err)
}

// A slow but moving download of the same pack, taking several times the
// write stall in all, is not cut.
func TestHTTPWriteStallSparesSlowDownload(t *testing.T) {
	const stall = 2 * time.Second
	tn, url, size := bigPackNode(t, stall)
	c := dialFrom(t, tn, "127.0.0.1", 4<<10)
	getRaw(t, c, url)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	// 16 KiB every 25 ms: a 64 KiB write deadline's worth in 100 ms, a
	// 2 MB pack in over 3 s.
	start := time.Now()
	buf := make([]byte, 16<<10)
	var n int64
	for {
		k, err := io.ReadFull(resp.Body, buf)
		n += int64(k)
		if err != nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Logf("%d bytes in %v (write stall %v)", n, time.Since(start), stall)
	if n != size {
		t.Errorf("slow download: %d of %d bytes", n, size)
	}
}

// smallSendBuffer gives accepted connections a 4 KiB send buffer.
type smallSendBuffer struct{ net.Listener }

func (l smallSendBuffer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4 << 10)
	}
	return c, err
}

// waitPolls waits (at most 10 s) until want long-polls are waiting; it
// fails at once if one answers (done) first.
func waitPolls[T any](t *testing.T, n *Node, want int, done chan T) {
	t.Helper()
	for range 200 {
		if n.polls.Open() == want {
			return
		}
		select {
		case r := <-done:
			t.Fatalf("a long-poll answered before %d were waiting: %+v", want, r)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%d long-polls waiting after 10 s, want %d", n.polls.Open(), want)
}

// clientFrom is an HTTP client whose connections come from local
// address ip.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// With caps of 2 long-polls per client and 3 in all, a client's third
// waiting poll and a third client's first get 503 with Retry-After at
// once; the three waiting get the next manifest.
func TestLongPollCap(t *testing.T) {
	tn := startTestNodeWith(t, 1, HTTPLimits{MaxLongPolls: 3, MaxLongPollsPerClient: 2}, nil)
	seq := tn.manifest(t).Seq
	poll := fmt.Sprintf("%s/lists/demo/manifest?after=%d&wait=30", tn.url, seq)
	type result struct {
		status int
		retry  string
		err    error
	}
	get := func(ip string) result {
		resp, err := clientFrom(ip).Get(poll)
		if err != nil {
			return result{err: err}
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return result{status: resp.StatusCode, retry: resp.Header.Get("Retry-After")}
	}
	done := make(chan result, 3)
	for i, ip := range []string{"127.0.0.1", "127.0.0.1", "127.0.0.2"} {
		go func() { done <- get(ip) }()
		waitPolls(t, tn.node, i+1, done)
	}
	for _, ip := range []string{"127.0.0.1", "127.0.0.3"} {
		if r := get(ip); r.status != http.StatusServiceUnavailable || r.retry == "" {
			t.Errorf("poll from %s over the cap: %+v, want 503 with Retry-After", ip, r)
		}
	}
	addAt(t, tn.l, 100, tn.now.Add(time.Minute))
	tn.now = tn.now.Add(2 * time.Minute)
	if _, err := tn.node.Publish("demo"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if r := <-done; r.status != http.StatusOK {
			t.Errorf("waiting poll: %+v, want 200", r)
		}
	}
	if n := tn.node.polls.Open(); n != 0 {
		t.Errorf("%d long-polls counted after all answered", n)
	}
}
