package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"mailswarm/swarm"
)

// A cluster is real `mailswarm serve` processes, each with its own data
// directory, config and ports on its own loopback address (127.0.0.2,
// .3, …): an origin of list dev and mirrors following it.

// clusterNode is one serve process of a cluster.
type clusterNode struct {
	name             string
	ip               string
	data, cfg        string
	smtp, imap, http int
	bt               int
	srv              *server
	key              string // the followed list's key (hex), for mirrors
	sources          []string
	sliceInterval    string
	extra            string // more config text
	btExtra          string // more [bittorrent] keys
	origin           bool
	bin              string
	env              []string // more environment (testClockEnv)
}

// freePortOn returns a free TCP port on ip.
func freePortOn(t testing.TB, ip string) int {
	t.Helper()
	// The kernel may give the same free port to two listens in a row
	// (each closed at once): a node once got one port for http and
	// imap ("http.listen ... is already imap.listen"). A port handed
	// out in this process is not handed out again.
	handedMu.Lock()
	defer handedMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("free port on %s: %v", ip, err)
		}
		a := net.JoinHostPort(ip, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
		ln.Close()
		if !handed[a] {
			handed[a] = true
			return ln.Addr().(*net.TCPAddr).Port
		}
	}
	t.Fatalf("free port on %s: none not handed out before in 100 tries", ip)
	return 0
}

var (
	handedMu sync.Mutex
	handed   = map[string]bool{}
)

// newClusterNode prepares node number i (127.0.0.(i+2)); origin nodes
// serve list dev over SMTP, mirrors follow key from sources.
func newClusterNode(t testing.TB, i int, origin bool) *clusterNode {
	t.Helper()
	ip := fmt.Sprintf("127.0.0.%d", i+2)
	n := &clusterNode{name: fmt.Sprintf("node%d", i), ip: ip, data: t.TempDir(), origin: origin,
		imap: freePortOn(t, ip), http: freePortOn(t, ip), bt: freePortOn(t, ip), sliceInterval: "1s"}
	if origin {
		n.smtp = freePortOn(t, ip)
	}
	n.cfg = filepath.Join(t.TempDir(), "mailswarm.toml")
	return n
}

func (n *clusterNode) httpBase() string { return fmt.Sprintf("http://%s:%d", n.ip, n.http) }
func (n *clusterNode) btAddr() string   { return fmt.Sprintf("%s:%d", n.ip, n.bt) }
func (n *clusterNode) imapAddr() string { return fmt.Sprintf("%s:%d", n.ip, n.imap) }

// config writes the node's config file.
func (n *clusterNode) config(t testing.TB) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "data = %q\n", n.data)
	if n.origin {
		fmt.Fprintf(&b, "[smtp]\nlisten = \"%s:%d\"\n", n.ip, n.smtp)
	} else {
		b.WriteString("[smtp]\nlisten = \"\"\n")
	}
	fmt.Fprintf(&b, "[imap]\nlisten = \"%s:%d\"\n[http]\nlisten = \"%s:%d\"\n", n.ip, n.imap, n.ip, n.http)
	fmt.Fprintf(&b, "[bittorrent]\nlisten = \"%s:%d\"\nslice_interval = %q\n", n.ip, n.bt, n.sliceInterval)
	b.WriteString(n.btExtra)
	if n.origin {
		b.WriteString("[[list]]\nname = \"dev\"\naddresses = [\"dev@example.org\"]\n")
	} else {
		fmt.Fprintf(&b, "[[follow]]\nlist = \"dev\"\nkey = %q\nsources = [", n.key)
		for i, s := range n.sources {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", s)
		}
		b.WriteString("]\n")
	}
	b.WriteString(n.extra)
	if err := os.WriteFile(n.cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// start writes the config and starts serve, waiting for its ports.
func (n *clusterNode) start(t *testing.T) {
	t.Helper()
	n.config(t)
	bin := n.bin
	if bin == "" {
		bin = buildBinary(t)
	}
	ports := []int{n.imap, n.http}
	if n.origin {
		ports = append(ports, n.smtp)
	}
	cmd := exec.Command(bin, "serve", "--config", n.cfg)
	cmd.Env = append(os.Environ(), n.env...)
	n.srv = startServeOn(t, cmd, n.ip, ports...)
	t.Cleanup(func() {
		if n.srv.cmd.ProcessState == nil {
			n.srv.cmd.Process.Kill()
			n.srv.cmd.Wait()
		}
	})
}

// startServeOn is startServeCmd for ports on ip.
func startServeOn(t *testing.T, cmd *exec.Cmd, ip string, ports ...int) *server {
	t.Helper()
	s := &server{stderr: new(bytes.Buffer), mu: new(sync.Mutex)}
	s.cmd = cmd
	s.cmd.Stderr = lockedBuffer{s.mu, s.stderr}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, port := range ports {
		for {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strconv.Itoa(port)), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				s.cmd.Process.Kill()
				s.cmd.Wait()
				t.Fatalf("serve did not listen on %s:%d: %v\n%s", ip, port, err, s.log())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return s
}

// send delivers msg over SMTP to list dev at origin n, failing the test
// (with the node's log) when it is not accepted.
func (n *clusterNode) send(t testing.TB, msg string) {
	t.Helper()
	if err := smtp.SendMail(fmt.Sprintf("%s:%d", n.ip, n.smtp), nil, "p@example.net", []string{"dev@example.org"}, []byte(msg)); err != nil {
		t.Fatalf("SMTP to %s: %v\n%s", n.name, err, tail(n.srv.log(), 40))
	}
}

// getURL GETs u and returns the status and body; a transport error
// fails the test.
func getURL(t testing.TB, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// firstManifest long-polls the node at base (HTTP) for list dev's first
// manifest and returns it, verified under the key the node serves, and
// the key. logs gives the node's log for a failure.
func firstManifest(t testing.TB, base string, logs func() string) (*swarm.Manifest, []byte) {
	t.Helper()
	_, keyHex := getURL(t, base+"/lists/dev/key")
	key, err := hex.DecodeString(strings.TrimSpace(string(keyHex)))
	if err != nil {
		t.Fatalf("key %q: %v", keyHex, err)
	}
	code, body := getURL(t, base+"/lists/dev/manifest?after=0&wait=30")
	if code != 200 {
		t.Fatalf("long poll: %d %s\n%s", code, body, logs())
	}
	m, err := swarm.ParseManifest(body, key)
	if err != nil {
		t.Fatal(err)
	}
	return m, key
}

// postN sends posts 1 to count, Message-ID <tagN@example.net>, to
// origin n.
func (n *clusterNode) postN(t testing.TB, tag string, count int) {
	t.Helper()
	for i := 1; i <= count; i++ {
		n.send(t, fmt.Sprintf("From: Poster <p@example.net>\r\nTo: dev@example.org\r\nSubject: post %d\r\n"+
			"Message-ID: <%s%d@example.net>\r\nDate: %s\r\n\r\nbody %d\r\n", i, tag, i, time.Now().Format(time.RFC1123Z), i))
	}
}

// listKey returns the hex key of list dev at an origin's data directory.
func listKey(t *testing.T, data string) string {
	t.Helper()
	return hex.EncodeToString(readPub(t, filepath.Join(data, "lists", "dev")))
}

// exportSum returns the sha256 of `export` of a node's list dev and the
// number of bytes.
func exportSum(t testing.TB, data string) (string, int) {
	t.Helper()
	out, stderr, err := mailswarm(t, "export", "--data", data, "--list", "dev")
	if err != nil {
		t.Fatalf("export %s: %v\n%s", data, err, stderr)
	}
	s := sha256.Sum256(out)
	return hex.EncodeToString(s[:]), len(out)
}

// verifyNode runs `mailswarm verify` on a node's list dev.
func verifyNode(t testing.TB, data string) {
	t.Helper()
	if out, err := exec.Command(buildBinary(t), "verify", "--data", data, "--list", "dev").CombinedOutput(); err != nil {
		t.Errorf("verify %s: %v\n%s", data, err, out)
	}
}

// nodeStatus reads a node's public status of list dev.
func nodeStatus(t testing.TB, n *clusterNode) swarm.Status {
	t.Helper()
	var st swarm.Status
	resp, err := http.Get(n.httpBase() + "/lists/dev/status")
	if err != nil {
		t.Fatalf("%s status: %v", n.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("%s status: %v: %s", n.name, err, b)
	}
	return st
}

// idler is an IMAP client idling on list dev at a node, recording when
// each EXISTS count was first seen.
type idler struct {
	seen chan existsAt
}

type existsAt struct {
	n  int
	at time.Time
}

// startIdler logs in to addr, selects dev and idles; every "* N EXISTS"
// goes to seen with its arrival time until the connection ends.
func startIdler(t testing.TB, addr string) *idler {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	read := func(prefix string) string {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("imap %s: waiting for %q: %v", addr, prefix, err)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
	}
	read("* OK")
	fmt.Fprintf(c, "a LOGIN reader x\r\n")
	read("a OK")
	fmt.Fprintf(c, "b SELECT dev\r\n")
	read("b OK")
	fmt.Fprintf(c, "c IDLE\r\n")
	read("+")
	c.SetReadDeadline(time.Time{})
	id := &idler{seen: make(chan existsAt, 4096)}
	go func() {
		defer close(id.seen)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if f := strings.Fields(l); len(f) == 3 && f[0] == "*" && f[2] == "EXISTS" {
				if v, err := strconv.Atoi(f[1]); err == nil {
					id.seen <- existsAt{v, time.Now()}
				}
			}
		}
	}()
	return id
}

// propagation sends msgs messages to origin over SMTP, rate a second,
// and waits up to within for every idler (one per mirror) to see each;
// it logs each mirror's delays (250 at the origin → EXISTS in IDLE at
// the mirror: p50, p95, max), naming the mirror by how(k).
func propagation(t *testing.T, origin *clusterNode, mirrors []*clusterNode, idlers []*idler, msgs, rate int, within time.Duration, how func(k int) string) {
	t.Helper()
	sent := make([]time.Time, msgs+1) // by article number
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for i := 1; i <= msgs; i++ {
		<-tick.C
		msg := fmt.Sprintf("From: Poster <p%d@example.net>\r\nTo: dev@example.org\r\nSubject: post %d\r\n"+
			"Message-ID: <post%d@example.net>\r\nDate: %s\r\n\r\nbody %d\r\n", i%9, i, i, time.Now().Format(time.RFC1123Z), i)
		origin.send(t, msg)
		sent[i] = time.Now()
	}
	for k, id := range idlers {
		var delays []time.Duration
		next := 1
		deadline := time.After(within)
		for next <= msgs {
			select {
			case e, ok := <-id.seen:
				if !ok {
					t.Fatalf("mirror %d: IMAP connection ended at %d of %d\n%s", k+1, next-1, msgs, mirrors[k].srv.log())
				}
				for ; next <= e.n && next <= msgs; next++ {
					delays = append(delays, e.at.Sub(sent[next]))
				}
			case <-deadline:
				t.Fatalf("mirror %d: saw %d of %d messages in IDLE\n%s", k+1, next-1, msgs, mirrors[k].srv.log())
			}
		}
		slices.Sort(delays)
		t.Logf("mirror %d (%s): 250 at origin → EXISTS at mirror: p50 %v, p95 %v, max %v", k+1, how(k),
			delays[len(delays)/2].Round(time.Millisecond), delays[len(delays)*95/100].Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond))
	}
}

// testClock moves the clock of the serves given its env (testClockEnv):
// set writes the offset from the real clock, which serve reads again
// within 100 ms.
type testClock struct {
	file string
	env  []string
}

func newTestClock(t testing.TB) *testClock {
	t.Helper()
	c := &testClock{file: filepath.Join(t.TempDir(), "offset")}
	c.env = []string{testClockEnv + "=" + c.file}
	c.set(t, 0)
	return c
}

func (c *testClock) set(t testing.TB, off time.Duration) {
	t.Helper()
	if err := os.WriteFile(c.file, []byte(strconv.FormatFloat(off.Seconds(), 'f', 3, 64)), 0o644); err != nil {
		t.Fatal(err)
	}
}
