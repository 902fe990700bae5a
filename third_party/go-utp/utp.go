// Package utp stands in for github.com/anacrolix/go-utp, which the module
// proxy mailswarm builds with refuses to serve. mailswarm runs
// anacrolix/torrent with DisableUTP: true (TCP only), so nothing here
// carries uTP: a socket is a plain UDP PacketConn whose Accept blocks
// until Close and whose Dial fails. It exists so that anacrolix/torrent
// compiles; see the replace directive in mailswarm's go.mod.
package utp

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
)

// Default names this implementation in anacrolix/torrent's errors.
const Default = "mailswarm go-utp stub (no uTP)"

// ErrNoUTP is what Dial answers: the stub carries no uTP.
var ErrNoUTP = errors.New("utp: not supported (mailswarm runs BitTorrent over TCP only)")

// Option configures a socket; the stub ignores all of them.
type Option func(*options)

type options struct{ logger *slog.Logger }

// WithLogger is accepted and ignored.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// FirewallCallback would filter incoming connections.
type FirewallCallback func(net.Addr) bool

// Socket is what anacrolix/torrent uses of a uTP socket.
type Socket interface {
	net.PacketConn
	Accept() (net.Conn, error)
	Addr() net.Addr
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
	SetFirewallCallback(FirewallCallback)
}

// NewSocket listens on UDP addr.
func NewSocket(network, addr string, _ ...Option) (Socket, error) {
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		return nil, err
	}
	return NewSocketFromPacketConn(pc)
}

// NewSocketFromPacketConn wraps pc.
func NewSocketFromPacketConn(pc net.PacketConn, _ ...Option) (Socket, error) {
	return &socket{PacketConn: pc, closed: make(chan struct{})}, nil
}

type socket struct {
	net.PacketConn
	once   sync.Once
	closed chan struct{}
}

func (s *socket) Accept() (net.Conn, error) {
	<-s.closed
	return nil, net.ErrClosed
}

func (s *socket) Addr() net.Addr { return s.LocalAddr() }

func (s *socket) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, ErrNoUTP
}

func (s *socket) SetFirewallCallback(FirewallCallback) {}

func (s *socket) Close() error {
	s.once.Do(func() { close(s.closed) })
	return s.PacketConn.Close()
}
