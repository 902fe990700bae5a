package smtpin

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeDeliverer records deliveries; fail decides an error per list.
type fakeDeliverer struct {
	mu   sync.Mutex
	got  []delivery
	fail func(list string) error
	// block, when set, holds Deliver until it is closed.
	block chan struct{}
	// started receives a value when Deliver is entered (if non-nil).
	started chan struct{}
}

type delivery struct {
	list string
	raw  string
}

func (f *fakeDeliverer) Deliver(ctx context.Context, list string, raw []byte) error {
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.fail != nil {
		if err := f.fail(list); err != nil {
			return err
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, delivery{list, string(raw)})
	return nil
}

func (f *fakeDeliverer) deliveries() []delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]delivery(nil), f.got...)
}

var (
	errFakeTemp   = errors.New("archive: spool: write /secret/path: no space left on device")
	errFakeReject = errors.New("archive: rejected: not a message")
)

// testLogger writes to t.Log so failures show the server's side. Lines
// logged once the test is over are dropped: a session that outlives its
// test (TestShutdownDeadline gives up on one still delivering) logs its
// end later, and t.Log then panics ("Log in goroutine after ... has
// completed"), which failed a CI run.
func testLogger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

// start runs a server on 127.0.0.1:0 and returns its address.
func start(t testing.TB, d Deliverer, opts *Options) (*Server, string) {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.IsTempFail == nil && opts.IsRejected == nil {
		opts.IsTempFail = func(err error) bool { return errors.Is(err, errFakeTemp) }
		opts.IsRejected = func(err error) bool { return errors.Is(err, errFakeReject) }
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(d, opts)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve = %v, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
	})
	return s, ln.Addr().String()
}

// rawClient speaks the protocol by hand, for input no real client sends.
type rawClient struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &rawClient{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// reply reads one (possibly multi-line) reply and returns its last line.
func (c *rawClient) reply() string {
	c.t.Helper()
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply: %v (got %q)", err, line)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) >= 4 && line[3] == '-' {
			continue
		}
		return line
	}
}

// expect reads one reply and fails unless it starts with prefix.
func (c *rawClient) expect(prefix string) string {
	c.t.Helper()
	got := c.reply()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("reply = %q, want prefix %q", got, prefix)
	}
	return got
}

// cmd sends a line and expects a reply starting with prefix.
func (c *rawClient) cmd(line, prefix string) string {
	c.t.Helper()
	c.send(line + "\r\n")
	return c.expect(prefix)
}

// hello reads the greeting and says EHLO.
func (c *rawClient) hello() {
	c.t.Helper()
	c.greet(false)
}

// greet reads the greeting and says EHLO, or LHLO to an LMTP server.
func (c *rawClient) greet(lmtp bool) {
	c.t.Helper()
	c.expect("220 ")
	if lmtp {
		c.cmd("LHLO test.example", "250 ")
	} else {
		c.cmd("EHLO test.example", "250 ")
	}
}

func mustPrefixes(t testing.TB, ss ...string) []netip.Prefix {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
