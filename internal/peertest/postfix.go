package peertest

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// PostfixOptions configure a private Postfix instance started by
// [PostfixStart].
type PostfixOptions struct {
	// SMTPPort is where Postfix's own smtpd listens, on 127.0.0.1. Zero
	// picks a free port ([Postfix.SMTPAddr] tells which).
	SMTPPort int

	// Transports map a recipient domain to the Postfix transport that
	// delivers it (transport(5)), for example
	//
	//	"lists.example.org": "smtp:[127.0.0.1]:2525"
	//	"lmtp.example.org":  "lmtp:inet:127.0.0.1:2424"
	//
	// Every domain is also a relay domain; Postfix accepts mail for no
	// other domain and delivers nothing locally.
	Transports map[string]string

	// MainCF are extra main.cf settings, applied after (and so
	// overriding) the harness's own.
	MainCF map[string]string
}

// Postfix is a running private Postfix instance: its own config
// directory, queue and log under a test's temporary directory, listening
// only on 127.0.0.1. It never reads or writes /etc/postfix/main.cf or
// /var/spool/postfix.
type Postfix struct {
	// Dir is the config directory (main.cf, master.cf, transport); the
	// queue, data directory and maillog are beneath it.
	Dir string

	smtpAddr string
	t        testing.TB
}

// Postfix's settings for a test instance. Retries are fast so a test that
// starts its server after Postfix does not wait minutes.
var postfixMainCF = [][2]string{
	{"compatibility_level", "3.6"},
	{"myhostname", "localhost"},
	{"mydomain", "localdomain"},
	{"myorigin", "localhost"},
	{"mydestination", ""},
	{"local_recipient_maps", ""},
	{"alias_maps", ""},
	{"alias_database", ""},
	{"mynetworks", "127.0.0.0/8"},
	{"inet_interfaces", "127.0.0.1"},
	{"inet_protocols", "ipv4"},
	{"smtp_dns_support_level", "disabled"},
	{"lmtp_dns_support_level", "disabled"},
	{"smtp_host_lookup", "native"},
	{"smtp_tls_security_level", "none"},
	{"lmtp_tls_security_level", "none"},
	{"smtpd_tls_security_level", "none"},
	{"smtpd_relay_restrictions", "permit_mynetworks, reject_unauth_destination"},
	{"biff", "no"},
	{"fast_flush_domains", ""},
	{"queue_run_delay", "1s"},
	{"minimal_backoff_time", "1s"},
	{"maximal_backoff_time", "2s"},
	{"smtp_connect_timeout", "5s"},
	{"lmtp_connect_timeout", "5s"},
}

// postfixMasterCF are the services of Debian's master.cf that relaying
// needs, none chrooted (the queue is not set up for a chroot); the smtpd
// line is added per instance.
const postfixMasterCF = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
lmtp      unix  -       -       n       -       -       lmtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// PostfixStart starts a private Postfix relaying the domains of
// opts.Transports, and stops it when t ends (waiting for its master
// process to exit). It skips t (fails it under CI) when postfix is not
// installed or the test does not run as root, which starting Postfix
// needs.
func PostfixStart(t testing.TB, opts PostfixOptions) *Postfix {
	t.Helper()
	Need(t, "postfix", "postqueue")
	if os.Geteuid() != 0 {
		missing(t, "peertest: postfix must be started as root")
	}
	if len(opts.Transports) == 0 {
		t.Fatal("peertest: PostfixStart: no transports")
	}
	port := opts.SMTPPort
	if port == 0 {
		port = FreePort(t)
	}

	dir := t.TempDir()
	// The daemons run as the mail_owner (postfix) and must reach the
	// queue: open the temporary directory and its parent to traversal.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatalf("peertest: postfix: %v", err)
		}
	}
	// postfix chdirs to the queue before post-install creates its
	// subdirectories.
	if err := os.Mkdir(filepath.Join(dir, "queue"), 0o755); err != nil {
		t.Fatalf("peertest: postfix: %v", err)
	}
	p := &Postfix{Dir: dir, smtpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), t: t}

	domains := slices.Sorted(maps.Keys(opts.Transports))
	var transport strings.Builder
	for _, d := range domains {
		fmt.Fprintf(&transport, "%s %s\n", d, opts.Transports[d])
	}
	settings := append([][2]string{
		{"queue_directory", filepath.Join(dir, "queue")},
		{"data_directory", filepath.Join(dir, "data")},
		{"maillog_file", p.maillogPath()},
		{"maillog_file_prefixes", dir},
		{"relay_domains", strings.Join(domains, ", ")},
		{"transport_maps", "texthash:" + filepath.Join(dir, "transport")},
	}, postfixMainCF...)
	for _, k := range slices.Sorted(maps.Keys(opts.MainCF)) {
		settings = append(settings, [2]string{k, opts.MainCF[k]})
	}
	var main strings.Builder
	main.WriteString("# Written by mailswarm/internal/peertest for one test.\n")
	for _, kv := range settings {
		fmt.Fprintf(&main, "%s = %s\n", kv[0], kv[1])
	}
	master := fmt.Sprintf("%s inet  n       -       n       -       -       smtpd\n", p.smtpAddr) + postfixMasterCF
	for name, text := range map[string]string{"main.cf": main.String(), "master.cf": master, "transport": transport.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatalf("peertest: postfix: %v", err)
		}
	}

	if out, err := p.command("postfix", "start"); err != nil {
		t.Fatalf("peertest: postfix -c %s start: %v\n%s\nmaillog:\n%s", dir, err, out, p.Maillog())
	}
	t.Cleanup(p.stop)
	if err := waitDial(p.smtpAddr, 15*time.Second); err != nil {
		t.Fatalf("peertest: postfix smtpd: %v\nmaillog:\n%s", err, p.Maillog())
	}
	return p
}

// SMTPAddr is where Postfix's smtpd listens, "127.0.0.1:port".
func (p *Postfix) SMTPAddr() string { return p.smtpAddr }

func (p *Postfix) maillogPath() string { return filepath.Join(p.Dir, "maillog") }

// Maillog returns Postfix's log so far (empty if there is none yet).
func (p *Postfix) Maillog() string {
	b, _ := os.ReadFile(p.maillogPath())
	return string(b)
}

// command runs a Postfix program with -c Dir, with the config directory
// also in the environment for the programs it runs in turn.
func (p *Postfix) command(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, append([]string{"-c", p.Dir}, args...)...)
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+p.Dir)
	return cmd.CombinedOutput()
}

// WaitQueueEmpty waits until Postfix's queue is empty (postqueue -p), and
// returns an error naming what is still queued when timeout passes first.
func (p *Postfix) WaitQueueEmpty(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		out, err := p.command("postqueue", "-p")
		if err == nil && bytes.Contains(out, []byte("Mail queue is empty")) {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("peertest: postqueue -p: %v: %s", err, out)
			}
			return fmt.Errorf("peertest: postfix queue not empty after %v:\n%s", timeout, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Flush asks Postfix to try every deferred message now (postqueue -f),
// for a test that starts the destination after Postfix gave up once.
func (p *Postfix) Flush() error {
	if out, err := p.command("postqueue", "-f"); err != nil {
		return fmt.Errorf("peertest: postqueue -f: %v: %s", err, out)
	}
	return nil
}

// stop stops the instance and waits for its master process to exit,
// killing it when it does not stop in time.
func (p *Postfix) stop() {
	pid := p.masterPID()
	if out, err := p.command("postfix", "stop"); err != nil {
		p.t.Errorf("peertest: postfix -c %s stop: %v\n%s", p.Dir, err, out)
	}
	if pid <= 0 {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			p.t.Errorf("peertest: postfix master %d did not exit; killing it", pid)
			_, _ = p.command("postfix", "abort")
			_ = signalPID(pid, syscall.SIGKILL)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// masterPID reads the master's pid file, or returns 0.
func (p *Postfix) masterPID() int {
	b, err := os.ReadFile(filepath.Join(p.Dir, "queue", "pid", "master.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// waitDial waits until addr accepts a TCP connection.
func waitDial(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening after %v: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
