// Package netlimit holds what the listeners' caps share (HTTP and
// BitTorrent in swarm, IMAP): their default size, the key per-client
// caps count by, and the counts. It imports nothing of ours.
package netlimit

import (
	"net/netip"
	"sync"
)

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

// DefaultCap is a listener's default cap on connections: def, lowered to
// a quarter of the process's descriptor limit so that no one listener can
// take the descriptors the others and the archive's files need (under a
// limit of 1,024, 1,002 idle HTTP connections made SMTP and IMAP fail
// accept4 with "too many open files").
func DefaultCap(def int) int {
	if nofile := OpenFileLimit(); nofile > 0 {
		return max(1, min(def, nofile/4))
	}
	return def
}

// Counts counts open things (connections, long-polls, connections not
// logged in) in all and per client key.
type Counts struct {
	mu       sync.Mutex
	total    int
	byClient map[string]int
}

// NewCounts returns empty counts.
func NewCounts() *Counts { return &Counts{byClient: map[string]int{}} }

// Acquire counts one more for client unless that makes more than total in
// all or perClient for client.
func (c *Counts) Acquire(client string, total, perClient int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.total >= total || c.byClient[client] >= perClient {
		return false
	}
	c.total++
	c.byClient[client]++
	return true
}

// Release counts one less for client.
func (c *Counts) Release(client string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.byClient[client]--; c.byClient[client] <= 0 {
		delete(c.byClient, client)
	}
}

// Open returns how many are counted in all.
func (c *Counts) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}
