//go:build !unix

package imapd

// fdPeerClosed cannot tell here: a hang-up is noticed when the command
// ends.
func fdPeerClosed(uintptr) bool { return false }
