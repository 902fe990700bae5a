package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Error is a configuration that cannot be used. It lists every problem
// found, not only the first.
type Error struct {
	// File is the configuration file, if any.
	File string
	// Problems are one line each, led by the key path they concern
	// (`list[2].addresses[0]: "foo" is not an email address`); indexes
	// count from 0.
	Problems []string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config")
	if e.File != "" {
		b.WriteString(" ")
		b.WriteString(e.File)
	}
	if len(e.Problems) == 1 {
		b.WriteString(": 1 problem:")
	} else {
		fmt.Fprintf(&b, ": %d problems:", len(e.Problems))
	}
	for _, p := range e.Problems {
		b.WriteString("\n\t")
		b.WriteString(p)
	}
	return b.String()
}

// Load reads the TOML file at path over the embedded default and checks
// the result. Keys (all optional):
//
//	data                 string, the data directory
//	max_message_size     integer bytes or a string with a unit: "64MiB", "10MB"
//	networks             array of CIDR strings; replaces the default
//	postmaster           name of the [[list]] that gets postmaster mail (default none: 550)
//	imap_anonymous       boolean: AUTHENTICATE ANONYMOUS, read-only (default false)
//	imap_require_login   boolean: loopback IMAP clients log in as a [[user]] too (default
//	                     false); set it behind a TLS terminator or ssh -L on the same host
//	[smtp] [lmtp] [imap] [imaps] [http]
//	  listen             "host:port", "" turns the listener off
//	  tls_cert, tls_key  PEM files, both or neither
//	[imap]
//	  max_conns, max_preauth_per_client          integers ≥ 0, 0 = default
//	  login_timeout      duration ("60s"): time to log in before BYE
//	[http]
//	  max_conns, max_conns_per_client            integers ≥ 0, 0 = default
//	  max_long_polls, max_long_polls_per_client  integers ≥ 0, 0 = default
//	[[list]]             name, addresses; any [[list]] replaces the default list
//	[[user]]             name (1 to 255 octets, no control characters), password_hash
//	[[follow]]           a list this node mirrors, read-only:
//	  list               the list's name at its origin
//	  key                its ed25519 public key, 64 hex digits (required)
//	  sources            array: "http://host:port" or "https://host[:port]"
//	                     (optionally with /lists/NAME), or "host:port" BitTorrent peers
//	                     (none with [bittorrent] dht = true: found by its key alone)
//	  local              its name here (default: list); not a [[list]] name
//	  address            its posting address here: SMTP to it is refused (a mirror)
//	[bittorrent]
//	  listen             "host:port" for BitTorrent (TCP; UDP on the same port for the
//	                     DHT and the tracker); default "127.0.0.1:0"
//	  dht                boolean, join the mainline DHT (default false)
//	  dht_bootstrap      array of "host:port" DHT nodes to start from
//	  trackers           array of announce URLs
//	  tracker            boolean, this node's own tracker at /announce and over UDP
//	                     on the listen port (BEP 15), with /scrape (default true)
//	  tracker_interval   duration ("30m"): the announce interval it tells peers
//	  web_seed           base URL of this node's HTTP, for the torrents' web seed
//	  upload_limit       bytes per second (size syntax, "10MiB"); 0 = none
//	  slice_interval     duration ("60s", "5m"): how often new mail is sliced
//	  max_conns, max_conns_per_client            integers ≥ 0, 0 = default
//
// A key not given keeps its default. Unknown keys are errors. Every
// problem found is reported at once in one *Error. A file that cannot be
// read, or is not TOML, gives an *Error with that one problem.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(string(data))
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = path
		}
		return nil, err
	}
	return c, nil
}

// parse reads TOML text over the default and validates it.
func parse(text string) (*Config, error) {
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		return nil, &Error{Problems: []string{strings.TrimPrefix(err.Error(), "toml: ")}}
	}
	l := &loader{c: Default()}
	l.top(raw)
	l.problems = append(l.problems, l.c.problems()...)
	if len(l.problems) > 0 {
		return nil, &Error{Problems: l.problems}
	}
	return l.c, nil
}

// loader copies decoded TOML values into a Config, collecting problems.
type loader struct {
	c        *Config
	problems []string
}

func (l *loader) problem(path, format string, args ...any) {
	l.problems = append(l.problems, path+": "+fmt.Sprintf(format, args...))
}

// sortedKeys returns m's keys in order, so problems come out stable.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func (l *loader) top(raw map[string]any) {
	for _, k := range sortedKeys(raw) {
		v := raw[k]
		switch k {
		case "data":
			if s, ok := l.str(k, v); ok {
				l.c.Data = s
			}
		case "max_message_size":
			if n, ok := l.size(k, v); ok {
				l.c.MaxMessageSize = n
			}
		case "networks":
			l.c.Networks = l.networks(k, v)
		case "postmaster":
			if s, ok := l.str(k, v); ok {
				l.c.Postmaster = s
			}
		case "smtp":
			l.listener(k, v, &l.c.SMTP)
		case "lmtp":
			l.listener(k, v, &l.c.LMTP)
		case "imap":
			l.imap(k, v)
		case "http":
			l.http(k, v)
		case "imaps":
			l.listener(k, v, &l.c.IMAPS)
		case "imap_anonymous":
			l.boolean(k, v, &l.c.IMAPAnonymous)
		case "imap_require_login":
			l.boolean(k, v, &l.c.IMAPRequireLogin)
		case "bittorrent":
			l.bittorrent(k, v)
		case "list":
			l.c.Lists = nil
			for i, t := range l.tables(k, v) {
				l.c.Lists = append(l.c.Lists, l.list(fmt.Sprintf("list[%d]", i), t))
			}
		case "follow":
			for i, t := range l.tables(k, v) {
				l.c.Follows = append(l.c.Follows, l.follow(fmt.Sprintf("follow[%d]", i), t))
			}
		case "user":
			for i, t := range l.tables(k, v) {
				l.c.Users = append(l.c.Users, l.user(fmt.Sprintf("user[%d]", i), t))
			}
		default:
			l.problem(k, "unknown key")
		}
	}
}

func (l *loader) boolean(path string, v any, dst *bool) {
	if b, ok := v.(bool); ok {
		*dst = b
	} else {
		l.problem(path, "want a boolean, have %s", describe(v))
	}
}

func (l *loader) str(path string, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		l.problem(path, "want a string, have %s", describe(v))
	}
	return s, ok
}

func (l *loader) strs(path string, v any) []string {
	arr, ok := v.([]any)
	if !ok {
		l.problem(path, "want an array of strings, have %s", describe(v))
		return nil
	}
	out := []string{}
	for i, e := range arr {
		if s, ok := l.str(fmt.Sprintf("%s[%d]", path, i), e); ok {
			out = append(out, s)
		}
	}
	return out
}

func (l *loader) table(path string, v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		l.problem(path, "want a table, have %s", describe(v))
	}
	return m, ok
}

// tables reads an array of tables ([[list]]).
func (l *loader) tables(path string, v any) []map[string]any {
	switch a := v.(type) {
	case []map[string]any:
		return a
	case []any:
		var out []map[string]any
		for i, e := range a {
			if m, ok := l.table(fmt.Sprintf("%s[%d]", path, i), e); ok {
				out = append(out, m)
			}
		}
		return out
	}
	l.problem(path, "want an array of tables ([[%s]]), have %s", path, describe(v))
	return nil
}

func (l *loader) size(path string, v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case string:
		s, err := parseSize(n)
		if err != nil {
			l.problem(path, "%v", err)
			return 0, false
		}
		return s, true
	}
	l.problem(path, "want a size (like 64MiB or 1048576), have %s", describe(v))
	return 0, false
}

func (l *loader) networks(path string, v any) []netip.Prefix {
	out := []netip.Prefix{}
	for i, s := range l.strs(path, v) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			l.problem(fmt.Sprintf("%s[%d]", path, i), "%q is not a CIDR network (like 192.0.2.0/24)", s)
			continue
		}
		out = append(out, p.Masked())
	}
	return out
}

func (l *loader) listener(path string, v any, dst *Listener) {
	m, ok := l.table(path, v)
	if !ok {
		return
	}
	for _, k := range sortedKeys(m) {
		p := join(path, k)
		if k != "listen" && k != "tls_cert" && k != "tls_key" {
			l.problem(p, "unknown key")
			continue
		}
		s, ok := l.str(p, m[k])
		switch k {
		case "listen":
			if ok {
				dst.Listen = s
			}
		case "tls_cert":
			if ok {
				dst.TLSCert = s
			}
		case "tls_key":
			if ok {
				dst.TLSKey = s
			}
		}
	}
}

// http reads [http]: a listener's keys and the HTTP caps.
func (l *loader) http(path string, v any) {
	lim := &l.c.HTTPLimits
	l.listenerWith(path, v, &l.c.HTTP, func(k string, val any) bool {
		switch k {
		case "max_conns":
			l.count(join(path, k), val, &lim.MaxConns)
		case "max_conns_per_client":
			l.count(join(path, k), val, &lim.MaxConnsPerClient)
		case "max_long_polls":
			l.count(join(path, k), val, &lim.MaxLongPolls)
		case "max_long_polls_per_client":
			l.count(join(path, k), val, &lim.MaxLongPollsPerClient)
		default:
			return false
		}
		return true
	})
}

// imap reads [imap]: a listener's keys and the IMAP limits.
func (l *loader) imap(path string, v any) {
	lim := &l.c.IMAPLimits
	l.listenerWith(path, v, &l.c.IMAP, func(k string, val any) bool {
		switch k {
		case "max_conns":
			l.count(join(path, k), val, &lim.MaxConns)
		case "max_preauth_per_client":
			l.count(join(path, k), val, &lim.MaxPreAuthPerClient)
		case "login_timeout":
			lim.LoginTimeout = l.duration(join(path, k), val)
		default:
			return false
		}
		return true
	})
}

// listenerWith reads a listener's table whose section has keys of its
// own: own takes those (true: taken); the rest are a listener's keys.
func (l *loader) listenerWith(path string, v any, dst *Listener, own func(k string, v any) bool) {
	m, ok := l.table(path, v)
	if !ok {
		return
	}
	rest := map[string]any{}
	for _, k := range sortedKeys(m) {
		if !own(k, m[k]) {
			rest[k] = m[k]
		}
	}
	l.listener(path, rest, dst)
}

// count reads a cap: an integer from 0 (the default) to 2^30.
func (l *loader) count(path string, v any, dst *int) {
	if n, ok := v.(int64); ok && n >= 0 && n <= 1<<30 {
		*dst = int(n)
	} else {
		l.problem(path, "want an integer from 0 (the default) to 1073741824, have %v", v)
	}
}

// duration reads a positive duration ("60s", "5m").
func (l *loader) duration(path string, v any) time.Duration {
	s, ok := l.str(path, v)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		l.problem(path, "%q is not a positive duration (like \"60s\" or \"5m\")", s)
		return 0
	}
	return d
}

func (l *loader) bittorrent(path string, v any) {
	m, ok := l.table(path, v)
	if !ok {
		return
	}
	bt := &l.c.BitTorrent
	for _, k := range sortedKeys(m) {
		p := join(path, k)
		switch k {
		case "listen":
			if s, ok := l.str(p, m[k]); ok {
				bt.Listen = s
			}
		case "dht":
			if b, ok := m[k].(bool); ok {
				bt.DHT = b
			} else {
				l.problem(p, "want a boolean, have %s", describe(m[k]))
			}
		case "dht_bootstrap":
			if bt.DHTBootstrap = l.strs(p, m[k]); len(bt.DHTBootstrap) == 0 {
				bt.DHTBootstrap = nil
			}
		case "trackers":
			if bt.Trackers = l.strs(p, m[k]); len(bt.Trackers) == 0 {
				bt.Trackers = nil
			}
		case "tracker":
			if b, ok := m[k].(bool); ok {
				bt.TrackerOff = !b
			} else {
				l.problem(p, "want a boolean, have %s", describe(m[k]))
			}
		case "tracker_interval":
			bt.TrackerInterval = l.duration(p, m[k])
		case "web_seed":
			if s, ok := l.str(p, m[k]); ok {
				bt.WebSeed = s
			}
		case "upload_limit":
			if n, ok := l.size(p, m[k]); ok {
				bt.UploadLimit = n
			}
		case "max_conns":
			l.count(p, m[k], &bt.MaxConns)
		case "max_conns_per_client":
			l.count(p, m[k], &bt.MaxConnsPerClient)
		case "slice_interval":
			if s, ok := l.str(p, m[k]); ok {
				d, err := time.ParseDuration(s)
				if err != nil {
					l.problem(p, "%q is not a duration (like \"60s\" or \"5m\")", s)
				} else {
					bt.SliceInterval = d
				}
			}
		default:
			l.problem(p, "unknown key")
		}
	}
}

func (l *loader) list(path string, m map[string]any) List {
	var li List
	for _, k := range sortedKeys(m) {
		p := join(path, k)
		switch k {
		case "name":
			li.Name, _ = l.str(p, m[k])
		case "addresses":
			li.Addresses = l.strs(p, m[k])
		default:
			l.problem(p, "unknown key")
		}
	}
	return li
}

func (l *loader) follow(path string, m map[string]any) Follow {
	var f Follow
	for _, k := range sortedKeys(m) {
		p := join(path, k)
		switch k {
		case "list":
			f.List, _ = l.str(p, m[k])
		case "key":
			f.Key, _ = l.str(p, m[k])
		case "sources":
			f.Sources = l.strs(p, m[k])
		case "local":
			f.Local, _ = l.str(p, m[k])
		case "address":
			f.Address, _ = l.str(p, m[k])
		default:
			l.problem(p, "unknown key")
		}
	}
	return f
}

func (l *loader) user(path string, m map[string]any) User {
	var u User
	for _, k := range sortedKeys(m) {
		p := join(path, k)
		switch k {
		case "name":
			u.Name, _ = l.str(p, m[k])
		case "password_hash":
			u.PasswordHash, _ = l.str(p, m[k])
		default:
			l.problem(p, "unknown key")
		}
	}
	return u
}

// describe names a decoded TOML value's type for a problem line.
func describe(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}
