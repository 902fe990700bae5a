package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mailswarm/archive"
	"net/smtp"
	"net/textproto"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"mailswarm/internal/peertest"
)

const noKeyMsg = "no key: a list is followed by its ed25519 key, never by what a source says"

var testFollowKey = strings.Repeat("3b", 31) + "e1"

// Every follow command line that cannot be followed is a usage error
// (exit 2) with a message; one without a key says that a list is
// followed by its key, not by what a source says.
func TestFollowUsageErrors(t *testing.T) {
	d := t.TempDir()
	k := testFollowKey
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"follow"}, "--data is required"},
		{[]string{"follow", "--data", d, "--list", "dev", "http://127.0.0.1:8080"}, noKeyMsg},
		{[]string{"follow", "--data", d, "http://127.0.0.1:8080"}, noKeyMsg},
		{[]string{"follow", "--data", d, "--once"}, noKeyMsg},
		{[]string{"follow", "--data", d, "--key", k, "http://127.0.0.1:8080"}, "--list is required"},
		{[]string{"follow", "--data", d, "--list", "dev", "--key", k}, "no SOURCE"},
		{[]string{"follow", "--data", d, "--list", "dev", "--key", k[:60], "127.0.0.1:6881"}, "want 64 hex digits"},
		{[]string{"follow", "--data", d, "--list", "Dev", "--key", k, "127.0.0.1:6881"}, "is not a list name"},
		{[]string{"follow", "--data", d, "--list", "dev", "--key", k, "--local", "Bad", "127.0.0.1:6881"}, "is not a list name"},
		{[]string{"follow", "--data", d, "--list", "dev", "--key", k, "ftp://127.0.0.1:21"}, "source"},
		{[]string{"follow", "--data", d, "mailswarm:dev:" + k}, "no SOURCE"},
		{[]string{"follow", "--data", d, "mailswarm:dev:" + k, "--dht-bootstrap", "127.0.0.1:6881"}, "--dht-bootstrap without --dht"},
		{[]string{"follow", "--data", d, "mailswarm:dev:" + k, "--dht", "--dht-bootstrap", "127.0.0.1"}, `"127.0.0.1" is not host:port`},
		{[]string{"follow", "--data", d, "mailswarm:dev:" + k[:62]}, "want 64 hex digits"},
		{[]string{"follow", "--data", d, "--key", k, "mailswarm:dev:" + k + "@127.0.0.1:6881"}, "not both"},
		{[]string{"follow", "--data", d, "--bogus"}, "flag provided but not defined"},
		{[]string{"follow", "status"}, "--data is required"},
		{[]string{"follow", "status", "--data", d, "extra"}, "unexpected argument"},
	} {
		_, stderr, err := mailswarm(t, tc.args...)
		if c := exitCode(err); c != 2 || !strings.Contains(string(stderr), tc.want) {
			t.Errorf("mailswarm %q: exit %d, stderr %q; want 2 and %q", tc.args, c, stderr, tc.want)
		}
	}
}

// keygen prints the key, then the follow string, which follow takes as
// its argument: the same list and key, its HTTP base as the source, and
// further SOURCE arguments (before or after flags) added.
func TestKeygenFollowStringRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, config, base string
	}{
		{"default", "", "http://127.0.0.1:8080"},
		{"web seed", "[bittorrent]\nweb_seed = \"https://lists.example.org/\"\n", "https://lists.example.org"},
		{"http listen", "[http]\nlisten = \"127.0.0.2:8081\"\n", "http://127.0.0.2:8081"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			args := []string{"keygen", "--data", data, "--list", "dev"}
			if tc.config != "" {
				cfg := filepath.Join(t.TempDir(), "c.toml")
				if err := os.WriteFile(cfg, []byte(tc.config), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", cfg)
			}
			out, stderr, err := mailswarm(t, args...)
			if err != nil {
				t.Fatalf("keygen: %v\n%s", err, stderr)
			}
			lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("keygen printed %q, want the key and the follow string", out)
			}
			pub := lines[0]
			if want := "mailswarm:dev:" + pub + "@" + tc.base; lines[1] != want {
				t.Fatalf("follow string %q, want %q", lines[1], want)
			}
			fa, err := parseFollowArgs([]string{"--data", t.TempDir(), lines[1], "--once", "--local", "dev-mirror", "127.0.0.3:6881"})
			if err != nil {
				t.Fatalf("parseFollowArgs(%q): %v", lines[1], err)
			}
			if hex.EncodeToString(fa.spec.Key) != pub || fa.spec.List != "dev" || fa.spec.LocalName() != "dev-mirror" || !fa.once ||
				!reflect.DeepEqual(fa.spec.Sources, []string{tc.base, "127.0.0.3:6881"}) {
				t.Errorf("parseFollowArgs(%q) = %+v", lines[1], fa)
			}
			if !bytes.Equal(fa.spec.Key, readPub(t, filepath.Join(data, "lists", "dev"))) {
				t.Errorf("key %x is not list.pub", fa.spec.Key)
			}
		})
	}
}

// follow status reads a followed list's state from disk when no node
// answers: the newest manifest's seq and time, and swarm/follow.json;
// without --list it finds the lists that have a follower's state.
func TestFollowStatusOnDisk(t *testing.T) {
	data := t.TempDir()
	if _, stderr, err := mailswarm(t, "keygen", "--data", data, "--list", "dev"); err != nil {
		t.Fatalf("keygen: %v\n%s", err, stderr)
	}
	if _, stderr, err := mailswarm(t, "import", "--data", data, "--list", "dev", testMbox(t, "f", 3)); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	if _, stderr, err := mailswarm(t, "swarm", "publish", "--data", data, "--list", "dev"); err != nil {
		t.Fatalf("publish: %v\n%s", err, stderr)
	}
	if _, _, err := mailswarm(t, "follow", "status", "--data", data); exitCode(err) != 1 {
		t.Errorf("follow status without a followed list: exit %d, want 1", exitCode(err))
	}
	state := `{"sources":[{"source":"http://127.0.0.2:1","last_error":"refused"}]}`
	if err := os.WriteFile(filepath.Join(data, "lists", "dev", "swarm", "follow.json"), []byte(state), 0o644); err != nil {
		t.Fatal(err)
	}
	// An HTTP address nothing answers at: the figures are the disk's.
	cfg := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("[http]\nlisten = \"127.0.0.1:%d\"\n", peertest.FreePort(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := mailswarm(t, "follow", "status", "--data", data, "--config", cfg, "--json")
	if err != nil {
		t.Fatalf("follow status: %v\n%s", err, stderr)
	}
	var all struct{ Lists []followStatus }
	if err := json.Unmarshal(out, &all); err != nil || len(all.Lists) != 1 {
		t.Fatalf("follow status --json = %s (%v)", out, err)
	}
	st := all.Lists[0]
	if st.List != "dev" || st.Seq != 1 || st.ManifestTime == "" || st.Live || st.Key != hex.EncodeToString(readPub(t, filepath.Join(data, "lists", "dev"))) {
		t.Errorf("follow status = %+v", st)
	}
	var f struct{ Sources []struct{ Source string } }
	if err := json.Unmarshal(st.Follow, &f); err != nil || len(f.Sources) != 1 || f.Sources[0].Source != "http://127.0.0.2:1" {
		t.Errorf("follow = %s (%v), want follow.json's", st.Follow, err)
	}
	out, stderr, err = mailswarm(t, "follow", "status", "--data", data, "--list", "dev", "--config", cfg)
	if err != nil || !strings.HasPrefix(string(out), "dev: manifest 1 of ") || !strings.Contains(string(out), "(on disk)") {
		t.Errorf("follow status --list dev: %q %v\n%s", out, err, stderr)
	}
}

// serve takes [[follow]] tables (the lists go to the swarm node; their
// address to SMTP) and starts; one without its key is refused with exit
// 2, saying the key is missing.
func TestServeFollowConfig(t *testing.T) {
	data := t.TempDir()
	port := peertest.FreePort(t)
	base := writeConfig(t, data, port, 0, "dev@lists.example.org")
	text, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	follow := "[[follow]]\nlist = \"up\"\nsources = [\"http://127.0.0.2:1\"]\naddress = \"up@mirror.example.org\"\n"

	noKey := filepath.Join(t.TempDir(), "nokey.toml")
	os.WriteFile(noKey, append(text, follow...), 0o644)
	if _, stderr, err := mailswarm(t, "serve", "--config", noKey); exitCode(err) != 2 || !strings.Contains(string(stderr), "follow[0].key: missing") {
		t.Fatalf("serve with a [[follow]] without key: exit %d, want 2 and follow[0].key: missing\n%s", exitCode(err), stderr)
	}

	cfg := filepath.Join(t.TempDir(), "follow.toml")
	os.WriteFile(cfg, append(text, (follow+"key = \""+testFollowKey+"\"\n")...), 0o644)
	srv := startServe(t, cfg, port)
	defer srv.stop(t)
	c, err := smtp.Dial(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Mail("a@example.net"); err != nil {
		t.Fatal(err)
	}
	// The mirror's address is refused at RCPT, saying why (not as an
	// unknown address, 5.1.1).
	var te *textproto.Error
	if err := c.Rcpt("up@mirror.example.org"); !errors.As(err, &te) || te.Code != 550 || !strings.Contains(te.Msg, "5.7.1 List up is a read-only mirror") {
		t.Errorf("RCPT to a [[follow]] address: %v, want 550 5.7.1 naming the read-only mirror", err)
	}
	// Accept refuses too, whatever reaches it: 554.
	a, err := archive.Open(&archive.Options{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ml, err := a.List("up")
	if err != nil {
		t.Fatal(err)
	}
	if err := ml.Accept(t.Context(), []byte("Subject: x\r\n\r\nx\r\n")); !errors.Is(err, archive.ErrMirror) || !errors.Is(err, archive.ErrRejected) {
		t.Errorf("Accept on a mirror list: %v", err)
	}
}
