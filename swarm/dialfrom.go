package swarm

import (
	"context"
	"net"
	"sync"
	"time"
)

// fromDialer dials from the node's listen address when that is one
// address (not 0.0.0.0 or ::) and can reach the destination: peers,
// trackers, web seeds and HTTP sources then see the node where it
// listens. A tracker stores a peer under the address its announce came
// from; an origin counts connections per client address (16 by default),
// and the web-seed and HTTP connections of mirrors on 127.0.0.3, .4, …
// all left from 127.0.0.1 (the system's choice) and shared one cap: a
// late join of several mirrors filled it (TestMirrorWeek had to start its
// mirrors one after another).
//
// The rule for "can reach": a loopback listen address binds dials to
// loopback destinations only (a node listening on 127.0.0.1, the default,
// still reaches an HTTPS origin elsewhere); any other binds dials to
// destinations of its family, and to host names (dialed in its family:
// "tcp4" or "tcp6", so that the name resolves to an address the bind can
// reach).
type fromDialer struct {
	ip net.IP // nil: never bind
	d  net.Dialer
}

func newFromDialer(listenHost string, timeout time.Duration) *fromDialer {
	fd := &fromDialer{d: net.Dialer{Timeout: timeout}}
	if ip := net.ParseIP(listenHost); ip != nil && !ip.IsUnspecified() {
		fd.ip = ip
	}
	return fd
}

// DialContext dials addr ("host:port") on network ("tcp", "tcp4",
// "tcp6"), from the listen address when the rule above allows.
func (fd *fromDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if fd.ip == nil {
		return fd.d.DialContext(ctx, network, addr)
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fd.d.DialContext(ctx, network, addr)
	}
	v4 := fd.ip.To4() != nil
	if !fd.binds(net.ParseIP(host)) {
		return fd.d.DialContext(ctx, network, addr)
	}
	if network == "tcp" {
		network = "tcp6"
		if v4 {
			network = "tcp4"
		}
	}
	d := fd.d
	d.LocalAddr = &net.TCPAddr{IP: fd.ip}
	return d.DialContext(ctx, network, addr)
}

// binds reports whether a connection to dst (nil: a host name) leaves
// from the listen address, by the rule above.
func (fd *fromDialer) binds(dst net.IP) bool {
	switch {
	case fd.ip == nil:
		return false
	case dst != nil && (dst.To4() != nil) != (fd.ip.To4() != nil):
		return false // the other family
	case dst != nil && fd.ip.IsLoopback() != dst.IsLoopback():
		return false // loopback and not
	case dst == nil && fd.ip.IsLoopback():
		return false // a name, from loopback
	}
	return true
}

// ListenPacket is the UDP side (the client's UDP tracker announces:
// anacrolix opens a socket per tracker with addr ":0" and no word of
// the destination). The socket is opened at its first write, from the
// listen address when the rule above allows for that destination: a
// UDP tracker, ours included, lists a peer under the address its
// packet came from, as an HTTP one does.
func (fd *fromDialer) ListenPacket(network, addr string) (net.PacketConn, error) {
	if fd.ip == nil {
		return net.ListenPacket(network, addr)
	}
	return &fromPacketConn{fd: fd, network: network, addr: addr, ready: make(chan struct{})}, nil
}

// fromPacketConn is a UDP socket opened at its first WriteTo. Reads
// wait for it (or for Close); deadlines set before are applied to it.
type fromPacketConn struct {
	fd            *fromDialer
	network, addr string
	ready         chan struct{} // closed when pc or err is set, or on Close

	mu       sync.Mutex
	pc       net.PacketConn
	err      error
	closed   bool
	deadline [2]time.Time // read, write: set before the socket opened
}

// open opens the socket for a first write to dst, once.
func (c *fromPacketConn) open(dst net.Addr) (net.PacketConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, net.ErrClosed
	}
	if c.pc != nil || c.err != nil {
		return c.pc, c.err
	}
	network, laddr := c.network, c.addr
	if ua, ok := dst.(*net.UDPAddr); ok && c.fd.binds(ua.IP) {
		network = "udp6"
		if c.fd.ip.To4() != nil {
			network = "udp4"
		}
		laddr = net.JoinHostPort(c.fd.ip.String(), "0")
	}
	c.pc, c.err = net.ListenPacket(network, laddr)
	if c.err == nil {
		c.pc.SetReadDeadline(c.deadline[0])
		c.pc.SetWriteDeadline(c.deadline[1])
	}
	close(c.ready)
	return c.pc, c.err
}

func (c *fromPacketConn) WriteTo(b []byte, dst net.Addr) (int, error) {
	pc, err := c.open(dst)
	if err != nil {
		return 0, err
	}
	return pc.WriteTo(b, dst)
}

// ReadFrom waits for the socket to open (a read deadline set before
// then applies only once it is open).
func (c *fromPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	<-c.ready
	c.mu.Lock()
	pc, err, closed := c.pc, c.err, c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return 0, nil, net.ErrClosed
	case err != nil:
		return 0, nil, err
	}
	return pc.ReadFrom(b)
}

func (c *fromPacketConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return net.ErrClosed
	}
	c.closed = true
	if c.pc != nil {
		return c.pc.Close()
	}
	if c.err == nil {
		close(c.ready) // reads waiting for a first write end
	}
	return nil
}

// LocalAddr is the socket's, or the listen address with port 0 before
// it opened.
func (c *fromPacketConn) LocalAddr() net.Addr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pc != nil {
		return c.pc.LocalAddr()
	}
	return &net.UDPAddr{IP: c.fd.ip}
}

func (c *fromPacketConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *fromPacketConn) SetReadDeadline(t time.Time) error  { return c.setDeadline(0, t) }
func (c *fromPacketConn) SetWriteDeadline(t time.Time) error { return c.setDeadline(1, t) }

func (c *fromPacketConn) setDeadline(i int, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pc == nil {
		c.deadline[i] = t
		return nil
	}
	if i == 0 {
		return c.pc.SetReadDeadline(t)
	}
	return c.pc.SetWriteDeadline(t)
}
