// Package netlimit holds what the listeners' connection caps share: the
// process's descriptor limit, which sizes their defaults, and the key
// per-client caps count by. It imports nothing of ours.
package netlimit

import "net/netip"

// ClientKey is what per-client caps count: the IP address, IPv6 by its
// /64 (one host's usual share). addr is "host:port" (net.Addr.String());
// one that does not parse is its own key.
func ClientKey(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return addr
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
