package imapd_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"mailswarm/imapd"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// Implicit TLS (ServeTLS) and STARTTLS on the plain listener.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	ts := newTestServer(t, synthetic(3), &imapd.Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	clientTLS := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}

	// imaps
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.srv.ServeTLS(ln)
	c, err := tls.Dial("tcp", ln.Addr().String(), clientTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc := &rawConn{t: t, c: c, r: bufio.NewReader(c)}
	rc.until("* OK", 5*time.Second)
	rc.send("a LOGIN u p")
	rc.until("a OK", 5*time.Second)
	rc.send("b SELECT test")
	if l := rc.until("b OK", 5*time.Second); !slicesContain(l, "* 3 EXISTS") {
		t.Fatalf("imaps SELECT: %q", l)
	}

	// STARTTLS on the plain port
	p := dialRaw(t, ts.addr)
	if l := p.until("* OK", 5*time.Second); !strings.Contains(l[0], "STARTTLS") {
		t.Fatalf("greeting does not offer STARTTLS: %q", l)
	}
	p.send("a STARTTLS")
	p.until("a OK", 5*time.Second)
	tc := tls.Client(p.c, clientTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	s := &rawConn{t: t, c: tc, r: bufio.NewReader(tc)}
	s.send("b LOGIN u p")
	s.until("b OK", 5*time.Second)
	s.send("c FETCH 1:* (UID)") // not selected: BAD, then a real command
	s.until("c ", 5*time.Second)
	s.send("d EXAMINE test")
	if l := s.until("d OK", 5*time.Second); !slicesContain(l, "* 3 EXISTS") {
		t.Fatalf("EXAMINE after STARTTLS: %q", l)
	}
}
