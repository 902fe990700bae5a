package swarm

import (
	"context"
	"net"
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
	dst := net.ParseIP(host)
	switch {
	case dst != nil && (dst.To4() != nil) != v4:
		return fd.d.DialContext(ctx, network, addr) // the other family
	case dst != nil && fd.ip.IsLoopback() != dst.IsLoopback():
		return fd.d.DialContext(ctx, network, addr) // loopback and not
	case dst == nil && fd.ip.IsLoopback():
		return fd.d.DialContext(ctx, network, addr) // a name, from loopback
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
