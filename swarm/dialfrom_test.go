package swarm

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// TestDialsFromListenAddress: a mirror listening on 127.0.0.3 syncs from
// an origin's HTTP alone (the origin's BitTorrent closed: manifests,
// .torrent files and every pack over the web seed), and every connection
// the origin's HTTP accepted came from 127.0.0.3, not from the system's
// choice (127.0.0.1), which all mirrors on one host shared and whose
// per-client cap a late join filled.
func TestDialsFromListenAddress(t *testing.T) {
	var mu sync.Mutex
	from := map[string]int{}
	tn := startTestNodeOpts(t, 5, Options{}, func(ln net.Listener) net.Listener {
		return &recordingListener{Listener: ln, seen: func(a net.Addr) {
			mu.Lock()
			defer mu.Unlock()
			from[a.(*net.TCPAddr).IP.String()]++
		}}
	})
	tn.node.Close() // no BitTorrent peer: the web seed carries every pack
	now := func() time.Time { return tn.now }
	m := startMirrorOpts(t, Options{Now: now, Listen: "127.0.0.3:0"}, tn.l.PublicKey(), tn.url)
	if err := m.node.SyncOnce(t.Context(), "demo"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exportOf(t, tn.a, "demo"), exportOf(t, m.a, "demo")) {
		t.Fatal("the mirror's export differs from the origin's")
	}
	st := mustFollowStatus(t, m)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("origin's HTTP accepted connections from %v; the mirror downloaded %d bytes", from, st.BytesDown)
	if st.BytesDown == 0 {
		t.Error("the mirror downloaded nothing over the web seed")
	}
	if len(from) != 1 || from["127.0.0.3"] == 0 {
		t.Errorf("connections from %v, want all from 127.0.0.3", from)
	}
}

type recordingListener struct {
	net.Listener
	seen func(net.Addr)
}

func (l *recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.seen(c.RemoteAddr())
	}
	return c, err
}

// The rule: bind to a loopback listen address only for loopback
// destinations of its family; to another address for its family and
// names; never for 0.0.0.0.
func TestFromDialerRule(t *testing.T) {
	lnFor := func(ip string) (net.Listener, string) {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Skipf("listen %s: %v", ip, err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln, ln.Addr().String()
	}
	accepted := func(ln net.Listener) string {
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.RemoteAddr().(*net.TCPAddr).IP.String()
	}
	ln2, a2 := lnFor("127.0.0.2")
	for _, tc := range []struct {
		listen, want string
	}{
		{"127.0.0.4", "127.0.0.4"}, // loopback to loopback: bound
		{"0.0.0.0", "127.0.0.1"},   // unspecified: the system's choice
		{"", "127.0.0.1"},
	} {
		c, err := newFromDialer(tc.listen, 5*time.Second).DialContext(context.Background(), "tcp", a2)
		if err != nil {
			t.Fatalf("listen %q: %v", tc.listen, err)
		}
		if got := accepted(ln2); got != tc.want {
			t.Errorf("listen %q: dialed from %s, want %s", tc.listen, got, tc.want)
		}
		c.Close()
	}
	// A loopback listen address and an IPv6 loopback destination: the
	// other family, not bound (a bound dial would fail).
	if ln6, a6 := lnFor("::1"); ln6 != nil {
		c, err := newFromDialer("127.0.0.4", 5*time.Second).DialContext(context.Background(), "tcp", a6)
		if err != nil {
			t.Fatalf("127.0.0.4 to %s: %v", a6, err)
		}
		if got := accepted(ln6); got != "::1" {
			t.Errorf("dialed [::1] from %s", got)
		}
		c.Close()
	}
}

// TestFromPacketConn: a UDP tracker announce's socket opens at its first
// write, from the listen address for a destination the rule binds (the
// tracker sees 127.0.0.4, not the system's 127.0.0.1) and unbound for
// one it does not; answers come back through it; Close before any write
// ends a waiting read.
func TestFromPacketConn(t *testing.T) {
	srv, err := net.ListenPacket("udp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	echo := func() string { // answers one packet, returns its source IP
		srv.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 64)
		n, from, err := srv.ReadFrom(b)
		if err != nil {
			t.Fatal(err)
		}
		srv.WriteTo(b[:n], from)
		return from.(*net.UDPAddr).IP.String()
	}
	for _, tc := range []struct{ listen, want string }{
		{"127.0.0.4", "127.0.0.4"},
		{"0.0.0.0", "127.0.0.1"},
	} {
		pc, err := newFromDialer(tc.listen, 5*time.Second).ListenPacket("udp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() {
			b := make([]byte, 64)
			n, _, err := pc.ReadFrom(b)
			if err != nil {
				got <- err.Error()
				return
			}
			got <- string(b[:n])
		}()
		pc.SetReadDeadline(time.Now().Add(5 * time.Second)) // before the socket opens
		if _, err := pc.WriteTo([]byte("hello"), srv.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		if from := echo(); from != tc.want {
			t.Errorf("listen %s: the packet came from %s, want %s", tc.listen, from, tc.want)
		}
		if g := <-got; g != "hello" {
			t.Errorf("listen %s: read %q, want the echo", tc.listen, g)
		}
		pc.Close()
	}
	// Another family (IPv6 loopback) from an IPv4 listen address: the
	// system's choice, so the write does not fail.
	if srv6, err := net.ListenPacket("udp", "[::1]:0"); err == nil {
		defer srv6.Close()
		pc, _ := newFromDialer("127.0.0.4", 5*time.Second).ListenPacket("udp", ":0")
		if _, err := pc.WriteTo([]byte("x"), srv6.LocalAddr()); err != nil {
			t.Errorf("127.0.0.4 to [::1]: %v", err)
		}
		pc.Close()
	}
	// Closed before any write: a waiting read ends.
	pc, _ := newFromDialer("127.0.0.4", 5*time.Second).ListenPacket("udp", ":0")
	done := make(chan error, 1)
	go func() {
		_, _, err := pc.ReadFrom(make([]byte, 8))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	pc.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read waiting for the first write outlived Close")
	}
	if _, err := pc.WriteTo([]byte("x"), srv.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v, want net.ErrClosed", err)
	}
}
