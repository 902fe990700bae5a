package config

import (
	"net/netip"
	"strings"
	"time"
)

// Config is the whole configuration of one mailswarm process.
type Config struct {
	// Data is the data directory: the archive, its index and the torrent
	// data live under it.
	Data string

	// SMTP, LMTP, IMAP and HTTP are the listeners; an empty Listen turns
	// that listener off.
	SMTP, LMTP, IMAP, HTTP Listener
	// IMAPS is IMAP over implicit TLS (RFC 8314); off by default, it
	// needs TLSCert and TLSKey.
	IMAPS Listener
	// IMAPAnonymous allows AUTHENTICATE ANONYMOUS on IMAP: read-only
	// access to every list, without flags, from anywhere.
	IMAPAnonymous bool
	// IMAPRequireLogin makes IMAP clients on loopback log in as a
	// [[user]] too, as every other client must. Set it when a TLS
	// terminator (stunnel, haproxy, nginx) or an ssh -L on the same host
	// forwards remote clients: they all arrive from loopback. A [[user]]
	// name always needs its password, with or without it.
	IMAPRequireLogin bool

	// MaxMessageSize is the largest message, in bytes, that SMTP and LMTP
	// accept (RFC 1870 SIZE).
	MaxMessageSize int64

	// Networks are the client networks allowed to relay to the lists
	// without authentication.
	Networks []netip.Prefix

	// Postmaster names the list that receives SMTP and LMTP mail for the
	// postmaster (RFC 5321 section 4.5.1: <postmaster>, postmaster@ a
	// list's domain). A list's mail is published, so empty, the default,
	// refuses such mail with a 550 that says why.
	Postmaster string

	// Lists are the mailing lists this process archives.
	Lists []List

	// Follows are the lists this process mirrors: read-only copies of
	// another node's lists, trusted by their key alone.
	Follows []Follow

	// Users may log in to IMAP.
	Users []User

	// BitTorrent configures the swarm: seeding, DHT, trackers, web seed
	// and the slice interval.
	BitTorrent BitTorrent

	// HTTPLimits are the HTTP listener's caps ([http] max_conns, ...).
	HTTPLimits HTTPLimits

	// IMAPLimits are the IMAP listeners' caps ([imap] max_conns, ...).
	IMAPLimits IMAPLimits
}

// IMAPLimits cap the IMAP listeners (IMAP and IMAPS together); 0 means
// the server's default (imapd.Options: 1000 connections but at most a
// quarter of the descriptor limit; a quarter of that, at least 16, per
// client address not logged in; 60 s to log in). Behind a proxy on the
// same host every client has the proxy's address: raise
// MaxPreAuthPerClient there.
type IMAPLimits struct {
	MaxConns, MaxPreAuthPerClient int
	LoginTimeout                  time.Duration
}

// HTTPLimits cap the HTTP listener, which a public mirror opens to
// anyone; 0 means the server's default (swarm.HTTPLimits: 512
// connections but at most a quarter of the descriptor limit, 16 per
// client, 128 long-polls, 8 per client). A client is an IP address (IPv6:
// a /64): behind a reverse proxy on the same host every client is the
// proxy, so raise the per-client caps there.
type HTTPLimits struct {
	MaxConns, MaxConnsPerClient         int
	MaxLongPolls, MaxLongPollsPerClient int
}

// BitTorrent configures the swarm node.
type BitTorrent struct {
	// Listen is the BitTorrent TCP address; port 0 picks a free port.
	Listen string
	// DHT joins the mainline DHT; DHTBootstrap are host:port nodes to
	// start from (empty: the client's defaults).
	DHT          bool
	DHTBootstrap []string
	// Trackers are announce URLs given to every torrent.
	Trackers []string
	// TrackerOff turns this node's own tracker off (tracker = false):
	// GET /announce is 404 and its torrents name no tracker of it.
	TrackerOff bool
	// TrackerInterval is the announce interval the node's tracker tells
	// peers (default DefaultTrackerInterval; 0: the node's default).
	TrackerInterval time.Duration
	// WebSeed is the public base URL of this node's HTTP listener, put in
	// every torrent as its web seed (BEP 19); empty means "http://" +
	// the HTTP listen address, and no web seed when HTTP is off.
	WebSeed string
	// UploadLimit caps upload in bytes per second; 0 means no cap.
	UploadLimit int64
	// SliceInterval is how often an open day's new mail becomes a slice.
	SliceInterval time.Duration
	// MaxConns and MaxConnsPerClient cap the BitTorrent connections, in
	// all and per client address; 0 means the node's default
	// (swarm.PeerLimits: 512 but at most a quarter of the descriptor
	// limit, 16 per client).
	MaxConns, MaxConnsPerClient int
}

// WebSeedBase returns the web seed base URL in effect ("" for none).
func (c *Config) WebSeedBase() string {
	if c.BitTorrent.WebSeed != "" {
		return strings.TrimSuffix(c.BitTorrent.WebSeed, "/")
	}
	if c.HTTP.Listen == "" {
		return ""
	}
	scheme := "http://"
	if c.HTTP.TLS() {
		scheme = "https://"
	}
	return scheme + c.HTTP.Listen
}

// Listener is one network listener.
type Listener struct {
	// Listen is host:port; empty means off.
	Listen string
	// TLSCert and TLSKey are PEM files of a certificate (chain) and its
	// key, both or neither. With them the listener offers STARTTLS
	// (SMTP, LMTP, IMAP) or serves HTTPS.
	TLSCert, TLSKey string
}

// TLS reports whether the listener has a certificate.
func (l Listener) TLS() bool { return l.TLSCert != "" }

// List is one mailing list.
type List struct {
	// Name is the list's name in the archive: ^[a-z0-9][a-z0-9._-]{0,63}$.
	Name string
	// Addresses are the envelope recipients delivered to this list.
	Addresses []string
}

// Follow is one followed (mirrored) list: [[follow]].
type Follow struct {
	// List is the list's name at its origin.
	List string
	// Key is the list's ed25519 public key, 64 hex digits: every
	// manifest must be signed by it. Required: a list is never trusted
	// by what a source says.
	Key string
	// Sources are "http://host:port" or "https://host[:port]" (a node's
	// HTTP base), optionally with the path /lists/NAME, or "host:port"
	// (a BitTorrent peer).
	Sources []string
	// Local is the list's name in this archive; empty means List.
	Local string
	// Address is the list's posting address here, if any: SMTP to it is
	// refused, as to a read-only mirror.
	Address string
}

// LocalName returns the followed list's name in this archive.
func (f Follow) LocalName() string {
	if f.Local != "" {
		return f.Local
	}
	return f.List
}

// User is an IMAP login.
type User struct {
	Name string
	// PasswordHash is a crypt(3)-style hash (bcrypt "$2a$..." or similar).
	PasswordHash string
}

// Default sizes and addresses of the embedded default.
const (
	DefaultData           = "./mailswarm-data"
	DefaultSMTPListen     = "127.0.0.1:2525"
	DefaultIMAPListen     = "127.0.0.1:1143"
	DefaultHTTPListen     = "127.0.0.1:8080"
	DefaultMaxMessageSize = 64 << 20
	DefaultBitTorrent     = "127.0.0.1:0"
	DefaultSliceInterval  = time.Minute
	// DefaultTrackerInterval is swarm.DefaultTrackerInterval (config
	// imports nothing of ours).
	DefaultTrackerInterval = 30 * time.Minute
	// DefaultIMAPLoginTimeout is how long an IMAP connection may stay
	// without logging in (imapd.DefaultLoginTimeout).
	DefaultIMAPLoginTimeout = 60 * time.Second
)

// Default returns the embedded default configuration, the one `mailswarm
// serve` runs with when given no config: data in ./mailswarm-data, SMTP on
// 127.0.0.1:2525, LMTP off, IMAP on 127.0.0.1:1143, HTTP on
// 127.0.0.1:8080, one list "demo" for demo@localhost, messages up to 64
// MiB, loopback networks trusted. Each call returns a new value.
func Default() *Config {
	return &Config{
		Data:           DefaultData,
		SMTP:           Listener{Listen: DefaultSMTPListen},
		IMAP:           Listener{Listen: DefaultIMAPListen},
		HTTP:           Listener{Listen: DefaultHTTPListen},
		MaxMessageSize: DefaultMaxMessageSize,
		Networks: []netip.Prefix{
			netip.MustParsePrefix("127.0.0.0/8"),
			netip.MustParsePrefix("::1/128"),
		},
		Lists:      []List{{Name: "demo", Addresses: []string{"demo@localhost"}}},
		BitTorrent: BitTorrent{Listen: DefaultBitTorrent, SliceInterval: DefaultSliceInterval, TrackerInterval: DefaultTrackerInterval},
		IMAPLimits: IMAPLimits{LoginTimeout: DefaultIMAPLoginTimeout},
	}
}

// ListAddresses maps every list address, lower-cased, to its list's name.
func (c *Config) ListAddresses() map[string]string {
	m := make(map[string]string)
	for _, l := range c.Lists {
		for _, a := range l.Addresses {
			m[strings.ToLower(a)] = l.Name
		}
	}
	return m
}
