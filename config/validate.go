package config

import (
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// listName is what a list name must look like: it names a directory and a
// git repository.
var listName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Validate checks c as Load does, and returns an *Error listing every
// problem, or nil. Callers that build a Config in code use it.
func (c *Config) Validate() error {
	if p := c.problems(); len(p) > 0 {
		return &Error{Problems: p}
	}
	return nil
}

// problems returns one line per problem in c, led by its key path.
func (c *Config) problems() []string {
	var ps []string
	add := func(path, format string, args ...any) {
		ps = append(ps, path+": "+fmt.Sprintf(format, args...))
	}

	if strings.TrimSpace(c.Data) == "" {
		add("data", "must not be empty")
	}
	if c.MaxMessageSize <= 0 {
		add("max_message_size", "must be positive, have %d", c.MaxMessageSize)
	}

	seen := map[string]string{} // listen address → key
	for _, nl := range []struct {
		key string
		l   Listener
	}{{"smtp", c.SMTP}, {"lmtp", c.LMTP}, {"imap", c.IMAP}, {"imaps", c.IMAPS}, {"http", c.HTTP}} {
		if nl.l.Listen != "" {
			if err := checkListen(nl.l.Listen); err != nil {
				add(nl.key+".listen", "%v", err)
			} else if other, ok := seen[nl.l.Listen]; ok && !strings.HasSuffix(nl.l.Listen, ":0") {
				add(nl.key+".listen", "%q is already %s.listen", nl.l.Listen, other)
			} else {
				seen[nl.l.Listen] = nl.key
			}
		}
		switch {
		case nl.l.TLSCert != "" && nl.l.TLSKey == "":
			add(nl.key+".tls_key", "missing: tls_cert is set, so tls_key must be too")
		case nl.l.TLSCert == "" && nl.l.TLSKey != "":
			add(nl.key+".tls_cert", "missing: tls_key is set, so tls_cert must be too")
		case nl.l.TLSCert != "":
			if _, err := tls.LoadX509KeyPair(nl.l.TLSCert, nl.l.TLSKey); err != nil {
				add(nl.key+".tls_cert", "%s and %s: %v", nl.l.TLSCert, nl.l.TLSKey, err)
			}
		}
	}

	bt := c.BitTorrent
	if bt.Listen == "" {
		add("bittorrent.listen", "must not be empty (port 0 picks a free port)")
	} else if err := checkListen(bt.Listen); err != nil {
		add("bittorrent.listen", "%v", err)
	}
	for i, hp := range bt.DHTBootstrap {
		if _, _, err := net.SplitHostPort(hp); err != nil {
			add(fmt.Sprintf("bittorrent.dht_bootstrap[%d]", i), "%q is not host:port", hp)
		}
	}
	for i, u := range bt.Trackers {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "udp://") {
			add(fmt.Sprintf("bittorrent.trackers[%d]", i), "%q is not an http, https or udp announce URL", u)
		}
	}
	if bt.WebSeed != "" && !strings.HasPrefix(bt.WebSeed, "http://") && !strings.HasPrefix(bt.WebSeed, "https://") {
		add("bittorrent.web_seed", "%q is not an http or https URL", bt.WebSeed)
	}
	if bt.UploadLimit < 0 {
		add("bittorrent.upload_limit", "must not be negative")
	}
	if bt.SliceInterval < time.Second {
		add("bittorrent.slice_interval", "must be at least 1s, have %v", bt.SliceInterval)
	}

	if c.IMAPS.Listen != "" && c.IMAPS.TLSCert == "" {
		add("imaps.tls_cert", "missing: implicit TLS needs a certificate")
	}

	for i, n := range c.Networks {
		if !n.IsValid() {
			add(fmt.Sprintf("networks[%d]", i), "not a valid network")
		}
	}

	names := map[string]int{}
	owner := map[string]string{} // lower-cased address → key path of its first use
	for i, l := range c.Lists {
		path := fmt.Sprintf("list[%d]", i)
		switch {
		case l.Name == "":
			add(path+".name", "missing")
		case !listName.MatchString(l.Name):
			add(path+".name", "%q is not a list name (lower-case letters, digits, '.', '_', '-'; at most 64; starts with a letter or digit)", l.Name)
		default:
			if j, ok := names[l.Name]; ok {
				add(path+".name", "%q is also list[%d].name", l.Name, j)
			} else {
				names[l.Name] = i
			}
		}
		if len(l.Addresses) == 0 {
			add(path+".addresses", "a list needs at least one address")
		}
		for j, a := range l.Addresses {
			ap := fmt.Sprintf("%s.addresses[%d]", path, j)
			if !isAddress(a) {
				add(ap, "%q is not an email address", a)
				continue
			}
			key := strings.ToLower(a)
			if prev, ok := owner[key]; ok {
				add(ap, "%q is also %s", a, prev)
				continue
			}
			owner[key] = ap
		}
	}

	c.followProblems(add, names, owner)

	if _, ok := names[c.Postmaster]; c.Postmaster != "" && !ok {
		add("postmaster", "%q is not the name of a [[list]]", c.Postmaster)
	}

	users := map[string]int{}
	for i, u := range c.Users {
		path := fmt.Sprintf("user[%d]", i)
		if u.Name == "" {
			add(path+".name", "missing")
		} else if j, ok := users[u.Name]; ok {
			add(path+".name", "%q is also user[%d].name", u.Name, j)
		} else {
			users[u.Name] = i
			if err := checkUserName(u.Name); err != nil {
				add(path+".name", "%v", err)
			}
		}
		if u.PasswordHash == "" {
			add(path+".password_hash", "missing")
		}
	}
	return ps
}

// followProblems checks the [[follow]] tables: names, key, sources, and
// that no local name or address is also a [[list]]'s (names and owner are
// the [[list]] names and lower-cased addresses, as problems collected them).
func (c *Config) followProblems(add func(path, format string, args ...any), names map[string]int, owner map[string]string) {
	locals := map[string]string{} // local name → key path of its first use
	for i, f := range c.Follows {
		path := fmt.Sprintf("follow[%d]", i)
		switch {
		case f.List == "":
			add(path+".list", "missing: the list's name at its origin")
		case !listName.MatchString(f.List):
			add(path+".list", "%q is not a list name (lower-case letters, digits, '.', '_', '-'; at most 64; starts with a letter or digit)", f.List)
		}
		switch {
		case f.Key == "":
			add(path+".key", "missing: a list is followed by its ed25519 public key (64 hex digits, as keygen prints it), never by what a source says; a follower without it refuses to start")
		case !isHexKey(f.Key):
			add(path+".key", "%q is not an ed25519 public key: want 64 hex digits, as keygen prints it", f.Key)
		}
		// With the DHT on, the key alone finds the list: its BEP 44
		// item names the newest manifest, get_peers of its rendezvous
		// torrent the peers that hold it.
		if len(f.Sources) == 0 && !c.BitTorrent.DHT {
			add(path+".sources", "a followed list needs at least one source (\"http://host:port\", \"https://host\" or a BitTorrent peer \"host:port\"), or [bittorrent] dht = true (the key then finds it)")
		}
		for j, src := range f.Sources {
			if err := checkFollowSource(src); err != nil {
				add(fmt.Sprintf("%s.sources[%d]", path, j), "%v", err)
			}
		}
		lp := path + ".list"
		if f.Local != "" {
			lp = path + ".local"
			if !listName.MatchString(f.Local) {
				add(lp, "%q is not a list name (lower-case letters, digits, '.', '_', '-'; at most 64; starts with a letter or digit)", f.Local)
			}
		}
		if local := f.LocalName(); listName.MatchString(local) {
			if j, ok := names[local]; ok {
				add(lp, "%q is also list[%d].name: a mirror is a list of its own (give local = \"OTHER\" to name it otherwise)", local, j)
			} else if prev, ok := locals[local]; ok {
				add(lp, "%q is also the local name of %s", local, prev)
			} else {
				locals[local] = lp
			}
		}
		if f.Address != "" {
			ap := path + ".address"
			if !isAddress(f.Address) {
				add(ap, "%q is not an email address", f.Address)
			} else if prev, ok := owner[strings.ToLower(f.Address)]; ok {
				add(ap, "%q is also %s", f.Address, prev)
			} else {
				owner[strings.ToLower(f.Address)] = ap
			}
		}
	}
}

// isHexKey reports whether s is an ed25519 public key in hex.
func isHexKey(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// checkFollowSource accepts what swarm.FollowSpec takes as a source (the
// same rules; config imports nothing of ours): "http://host:port",
// "https://host[:port]", either optionally with the path /lists/NAME, or
// a BitTorrent peer "host:port".
func checkFollowSource(src string) error {
	const form = `want "http://HOST:PORT", "https://HOST[:PORT]" (optionally with /lists/NAME) or a BitTorrent peer "HOST:PORT"`
	if src == "" || strings.ContainsFunc(src, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == ',' || r == '@' || r == '?' || r == '#' || r == '%' || r == '\\'
	}) {
		return fmt.Errorf("%q: %s", src, form)
	}
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		host, port, err := net.SplitHostPort(src)
		if err != nil || host == "" {
			return fmt.Errorf("%q: %s", src, form)
		}
		return checkPeerPort(src, port)
	}
	u, err := url.Parse(src)
	if err != nil || u.Hostname() == "" || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: %s", src, form)
	}
	if u.Port() != "" || strings.HasSuffix(u.Host, ":") {
		if err := checkPeerPort(src, u.Port()); err != nil {
			return err
		}
	}
	if u.Scheme == "http" && u.Port() == "" {
		return fmt.Errorf("%q: an http source names its port (http://HOST:PORT)", src)
	}
	switch path := strings.TrimSuffix(u.Path, "/"); {
	case path == "":
	case strings.HasPrefix(path, "/lists/") && listName.MatchString(strings.TrimPrefix(path, "/lists/")):
	default:
		return fmt.Errorf("%q: path %q: want none or /lists/NAME", src, path)
	}
	return nil
}

// checkPeerPort accepts a port one can dial: 1 to 65535.
func checkPeerPort(src, port string) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", src, port)
	}
	return nil
}

// maxUserName is the longest [[user]] name, in octets: the longest
// name IMAP logs in (imapd's maxUserName; an email address is at most
// 254 octets, RFC 5321 section 4.5.3.1.3).
const maxUserName = 255

// checkUserName accepts the names IMAP logs in: UTF-8 of at most
// maxUserName octets without control characters.
func checkUserName(name string) error {
	if len(name) > maxUserName {
		return fmt.Errorf("%d octets, more than %d", len(name), maxUserName)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%q is not UTF-8", name)
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%q has a control character", name)
	}
	return nil
}

// checkListen accepts host:port with a numeric port; an empty host means
// every interface.
func checkListen(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port", s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	return nil
}

// isAddress reports whether s looks like local@domain: a bare address
// with no display name, spaces or angle brackets, and a domain of letters,
// digits, dots and hyphens.
func isAddress(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if strings.ContainsAny(local, " \t\r\n<>()[],;:\\\"@") {
		return false
	}
	if strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return false
	}
	for _, r := range domain {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}
