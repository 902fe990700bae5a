package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mailswarm/internal/peertest"
)

// Under a limit of 256 descriptors, 300 keep-alive HTTP clients and 300
// IMAP clients that never log in do not stop SMTP from answering: the
// default caps of HTTP and IMAP are each a quarter of the limit, and
// IMAP's share for one address not logged in is 16 (before, HTTP took
// descriptors until accept4 failed with "too many open files" on every
// listener, and IMAP's cap was 1,000 whatever the limit).
func TestServeHTTPCannotStarveSMTP(t *testing.T) {
	srv, p := serveUnder256(t, t.TempDir(), false)
	defer srv.stop(t)
	httpPort, imapPort := p.http, p.imap

	// 300 clients from 127.0.0.1 to 127.0.0.15 (20 each: over the cap
	// per client too), each a request and then idle on keep-alive.
	served := 0
	for i := range 300 {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%15))}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpPort))
		if err != nil {
			continue
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET /lists/ HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
			continue
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		served++
	}
	t.Logf("%d of 300 HTTP connections served and held", served)
	if served > 256/4 {
		t.Errorf("%d HTTP connections held, want at most 64 (a quarter of 256 descriptors)", served)
	}
	// and 300 IMAP clients from the same addresses that never log in
	// (before: IMAP's cap was 1,000 whatever the descriptor limit, and
	// these took every descriptor left)
	greeted := map[string]int{}
	for i := range 300 {
		from := net.IPv4(127, 0, 0, byte(1+i%15))
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", imapPort))
		if err != nil {
			continue
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if line, _ := bufio.NewReader(c).ReadString('\n'); strings.HasPrefix(line, "* OK") {
			greeted[from.String()]++
		}
	}
	held := 0
	for _, n := range greeted {
		held += n
		if n > 16 {
			t.Errorf("one address holds %d IMAP connections not logged in, want at most 16 (%v)", n, greeted)
		}
	}
	t.Logf("%d of 300 IMAP connections greeted and held", held)
	if held > 256/4 {
		t.Errorf("%d IMAP connections held, want at most 64 (a quarter of 256 descriptors)", held)
	}
	stillAnswers(t, srv, "with the HTTP and IMAP clients holding on", listenerCheck{"smtp", "", "220 ", p.smtp})
}

// starvePorts are the ports of a serve started by serveUnder256.
type starvePorts struct{ smtp, imap, http, bt int }

// serveUnder256 starts serve on data under a limit of 256 descriptors
// (prlimit) with SMTP, IMAP and HTTP, and BitTorrent when bt, each on a
// free loopback port, for list dev.
func serveUnder256(t *testing.T, data string, bt bool) (*server, starvePorts) {
	t.Helper()
	peertest.Need(t, "prlimit") // util-linux
	prlimit, _ := exec.LookPath("prlimit")
	p := starvePorts{smtp: peertest.FreePort(t), imap: peertest.FreePort(t), http: peertest.FreePort(t)}
	cfg := fmt.Sprintf("data = %q\n[smtp]\nlisten = \"127.0.0.1:%d\"\n[imap]\nlisten = \"127.0.0.1:%d\"\n"+
		"[http]\nlisten = \"127.0.0.1:%d\"\n", data, p.smtp, p.imap, p.http)
	ports := []int{p.smtp, p.imap, p.http}
	if bt {
		p.bt = peertest.FreePort(t)
		cfg += fmt.Sprintf("[bittorrent]\nlisten = \"127.0.0.1:%d\"\n", p.bt)
		ports = append(ports, p.bt)
	}
	cfg += "[[list]]\nname = \"dev\"\naddresses = [\"dev@example.org\"]\n"
	path := filepath.Join(t.TempDir(), "mailswarm.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return startServeCmd(t, exec.Command(prlimit, "--nofile=256:256", "--", buildBinary(t), "serve", "--config", path),
		ports...), p
}

// listenerCheck is a new client's first exchange with a listener: it
// sends req (may be empty) and wants a first line starting with prefix.
type listenerCheck struct {
	name, req, prefix string
	port              int
}

// stillAnswers checks that every listener answers a new client (within
// 10 s); while says what else goes on, for the error.
func stillAnswers(t *testing.T, srv *server, while string, checks ...listenerCheck) {
	t.Helper()
	for _, l := range checks {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", l.port), 5*time.Second)
		if err != nil {
			t.Errorf("%s: %v", l.name, err)
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, l.req)
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, l.prefix) {
			t.Errorf("%s %s: %q, %v\n%s", l.name, while, line, err, srv.log())
		}
	}
}
