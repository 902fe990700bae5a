package swarm

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

var followTestKey = strings.Repeat("3b", 31) + "e1"

func TestParseFollowString(t *testing.T) {
	key, _ := hex.DecodeString(followTestKey)
	for _, tc := range []struct {
		in      string
		sources []string
	}{
		{"mailswarm:dev:" + followTestKey + "@http://127.0.0.2:8080", []string{"http://127.0.0.2:8080"}},
		{"mailswarm:dev:" + followTestKey, nil},
		{"mailswarm:dev:" + followTestKey + "@http://127.0.0.2:8080/lists/other,https://example.org,127.0.0.3:6881,[::1]:6881",
			[]string{"http://127.0.0.2:8080/lists/other", "https://example.org", "127.0.0.3:6881", "[::1]:6881"}},
		{"mailswarm:dev:" + strings.ToUpper(followTestKey) + "@https://example.org:8443/", []string{"https://example.org:8443/"}},
	} {
		f, err := ParseFollowString(tc.in)
		if err != nil {
			t.Errorf("ParseFollowString(%q): %v", tc.in, err)
			continue
		}
		if f.List != "dev" || !bytes.Equal(f.Key, key) || !reflect.DeepEqual(f.Sources, tc.sources) {
			t.Errorf("ParseFollowString(%q) = %+v, want dev %x %q", tc.in, f, key, tc.sources)
		}
		if f.LocalName() != "dev" {
			t.Errorf("LocalName() = %q, want dev", f.LocalName())
		}
		g, err := ParseFollowString(f.String())
		if err != nil || !reflect.DeepEqual(f, g) {
			t.Errorf("ParseFollowString(%q) = %+v, %v; want %+v", f.String(), g, err, f)
		}
		if tc.sources != nil && f.Check() != nil {
			t.Errorf("Check of %q: %v", tc.in, f.Check())
		}
	}
}

func TestParseFollowStringErrors(t *testing.T) {
	k := followTestKey
	for _, in := range []string{
		"",
		"dev:" + k + "@http://127.0.0.1:8080", // no scheme
		"mailswarm:dev@http://127.0.0.1:8080", // no key
		"mailswarm:Dev:" + k + "@http://127.0.0.1:8080",         // not a list name
		"mailswarm:dev:" + k[:62] + "@http://127.0.0.1:8080",    // 31 bytes
		"mailswarm:dev:" + k + "00@http://127.0.0.1:8080",       // 33 bytes
		"mailswarm:dev:" + k[:62] + "zz@http://127.0.0.1:8080",  // not hex
		"mailswarm:dev:" + k + ":x@http://127.0.0.1:8080",       // extra field
		"mailswarm:dev:" + k + "@",                              // empty source
		"mailswarm:dev:" + k + "@http://127.0.0.1:8080,",        // empty source
		"mailswarm:dev:" + k + "@http://127.0.0.1",              // http without port
		"mailswarm:dev:" + k + "@http://127.0.0.1:0",            // port 0
		"mailswarm:dev:" + k + "@http://127.0.0.1:65536",        // port too big
		"mailswarm:dev:" + k + "@http://127.0.0.1:8080/other",   // a path not /lists/NAME
		"mailswarm:dev:" + k + "@http://127.0.0.1:8080/lists/A", // not a list name
		"mailswarm:dev:" + k + "@http://127.0.0.1:8080/?x=1",    // a query
		"mailswarm:dev:" + k + "@http://u@127.0.0.1:8080",       // user info
		"mailswarm:dev:" + k + "@ftp://127.0.0.1:21",            // scheme
		"mailswarm:dev:" + k + "@127.0.0.1",                     // peer without port
		"mailswarm:dev:" + k + "@127.0.0.1:x",                   // port not a number
		"mailswarm:dev:" + k + "@127.0.0.1:+80",                 // port not canonical
		"mailswarm:dev:" + k + "@:6881",                         // no host
		"mailswarm:dev:" + k + "@127.0.0.1:6881 127.0.0.2:6881", // space
	} {
		if f, err := ParseFollowString(in); err == nil {
			t.Errorf("ParseFollowString(%q) = %+v, want an error", in, f)
		}
	}
}

func TestFollowSpecCheck(t *testing.T) {
	key, _ := hex.DecodeString(followTestKey)
	good := FollowSpec{List: "dev", Key: key, Sources: []string{"http://127.0.0.1:8080"}, Local: "dev-mirror"}
	if err := good.Check(); err != nil {
		t.Fatalf("Check(%+v): %v", good, err)
	}
	// The key alone (the DHT finds the list): not wrong.
	if bare := (FollowSpec{List: "dev", Key: key}); bare.Check() != nil {
		t.Errorf("Check(%+v): %v, want nil (found by its key with the DHT on)", bare, bare.Check())
	}
	if good.LocalName() != "dev-mirror" {
		t.Errorf("LocalName() = %q, want dev-mirror", good.LocalName())
	}
	for _, bad := range []func(*FollowSpec){
		func(f *FollowSpec) { f.List = "" },
		func(f *FollowSpec) { f.Local = "Bad Name" },
		func(f *FollowSpec) { f.Key = nil },
		func(f *FollowSpec) { f.Key = f.Key[:31] },
		func(f *FollowSpec) { f.Sources = []string{"http://127.0.0.1:8080", "nonsense"} },
	} {
		f := good
		f.Key = append(ed25519.PublicKey(nil), good.Key...)
		bad(&f)
		if err := f.Check(); err == nil {
			t.Errorf("Check(%+v) = nil, want an error", f)
		}
	}
}

// FuzzParseFollowString: what parses prints as a string that parses to
// the same spec, and prints the same again.
func FuzzParseFollowString(f *testing.F) {
	f.Add("mailswarm:dev:" + followTestKey + "@http://127.0.0.2:8080")
	f.Add("mailswarm:dev:" + followTestKey)
	f.Add("mailswarm:dev:" + followTestKey + "@http://127.0.0.2:8080/lists/x,https://[::1]/,127.0.0.1:6881")
	f.Add("mailswarm:dev:" + followTestKey + "@")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseFollowString(s)
		if err != nil {
			return
		}
		s2 := a.String()
		b, err := ParseFollowString(s2)
		if err != nil {
			t.Fatalf("ParseFollowString(%q) (from %q): %v", s2, s, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("ParseFollowString(%q) = %+v, ParseFollowString(%q) = %+v", s, a, s2, b)
		}
		if b.String() != s2 {
			t.Fatalf("String() = %q, then %q", s2, b.String())
		}
		if len(a.Sources) > 0 {
			if err := a.Check(); err != nil {
				t.Fatalf("ParseFollowString(%q) accepted what Check refuses: %v", s, err)
			}
		}
	})
}
