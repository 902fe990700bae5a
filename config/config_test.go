package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// writePair writes a self-signed certificate and its key as PEM files.
func writePair(t *testing.T, dir, prefix string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert = writeFile(t, dir, prefix+"cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	key = writeFile(t, dir, prefix+"key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})))
	return cert, key
}

func TestDefault(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if c.Data != "./mailswarm-data" || c.SMTP.Listen != "127.0.0.1:2525" || c.LMTP.Listen != "" ||
		c.IMAP.Listen != "127.0.0.1:1143" || c.HTTP.Listen != "127.0.0.1:8080" || c.MaxMessageSize != 64<<20 {
		t.Errorf("Default() = %+v", c)
	}
	want := map[string]string{"demo@localhost": "demo"}
	if got := c.ListAddresses(); !reflect.DeepEqual(got, want) {
		t.Errorf("ListAddresses() = %v, want %v", got, want)
	}
	wantNets := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	if !reflect.DeepEqual(c.Networks, wantNets) {
		t.Errorf("Networks = %v, want %v", c.Networks, wantNets)
	}
	// Each call is a fresh value.
	c.Lists[0].Name = "changed"
	if Default().Lists[0].Name != "demo" {
		t.Error("Default() shares state between calls")
	}
}

func TestLoadGood(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, "")
	tests := []struct {
		name  string
		text  string
		check func(t *testing.T, c *Config)
	}{
		{"empty file keeps the default", "", func(t *testing.T, c *Config) {
			if !reflect.DeepEqual(c, Default()) {
				t.Errorf("Load(empty) = %+v, want Default()", c)
			}
		}},
		{"http caps", `
[http]
listen = "0.0.0.0:80"
max_conns = 300
max_conns_per_client = 4
max_long_polls = 50
max_long_polls_per_client = 0
`, func(t *testing.T, c *Config) {
			if c.HTTP.Listen != "0.0.0.0:80" || c.HTTPLimits != (HTTPLimits{MaxConns: 300, MaxConnsPerClient: 4, MaxLongPolls: 50}) {
				t.Errorf("HTTP, HTTPLimits = %+v, %+v", c.HTTP, c.HTTPLimits)
			}
		}},
		{"imap caps", `
[imap]
listen = "127.0.0.1:143"
max_conns = 200
max_preauth_per_client = 100
login_timeout = "2m"
`, func(t *testing.T, c *Config) {
			if c.IMAP.Listen != "127.0.0.1:143" || c.IMAPLimits != (IMAPLimits{MaxConns: 200, MaxPreAuthPerClient: 100, LoginTimeout: 2 * time.Minute}) {
				t.Errorf("IMAP, IMAPLimits = %+v, %+v", c.IMAP, c.IMAPLimits)
			}
		}},
		{"bittorrent", `
[bittorrent]
listen = "0.0.0.0:6881"
dht = true
dht_bootstrap = ["router.example.org:6881"]
trackers = ["udp://tracker.example.org:1337/announce"]
web_seed = "https://lists.example.org/"
upload_limit = "10MiB"
slice_interval = "5m"
max_conns = 100
max_conns_per_client = 4
tracker = false
tracker_interval = "10m"
`, func(t *testing.T, c *Config) {
			want := BitTorrent{Listen: "0.0.0.0:6881", DHT: true, DHTBootstrap: []string{"router.example.org:6881"},
				Trackers: []string{"udp://tracker.example.org:1337/announce"}, WebSeed: "https://lists.example.org/",
				UploadLimit: 10 << 20, SliceInterval: 5 * time.Minute, MaxConns: 100, MaxConnsPerClient: 4,
				TrackerOff: true, TrackerInterval: 10 * time.Minute}
			if !reflect.DeepEqual(c.BitTorrent, want) {
				t.Errorf("bittorrent = %+v, want %+v", c.BitTorrent, want)
			}
			if got := c.WebSeedBase(); got != "https://lists.example.org" {
				t.Errorf("WebSeedBase() = %q", got)
			}
		}},
		{"lists replace the default", `
[[list]]
name = "dev"
addresses = ["Dev@Lists.Example.org", "dev-archive@lists.example.org"]
[[list]]
name = "announce.v2"
addresses = ["announce@lists.example.org"]
`, func(t *testing.T, c *Config) {
			want := map[string]string{
				"dev@lists.example.org":         "dev",
				"dev-archive@lists.example.org": "dev",
				"announce@lists.example.org":    "announce.v2",
			}
			if got := c.ListAddresses(); !reflect.DeepEqual(got, want) {
				t.Errorf("ListAddresses() = %v, want %v", got, want)
			}
			if c.SMTP.Listen != DefaultSMTPListen {
				t.Errorf("SMTP.Listen = %q, want the default", c.SMTP.Listen)
			}
		}},
		{"listeners, sizes, networks, tls, users", `
data = "/srv/mailswarm"
max_message_size = "10MB"
networks = ["10.1.2.3/8", "2001:db8::/32"]
[smtp]
listen = "0.0.0.0:25"
tls_cert = "` + cert + `"
tls_key = "` + key + `"
[lmtp]
listen = "127.0.0.1:2424"
[http]
listen = ""
[[user]]
name = "alice"
password_hash = "$2a$10$abc"
`, func(t *testing.T, c *Config) {
			if c.Data != "/srv/mailswarm" || c.MaxMessageSize != 10_000_000 {
				t.Errorf("Data, MaxMessageSize = %q, %d", c.Data, c.MaxMessageSize)
			}
			if c.SMTP != (Listener{"0.0.0.0:25", cert, key}) || !c.SMTP.TLS() {
				t.Errorf("SMTP = %+v", c.SMTP)
			}
			if c.LMTP.Listen != "127.0.0.1:2424" || c.HTTP.Listen != "" || c.IMAP.Listen != DefaultIMAPListen {
				t.Errorf("LMTP, HTTP, IMAP = %+v, %+v, %+v", c.LMTP, c.HTTP, c.IMAP)
			}
			want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
			if !reflect.DeepEqual(c.Networks, want) {
				t.Errorf("Networks = %v, want %v", c.Networks, want)
			}
			if !reflect.DeepEqual(c.Users, []User{{"alice", "$2a$10$abc"}}) {
				t.Errorf("Users = %+v", c.Users)
			}
			if !reflect.DeepEqual(c.Lists, Default().Lists) {
				t.Errorf("Lists = %+v, want the default", c.Lists)
			}
		}},
		{"postmaster", "postmaster = \"admin\"\n[[list]]\nname = \"admin\"\naddresses = [\"admin@lists.example.org\"]", func(t *testing.T, c *Config) {
			if c.Postmaster != "admin" {
				t.Errorf("Postmaster = %q, want admin", c.Postmaster)
			}
		}},
		{"imap logins", "imap_require_login = true\nimap_anonymous = true", func(t *testing.T, c *Config) {
			if !c.IMAPRequireLogin || !c.IMAPAnonymous {
				t.Errorf("IMAPRequireLogin, IMAPAnonymous = %v, %v, want true, true", c.IMAPRequireLogin, c.IMAPAnonymous)
			}
		}},
		{"follow", "[[follow]]\nlist = \"dev\"\nkey = \"3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3be1\"\nsources = [\"http://127.0.0.2:8080\", \"https://lists.example.org/lists/dev2\", \"127.0.0.2:6881\"]\n" +
			"local = \"dev-mirror\"\naddress = \"dev@mirror.example.net\"\n[[follow]]\nlist = \"announce\"\nkey = \"3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3be1\"\nsources = [\"[::1]:6881\"]", func(t *testing.T, c *Config) {
			want := []Follow{
				{List: "dev", Key: "3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3be1", Sources: []string{"http://127.0.0.2:8080", "https://lists.example.org/lists/dev2", "127.0.0.2:6881"},
					Local: "dev-mirror", Address: "dev@mirror.example.net"},
				{List: "announce", Key: "3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3be1", Sources: []string{"[::1]:6881"}},
			}
			if !reflect.DeepEqual(c.Follows, want) {
				t.Errorf("Follows = %+v, want %+v", c.Follows, want)
			}
			if c.Follows[0].LocalName() != "dev-mirror" || c.Follows[1].LocalName() != "announce" {
				t.Errorf("LocalName() = %q, %q", c.Follows[0].LocalName(), c.Follows[1].LocalName())
			}
			if !reflect.DeepEqual(c.Lists, Default().Lists) {
				t.Errorf("Lists = %+v, want the default: a [[follow]] is not a [[list]]", c.Lists)
			}
		}},
		{"follow by the key alone (DHT)", "[[follow]]\nlist = \"dev\"\nkey = \"3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3be1\"\n[bittorrent]\ndht = true", func(t *testing.T, c *Config) {
			if len(c.Follows) != 1 || len(c.Follows[0].Sources) != 0 || !c.BitTorrent.DHT {
				t.Errorf("Follows = %+v, DHT %v: want one follow with no source, the DHT on", c.Follows, c.BitTorrent.DHT)
			}
		}},
		{"integer size", `max_message_size = 1048576`, func(t *testing.T, c *Config) {
			if c.MaxMessageSize != 1<<20 {
				t.Errorf("MaxMessageSize = %d, want %d", c.MaxMessageSize, 1<<20)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeFile(t, t.TempDir(), "c.toml", tt.text))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			tt.check(t, c)
		})
	}
}

func TestLoadBad(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, "a")
	_, key2 := writePair(t, dir, "b")
	tests := []struct {
		name string
		text string
		want []string // each a problem line's prefix, in order
	}{
		{"not toml", "data = ", []string{"line 1"}},
		{"unknown top key", `colour = "red"`, []string{"colour: unknown key"}},
		{"unknown nested key", "[smtp]\nport = 25", []string{"smtp.port: unknown key"}},
		{"unknown list key", "[[list]]\nname = \"a\"\naddresses = [\"a@b\"]\nowner = \"x\"", []string{"list[0].owner: unknown key"}},
		{"wrong type", "data = 3", []string{"data: want a string, have an integer"}},
		{"listen not host:port", "[smtp]\nlisten = \"localhost\"", []string{`smtp.listen: "localhost" is not host:port`}},
		{"listen bad port", "[imap]\nlisten = \"127.0.0.1:imap\"", []string{`imap.listen: "127.0.0.1:imap": port`}},
		{"listen twice", "[lmtp]\nlisten = \"127.0.0.1:2525\"", []string{`lmtp.listen: "127.0.0.1:2525" is already smtp.listen`}},
		{"bad list name", "[[list]]\nname = \"Dev\"\naddresses = [\"dev@x\"]", []string{`list[0].name: "Dev" is not a list name`}},
		{"missing list name", "[[list]]\naddresses = [\"dev@x\"]", []string{`list[0].name: missing`}},
		{"duplicate list name", "[[list]]\nname = \"a\"\naddresses = [\"a@x\"]\n[[list]]\nname = \"a\"\naddresses = [\"b@x\"]",
			[]string{`list[1].name: "a" is also list[0].name`}},
		{"no addresses", "[[list]]\nname = \"a\"", []string{"list[0].addresses: a list needs at least one address"}},
		{"bad address", "[[list]]\nname = \"a\"\naddresses = [\"foo\", \"A <a@x>\", \"a@b c\"]", []string{
			`list[0].addresses[0]: "foo" is not an email address`,
			`list[0].addresses[1]: "A <a@x>" is not an email address`,
			`list[0].addresses[2]: "a@b c" is not an email address`,
		}},
		{"address in two lists", "[[list]]\nname = \"a\"\naddresses = [\"x@y\"]\n[[list]]\nname = \"b\"\naddresses = [\"X@Y\"]",
			[]string{`list[1].addresses[0]: "X@Y" is also list[0].addresses[0]`}},
		{"cert without key", "[smtp]\ntls_cert = \"" + cert + "\"", []string{"smtp.tls_key: missing"}},
		{"key without cert", "[imap]\ntls_key = \"" + key + "\"", []string{"imap.tls_cert: missing"}},
		{"unreadable cert", "[smtp]\ntls_cert = \"" + filepath.Join(dir, "nope.pem") + "\"\ntls_key = \"" + key + "\"", []string{"smtp.tls_cert: "}},
		{"mismatched pair", "[http]\ntls_cert = \"" + cert + "\"\ntls_key = \"" + key2 + "\"", []string{"http.tls_cert: "}},
		{"bad cidr", `networks = ["10.0.0.0/33", "fe80::1"]`, []string{
			`networks[0]: "10.0.0.0/33" is not a CIDR network`,
			`networks[1]: "fe80::1" is not a CIDR network`,
		}},
		{"zero size", "max_message_size = 0", []string{"max_message_size: must be positive"}},
		{"negative size", `max_message_size = "-5MB"`, []string{"max_message_size: must be positive"}},
		{"size not a size", `max_message_size = "lots"`, []string{`max_message_size: "lots" is not a size`}},
		{"empty data", `data = ""`, []string{"data: must not be empty"}},
		{"postmaster not a list", `postmaster = "admin"`, []string{`postmaster: "admin" is not the name of a [[list]]`}},
		{"postmaster not a string", `postmaster = true`, []string{`postmaster: want a string`}},
		{"bad bittorrent", "[bittorrent]\nlisten = \"x\"\ndht = 1\ndht_bootstrap = [\"nohost\"]\ntrackers = [\"ftp://t\"]\n" +
			"web_seed = \"example.org\"\nslice_interval = \"soon\"\nseeds = 3\ntracker = 1\ntracker_interval = \"often\"", []string{
			"bittorrent.dht: want a boolean",
			`bittorrent.seeds: unknown key`,
			`bittorrent.slice_interval: "soon" is not a duration`,
			"bittorrent.tracker: want a boolean",
			`bittorrent.tracker_interval: "often" is not a positive duration (like "60s" or "5m")`,
			`bittorrent.listen: "x" is not host:port`,
			`bittorrent.dht_bootstrap[0]: "nohost" is not host:port`,
			`bittorrent.trackers[0]: "ftp://t" is not an http, https or udp announce URL`,
			`bittorrent.web_seed: "example.org" is not an http or https URL`,
		}},
		{"bad http caps", "[http]\nmax_conns = -1\nmax_long_polls = \"many\"\nmax_sessions = 3", []string{
			"http.max_conns: want an integer from 0",
			"http.max_long_polls: want an integer from 0",
			"http.max_sessions: unknown key",
		}},
		{"bad imap caps", "[imap]\nmax_conns = -1\nmax_preauth_per_client = 1.5\nlogin_timeout = \"-1s\"\nmax_sessions = 3", []string{
			"imap.login_timeout: \"-1s\" is not a positive duration",
			"imap.max_conns: want an integer from 0",
			"imap.max_preauth_per_client: want an integer from 0",
			"imap.max_sessions: unknown key",
		}},
		{"bad bittorrent caps", "[bittorrent]\nmax_conns = -1\nmax_conns_per_client = \"many\"", []string{
			"bittorrent.max_conns: want an integer from 0",
			"bittorrent.max_conns_per_client: want an integer from 0",
		}},
		{"short slice interval", "[bittorrent]\nslice_interval = \"10ms\"", []string{"bittorrent.slice_interval: must be at least 1s"}},
		{"bad users", "[[user]]\nname = \"\"\n[[user]]\nname = \"b\"\npassword_hash = \"h\"\n[[user]]\nname = \"b\"\npassword_hash = \"h\"", []string{
			"user[0].name: missing",
			"user[0].password_hash: missing",
			`user[2].name: "b" is also user[1].name`,
		}},
		{"imap_require_login not a boolean", `imap_require_login = "yes"`, []string{"imap_require_login: want a boolean, have a string"}},
		{"user names IMAP cannot take", "[[user]]\nname = \"" + strings.Repeat("a", 256) + "\"\npassword_hash = \"h\"\n" +
			"[[user]]\nname = \"tab\\there\"\npassword_hash = \"h\"", []string{
			"user[0].name: 256 octets, more than 255",
			`user[1].name: "tab\there" has a control character`,
		}},
		{"follow without a source, no DHT", "[[follow]]\nlist = \"dev\"\nkey = \"3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3be1\"\n[bittorrent]\ndht = false",
			[]string{"follow[0].sources: a followed list needs at least one source"}},
		{"follow without key", "[[follow]]\nlist = \"dev\"\nsources = [\"http://127.0.0.1:8080\"]",
			[]string{"follow[0].key: missing: a list is followed by its ed25519 public key"}},
		{"bad follows", "[[list]]\nname = \"dev\"\naddresses = [\"dev@x.org\"]\n" +
			"[[follow]]\nlist = \"dev\"\nkey = \"K\"\nsources = [\"http://127.0.0.1:8080\"]\naddress = \"DEV@x.org\"\n" +
			"[[follow]]\nlist = \"Dev\"\nkey = \"3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3be1\"\nsources = []\nlocal = \"m\"\n" +
			"[[follow]]\nlist = \"other\"\nkey = \"3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3be1ff\"\nlocal = \"m\"\nsources = [\"http://h\", \"ftp://h:21\", \"h\", \"h:0\", \"http://h:80/x\", \"h:1,h:2\"]\nowner = 1\n" +
			"[[follow]]\nkey = \"3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3be1\"\nsources = [\"h:1\"]\nlocal = \"Bad\"\naddress = \"nope\"",
			[]string{
				"follow[2].owner: unknown key",
				`follow[0].key: "K" is not an ed25519 public key`,
				`follow[0].list: "dev" is also list[0].name`,
				`follow[0].address: "DEV@x.org" is also list[0].addresses[0]`,
				`follow[1].list: "Dev" is not a list name`,
				"follow[1].sources: a followed list needs at least one source",
				`follow[2].key: "3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3be1ff" is not an ed25519 public key`,
				`follow[2].sources[0]: "http://h": an http source names its port`,
				`follow[2].sources[1]: "ftp://h:21": want`,
				`follow[2].sources[2]: "h": want`,
				`follow[2].sources[3]: "h:0": port "0" is not a number from 1 to 65535`,
				`follow[2].sources[4]: "http://h:80/x": path "/x": want none or /lists/NAME`,
				`follow[2].sources[5]: "h:1,h:2": want`,
				`follow[2].local: "m" is also the local name of follow[1].local`,
				"follow[3].list: missing",
				`follow[3].local: "Bad" is not a list name`,
				`follow[3].address: "nope" is not an email address`,
			}},
		{"follow named as the default list", "[[follow]]\nlist = \"demo\"\nkey = \"3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3be1\"\nsources = [\"h:1\"]",
			[]string{`follow[0].list: "demo" is also list[0].name`}},
		{"several at once", `
data = 7
colour = "red"
max_message_size = -1
networks = ["nope"]
[smtp]
listen = "nope"
[[list]]
name = "-x"
addresses = ["foo"]
[[list]]
name = "ok"
addresses = []
`, []string{
			"colour: unknown key",
			"data: want a string",
			`networks[0]: "nope" is not a CIDR network`,
			"max_message_size: must be positive",
			`smtp.listen: "nope" is not host:port`,
			`list[0].name: "-x" is not a list name`,
			`list[0].addresses[0]: "foo" is not an email address`,
			"list[1].addresses: a list needs at least one address",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, t.TempDir(), "c.toml", tt.text)
			c, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%q) = %+v, nil; want an error", tt.text, c)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Load: error %T %v, want *Error", err, err)
			}
			if ce.File != path {
				t.Errorf("File = %q, want %q", ce.File, path)
			}
			if len(ce.Problems) != len(tt.want) {
				t.Fatalf("Problems = %q, want %d like %q", ce.Problems, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(ce.Problems[i], w) {
					t.Errorf("Problems[%d] = %q, want prefix %q", i, ce.Problems[i], w)
				}
			}
			// The message names every problem, one per line.
			msg := err.Error()
			if !strings.HasPrefix(msg, "config "+path+": ") {
				t.Errorf("Error() = %q, want it to start with the file", msg)
			}
			if got := strings.Count(msg, "\n"); got != len(tt.want) {
				t.Errorf("Error() has %d lines of problems, want %d:\n%s", got, len(tt.want), msg)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "none.toml"))
	if err == nil || !strings.HasPrefix(err.Error(), "config: ") || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a wrapped not-exist error", err)
	}
}

func TestExampleFile(t *testing.T) {
	c, err := Load(filepath.Join("..", "docs", "mailswarm.example.toml"))
	if err != nil {
		t.Fatalf("Load(example) = %v", err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("the example file is not the default:\n got %+v\nwant %+v", c, Default())
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"64MiB", 64 << 20, true},
		{"10MB", 10_000_000, true},
		{"10 mb", 10_000_000, true},
		{"512k", 512 << 10, true},
		{"1KB", 1000, true},
		{"2GiB", 2 << 30, true},
		{"100B", 100, true},
		{"1024", 1024, true},
		{"MB", 0, false},
		{"1.5MB", 0, false},
		{"ten", 0, false},
		{"99999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
