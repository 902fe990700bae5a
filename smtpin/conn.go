package smtpin

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// listener filters clients by network and tracks every connection it hands
// to go-smtp, so that Shutdown can reach idle ones.
type listener struct {
	net.Listener
	s *Server
}

// Accept returns the next allowed connection. A client outside
// Options.Networks gets 554 in place of the greeting and is disconnected
// (RFC 5321 section 3.1); Accept then waits for the next one.
func (l *listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.s.allowed(nc.RemoteAddr()) {
			l.s.log.Warn("client network not allowed", "remote", nc.RemoteAddr().String())
			refuse(nc, "554 5.7.1 Client host rejected: access denied\r\n")
			continue
		}
		c := &conn{Conn: nc, s: l.s}
		l.s.mu.Lock()
		closing := l.s.closing
		if !closing {
			l.s.conns[c] = struct{}{}
		}
		l.s.mu.Unlock()
		if closing {
			refuse(nc, "421 4.3.2 Service shutting down\r\n")
			continue
		}
		return c, nil
	}
}

// refuse writes one reply and closes nc. The write is small and bounded by
// a short deadline, so it cannot hold up Accept.
func refuse(nc net.Conn, reply string) {
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	nc.Write([]byte(reply))
	nc.Close()
}

// conn is one client connection. During shutdown, a read outside DATA ends
// the session with 421 instead of waiting for the client.
type conn struct {
	net.Conn
	s *Server

	mu       sync.Mutex
	closing  bool
	inData   bool
	hangup   bool       // a broken DATA transfer: end the session after the reply
	smtpConn *smtp.Conn // set by the first session; nil before EHLO
	closed   sync.Once
}

// connOf finds our conn under go-smtp's, which STARTTLS may have wrapped.
func connOf(sc *smtp.Conn) *conn {
	nc := sc.Conn()
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*conn)
	return c
}

// shutdown marks c as closing and wakes an idle read.
func (c *conn) shutdown() {
	c.mu.Lock()
	c.closing = true
	idle := !c.inData
	c.mu.Unlock()
	if idle {
		c.Conn.SetReadDeadline(time.Now())
	}
}

// setInData records whether a message transfer is in progress; Shutdown
// waits for those.
func (c *conn) setInData(v bool) {
	c.mu.Lock()
	c.inData = v
	c.mu.Unlock()
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// byeNow reports whether a read must end the session.
func (c *conn) byeNow() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing && !c.inData
}

// hangUp makes the next read report EOF, so go-smtp ends the session once
// its reply to the current command is out.
func (c *conn) hangUp() {
	c.mu.Lock()
	c.hangup = true
	c.mu.Unlock()
}

func (c *conn) Read(b []byte) (int, error) {
	c.mu.Lock()
	hangup := c.hangup
	c.mu.Unlock()
	if hangup {
		return 0, io.EOF
	}
	if c.byeNow() {
		return c.bye()
	}
	n, err := c.Conn.Read(b)
	if err != nil && c.byeNow() && errors.Is(err, os.ErrDeadlineExceeded) {
		return c.bye()
	}
	return n, err
}

// bye ends the session with 421 (RFC 5321 section 3.8: the server may send
// 421 asynchronously while the client waits for its next command). In plain
// text we write it ourselves and report EOF; under TLS we report a timeout
// and go-smtp writes its own 421 through the TLS layer. A shutdown during
// the STARTTLS handshake itself fails the handshake; the client retries.
func (c *conn) bye() (int, error) {
	c.mu.Lock()
	sc := c.smtpConn
	c.mu.Unlock()
	if sc != nil {
		if _, isTLS := sc.TLSConnectionState(); isTLS {
			return 0, os.ErrDeadlineExceeded
		}
	}
	c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	c.Conn.Write([]byte("421 4.3.2 Service shutting down\r\n"))
	return 0, io.EOF
}

func (c *conn) SetReadDeadline(t time.Time) error {
	if c.byeNow() {
		t = time.Now()
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *conn) SetDeadline(t time.Time) error {
	c.Conn.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.closed.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return err
}
