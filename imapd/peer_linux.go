package imapd

// golang.org/x/sys/unix was already in the module graph (indirect, through
// x/crypto, x/term and others); package syscall has neither poll(2) nor
// POLLRDHUP on every Linux port (linux/arm64 has only ppoll).
import "golang.org/x/sys/unix"

// fdPeerClosed: POLLRDHUP (Linux 2.6.17) reports the peer's FIN even
// when commands it sent before are still unread; POLLHUP and POLLERR a
// reset.
func fdPeerClosed(fd uintptr) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR) != 0
}
