package swarm

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// FollowScheme leads the copyable follow string that keygen and swarm
// status print and follow takes:
//
//	mailswarm:LIST:KEYHEX@SOURCE[,SOURCE...]
const FollowScheme = "mailswarm:"

// FollowSpec names a list this node follows (mirrors): the list is
// trusted by its key alone, which the user gives; sources only carry bytes.
type FollowSpec struct {
	// List is the list's name at its origin (the name its manifests
	// carry).
	List string
	// Key is the list's ed25519 public key: every manifest must be signed
	// by it. Never learnt from a source.
	Key ed25519.PublicKey
	// Sources are where to fetch from: "http://host:port" or
	// "https://host[:port]" (a node's base; the list is at
	// /lists/LIST/), the same with the path /lists/NAME (a node serving
	// it under another name), or "host:port" (a BitTorrent peer). None:
	// the list is found by its key in the DHT (its BEP 44 item, the
	// peers of its rendezvous torrent).
	Sources []string
	// Local is the list's name in this archive; empty means List.
	Local string
	// Address is the list's posting address, given to the local mirror
	// list so that mail sent to it here is refused as to a mirror;
	// empty means none.
	Address string
}

// LocalName returns the list's name in this archive.
func (f FollowSpec) LocalName() string {
	if f.Local != "" {
		return f.Local
	}
	return f.List
}

// String returns the copyable follow string of f (without Local and
// Address, which are this node's own): ParseFollowString of it gives f's
// List, Key and Sources back.
func (f FollowSpec) String() string {
	s := FollowScheme + f.List + ":" + hex.EncodeToString(f.Key)
	if len(f.Sources) > 0 {
		s += "@" + strings.Join(f.Sources, ",")
	}
	return s
}

// ParseFollowString parses "mailswarm:LIST:KEYHEX@SOURCE[,SOURCE...]".
// The @ part may be left out (the sources then come from elsewhere: the
// command line, the configuration), so the result may have no sources.
// Everything given is checked as Check does.
func ParseFollowString(s string) (FollowSpec, error) {
	var f FollowSpec
	rest, ok := strings.CutPrefix(s, FollowScheme)
	if !ok {
		return f, fmt.Errorf("swarm: follow string %q: does not start with %q", clip(s), FollowScheme)
	}
	head, sources, hasSources := strings.Cut(rest, "@")
	list, keyHex, ok := strings.Cut(head, ":")
	if !ok {
		return f, fmt.Errorf("swarm: follow string %q: want %sLIST:KEYHEX[@SOURCE,...]", clip(s), FollowScheme)
	}
	if err := checkListName(list); err != nil {
		return f, fmt.Errorf("swarm: follow string: %w", err)
	}
	key, err := parseFollowKey(keyHex)
	if err != nil {
		return f, fmt.Errorf("swarm: follow string: %w", err)
	}
	f.List, f.Key = list, key
	if hasSources {
		f.Sources = strings.Split(sources, ",")
		for _, src := range f.Sources {
			if err := CheckFollowSource(src); err != nil {
				return FollowSpec{}, fmt.Errorf("swarm: follow string: %w", err)
			}
		}
	}
	return f, nil
}

// ParseFollowKey parses a list key given as 64 hex digits.
func ParseFollowKey(s string) (ed25519.PublicKey, error) {
	k, err := parseFollowKey(s)
	if err != nil {
		return nil, fmt.Errorf("swarm: %w", err)
	}
	return k, nil
}

func parseFollowKey(s string) (ed25519.PublicKey, error) {
	if len(s) != 2*ed25519.PublicKeySize {
		return nil, fmt.Errorf("key %q: want %d hex digits, have %d", clip(s), 2*ed25519.PublicKeySize, len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("key %q is not hex", clip(s))
	}
	return ed25519.PublicKey(b), nil
}

// Check reports the first thing wrong with f: a list (or local) name
// that is not a list name, a key that is not 32 bytes or a source that
// is not one of the three forms of FollowSpec.Sources. No source is not
// wrong: with the DHT on the key alone finds the list (without it the
// node warns and seeds what it holds; the configuration and follow's
// command line refuse it).
func (f FollowSpec) Check() error {
	if err := checkListName(f.List); err != nil {
		return fmt.Errorf("swarm: follow: %w", err)
	}
	if f.Local != "" {
		if err := checkListName(f.Local); err != nil {
			return fmt.Errorf("swarm: follow %s: local %w", f.List, err)
		}
	}
	if len(f.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("swarm: follow %s: key of %d bytes, want %d (a list is followed by its key)", f.List, len(f.Key), ed25519.PublicKeySize)
	}
	for _, src := range f.Sources {
		if err := CheckFollowSource(src); err != nil {
			return fmt.Errorf("swarm: follow %s: %w", f.List, err)
		}
	}
	return nil
}

var errFollowSourceForm = errors.New(`want "http://HOST:PORT", "https://HOST[:PORT]" (optionally with /lists/NAME) or a BitTorrent peer "HOST:PORT"`)

// CheckFollowSource checks one source of a FollowSpec.
func CheckFollowSource(src string) error {
	if src == "" {
		return fmt.Errorf("empty source: %w", errFollowSourceForm)
	}
	// A comma would split the source in the follow string; the rest have
	// no place in a host, port or list path.
	if strings.ContainsFunc(src, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == ',' || r == '@' || r == '?' || r == '#' || r == '%' || r == '\\'
	}) {
		return fmt.Errorf("source %q: %w", clip(src), errFollowSourceForm)
	}
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		return checkHTTPSource(src)
	}
	host, port, err := net.SplitHostPort(src)
	if err != nil || host == "" {
		return fmt.Errorf("source %q: %w", clip(src), errFollowSourceForm)
	}
	if err := checkPort(port); err != nil {
		return fmt.Errorf("source %q: %w", clip(src), err)
	}
	return nil
}

func checkHTTPSource(src string) error {
	u, err := url.Parse(src)
	if err != nil || u.Host == "" || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("source %q: %w", clip(src), errFollowSourceForm)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("source %q: no host", clip(src))
	}
	if p := u.Port(); p != "" || strings.HasSuffix(u.Host, ":") {
		if err := checkPort(p); err != nil {
			return fmt.Errorf("source %q: %w", clip(src), err)
		}
	}
	if u.Scheme == "http" && u.Port() == "" {
		return fmt.Errorf("source %q: an http source names its port (http://HOST:PORT)", clip(src))
	}
	switch path := strings.TrimSuffix(u.Path, "/"); {
	case path == "":
	case strings.HasPrefix(path, "/lists/"):
		if err := checkListName(strings.TrimPrefix(path, "/lists/")); err != nil {
			return fmt.Errorf("source %q: %w", clip(src), err)
		}
	default:
		return fmt.Errorf("source %q: path %q: want none or /lists/NAME", clip(src), path)
	}
	return nil
}

func checkPort(p string) error {
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
		return fmt.Errorf("port %q is not a number from 1 to 65535", p)
	}
	return nil
}

func checkListName(name string) error {
	if !listNameRE.MatchString(name) {
		return fmt.Errorf("%q is not a list name (lower-case letters, digits, '.', '_', '-'; at most 64; starts with a letter or digit)", clip(name))
	}
	return nil
}

// clip shortens what an error quotes from its input.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
