package peertest

import (
	"bytes"
	_ "embed" // the Dovecot configuration template
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"text/template"
	"time"
)

//go:embed testdata/dovecot/dovecot.conf.tmpl
var dovecotConfTmpl string

var dovecotConf = template.Must(template.New("dovecot.conf").Parse(dovecotConfTmpl))

// DovecotUser and DovecotPass are the login of the Dovecot that
// DovecotStart runs.
const (
	DovecotUser = "bench"
	DovecotPass = "bench"
)

// dovecotConfig fills testdata/dovecot/dovecot.conf.tmpl.
type dovecotConfig struct {
	Top                         string // passwd file and home directories
	Dir                         string // one attempt's configuration, sockets and logs
	Port                        int
	Root                        bool
	MailUser, MailGroup         string
	InternalUser, InternalGroup string
	LoginUser                   string
}

// DovecotStart starts a private Dovecot IMAP server on 127.0.0.1 whose
// user DovecotUser (password DovecotPass) has exactly msgs in INBOX, in
// this order (sequence number i+1 is msgs[i]), and returns its port. The
// messages are written as they are into a maildir; Dovecot indexes them
// when a client first opens INBOX. Everything lives in a t.TempDir; the
// server is stopped (SIGTERM, then SIGKILL) in t.Cleanup. It skips t
// (fails it under CI) when dovecot is not installed.
//
// As root, as in CI, the master stays root, login processes run as
// dovenull, internal ones as dovecot and mail is accessed as
// nobody:nogroup (Dovecot refuses mail uid 0), so the store is given to
// nobody and the directories above it up to the system temp directory get
// o+x. As another user everything runs as that user (Dovecot's rootless
// layout). See shared/peers/dovecot/run.sh, where this comes from.
func DovecotStart(t testing.TB, msgs [][]byte) (port int) {
	t.Helper()
	Need(t, "dovecot")
	dir := t.TempDir()
	cfg, err := dovecotIdentity()
	if err != nil {
		t.Fatalf("peertest: dovecot: %v", err)
	}
	cfg.Top = dir
	home := filepath.Join(dir, "home", DovecotUser)
	if err := writeMaildir(filepath.Join(home, "Maildir"), msgs); err != nil {
		t.Fatalf("peertest: dovecot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"),
		[]byte(DovecotUser+":{PLAIN}"+DovecotPass+"\n"), 0o644); err != nil {
		t.Fatalf("peertest: dovecot: %v", err)
	}
	if cfg.Root {
		if err := giveTo(filepath.Join(dir, "home"), cfg.MailUser, cfg.MailGroup); err != nil {
			t.Fatalf("peertest: dovecot: %v", err)
		}
		if err := openPath(home); err != nil {
			t.Fatalf("peertest: dovecot: %v", err)
		}
	}

	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		cfg.Dir = filepath.Join(dir, fmt.Sprintf("server-%d", attempt))
		cfg.Port = FreePort(t)
		if lastErr = startDovecot(t, cfg); lastErr == nil {
			return cfg.Port
		}
		t.Logf("peertest: dovecot attempt %d on port %d: %v", attempt, cfg.Port, lastErr)
	}
	t.Fatalf("peertest: dovecot did not start: %v", lastErr)
	return 0
}

// dovecotIdentity returns the users the processes run as.
func dovecotIdentity() (dovecotConfig, error) {
	if os.Geteuid() == 0 {
		c := dovecotConfig{Root: true, MailUser: "nobody", MailGroup: "nogroup",
			InternalUser: "dovecot", InternalGroup: "dovecot", LoginUser: "dovenull"}
		if _, err := user.Lookup("dovecot"); err != nil {
			c.InternalUser, c.InternalGroup = "nobody", "nogroup"
		}
		if _, err := user.Lookup("dovenull"); err != nil {
			c.LoginUser = "nobody"
		}
		if _, err := user.LookupGroup("nogroup"); err != nil {
			return c, fmt.Errorf("no group nogroup: %w", err)
		}
		return c, nil
	}
	u, err := user.Current()
	if err != nil {
		return dovecotConfig{}, err
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return dovecotConfig{}, err
	}
	return dovecotConfig{MailUser: u.Username, MailGroup: g.Name,
		InternalUser: u.Username, InternalGroup: g.Name, LoginUser: u.Username}, nil
}

// writeMaildir writes msgs into a new maildir, one file each in cur/.
// The names share one timestamp and carry a zero-padded sequence number,
// so that Dovecot, which gives new files their UIDs in file name order,
// numbers them in msgs' order.
func writeMaildir(md string, msgs [][]byte) error {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o755); err != nil {
			return err
		}
	}
	for i, m := range msgs {
		name := fmt.Sprintf("1000000000.M%08dP1.peertest:2,", i+1)
		if err := os.WriteFile(filepath.Join(md, "cur", name), m, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// giveTo changes the owner of root and everything below it.
func giveTo(root, userName, groupName string) error {
	u, err := user.Lookup(userName)
	if err != nil {
		return err
	}
	g, err := user.LookupGroup(groupName)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(g.Gid)
	return filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// openPath grants o+x (search, not read) on dir and each directory above
// it below the system temp directory, so that the mail user reaches the
// store; the temp directory itself must already be searchable.
func openPath(dir string) error {
	tmp, err := filepath.Abs(os.TempDir())
	if err != nil {
		return err
	}
	for d := dir; len(d) > len(tmp) && d != filepath.Dir(d); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				return err
			}
		}
	}
	return nil
}

// startDovecot writes the configuration into cfg.Dir, starts the master
// in the foreground and waits for its greeting; on success it registers
// the cleanup that stops it.
func startDovecot(t testing.TB, cfg dovecotConfig) error {
	t.Helper()
	for _, d := range []string{cfg.Dir, filepath.Join(cfg.Dir, "run"), filepath.Join(cfg.Dir, "state")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	var conf bytes.Buffer
	if err := dovecotConf.Execute(&conf, cfg); err != nil {
		return err
	}
	confPath := filepath.Join(cfg.Dir, "dovecot.conf")
	if err := os.WriteFile(confPath, conf.Bytes(), 0o644); err != nil {
		return err
	}
	if cfg.Root {
		if err := openPath(cfg.Dir); err != nil {
			return err
		}
	}
	fg, err := os.Create(filepath.Join(cfg.Dir, "dovecot.fg.log"))
	if err != nil {
		return err
	}
	defer fg.Close()
	// -F: stay in the foreground, so the process we start is the master
	cmd := exec.Command("dovecot", "-c", confPath, "-F")
	cmd.Stdout, cmd.Stderr = fg, fg
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			return
		case <-time.After(10 * time.Second):
		}
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Logf("peertest: dovecot pid %d did not exit after SIGKILL", cmd.Process.Pid)
		}
	}
	logs := func() string {
		a, _ := os.ReadFile(filepath.Join(cfg.Dir, "dovecot.fg.log"))
		b, _ := os.ReadFile(filepath.Join(cfg.Dir, "dovecot.log"))
		return lastLines(string(a)+string(b), 20)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			return fmt.Errorf("dovecot exited: %v\n%s", err, logs())
		default:
		}
		if greeted(addr) {
			t.Cleanup(stop)
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("no greeting on %s after 30s\n%s", addr, logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// greeted reports whether an IMAP server at addr sends "* OK".
func greeted(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4)
	n, _ := c.Read(buf)
	return string(buf[:n]) == "* OK"
}

func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
