//go:build unix && !linux

package imapd

import "golang.org/x/sys/unix"

// fdPeerClosed peeks at the socket without waiting: end of stream is the
// peer's FIN, an error other than "nothing yet" a reset. Unlike Linux's
// POLLRDHUP it cannot see a FIN behind unread commands.
func fdPeerClosed(fd uintptr) bool {
	var b [1]byte
	n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return false
	case err != nil:
		return true
	}
	return n == 0
}
