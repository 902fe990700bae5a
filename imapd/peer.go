package imapd

import (
	"crypto/tls"
	"net"
	"syscall"
	"time"
)

// Noticing a client that hangs up while a command runs. imapserver reads
// nothing while it answers a command (one goroutine per connection reads
// a command, answers it, reads the next), so a client that sends a slow
// SEARCH and closes the socket is not seen until the SEARCH ends: the
// hostile SEARCH of issue 11 kept ~1.7 cores busy 75 s for nobody.
// Reading the socket from another goroutine would take the client's
// next commands from imapserver, so the connection layer instead asks
// the kernel, without reading, whether the peer has closed: once a
// command has run for watchAfter, every watchEvery, until imapserver
// reads again (conn.Read). A closed peer cancels the connection's
// context, which the session's work runs under (session.ctx).
//
// The client's FIN counts as gone even when it only shut down its
// sending side: IMAP has no half-close (a client ends with LOGOUT and
// reads to the end), and a FIN is all a client that quits sends.
const (
	// watchAfter: most commands end well before; a timer that never
	// fires costs next to nothing.
	watchAfter = 100 * time.Millisecond
	// watchEvery: one poll(2) without waiting per long command and
	// interval; the work after a hang-up is at most this much longer.
	watchEvery = 100 * time.Millisecond
)

// busy starts watching the peer: imapserver has what it read and may be
// answering a command.
func (c *conn) busy() {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	c.watching = true
	if c.watch == nil {
		c.watch = time.AfterFunc(watchAfter, c.checkPeer)
	} else {
		c.watch.Reset(watchAfter)
	}
}

// idle stops watching: imapserver reads, and sees a hang-up itself.
func (c *conn) idle() {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	c.watching = false
	if c.watch != nil {
		c.watch.Stop()
	}
}

// checkPeer runs on the watch timer.
func (c *conn) checkPeer() {
	c.watchMu.Lock()
	watching := c.watching
	c.watchMu.Unlock()
	if !watching || c.ctx.Err() != nil {
		return
	}
	if peerClosed(c.raw) {
		c.s.log.Debug("imapd: client hung up during a command", "remote", c.raw.RemoteAddr().String(),
			"command", c.commandName())
		c.cancel()
		return
	}
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.watching {
		c.watch.Reset(watchEvery)
	}
}

// peerClosed reports whether the peer of nc (a TCP connection, or TLS
// over one) has closed or reset it, without reading from it; false when
// it cannot tell.
func peerClosed(nc net.Conn) bool {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	if err := rc.Control(func(fd uintptr) { closed = fdPeerClosed(fd) }); err != nil {
		return true // closed here
	}
	return closed
}
