package smtpin

import (
	"strings"
	"testing"
	"time"
)

// TestBadInput feeds messages no well-behaved client sends. Each gets a clear
// reply, the server survives, and what reaches the Deliverer is exactly the
// data with dot-stuffing undone.
func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string // as sent after 354, up to and including the final dot
		want string // reply prefix to the data
		raw  string // delivered bytes; "" with a 250 means an empty message
	}{
		{
			name: "bare LF",
			data: "Subject: lf\nFrom: a@example.org\n\nline\n.not end\r\n.\r\n",
			want: "250 ",
			raw:  "Subject: lf\nFrom: a@example.org\n\nline\n.not end\r\n",
		},
		{
			// RFC 5321 section 4.1.1.4: only CRLF.CRLF ends the data; a
			// bare-LF dot line is content (no SMTP smuggling).
			name: "bare LF dot",
			data: "Subject: s\r\n\r\na\n.\nMAIL FROM:<x@example.org>\r\n.\r\n",
			want: "250 ",
			raw:  "Subject: s\r\n\r\na\n.\nMAIL FROM:<x@example.org>\r\n",
		},
		{
			name: "NUL bytes",
			data: "Subject: n\x00ul\r\n\r\nbo\x00dy\r\n.\r\n",
			want: "250 ",
			raw:  "Subject: n\x00ul\r\n\r\nbo\x00dy\r\n",
		},
		{
			name: "8-bit headers",
			data: "Subject: Grüße \xff\xfe\r\nFrom: Jürgen <j@example.org>\r\n\r\nbody\r\n.\r\n",
			want: "250 ",
			raw:  "Subject: Grüße \xff\xfe\r\nFrom: Jürgen <j@example.org>\r\n\r\nbody\r\n",
		},
		{
			name: "no Message-ID",
			data: "From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n.\r\n",
			want: "250 ",
			raw:  "From: a@example.org\r\nSubject: x\r\n\r\nbody\r\n",
		},
		{
			name: "header only",
			data: "Subject: only a header\r\n.\r\n",
			want: "250 ",
			raw:  "Subject: only a header\r\n",
		},
		{
			name: "dot stuffing",
			data: "Subject: d\r\n\r\n..leading dot\r\n...\r\n.\r\n",
			want: "250 ",
			raw:  "Subject: d\r\n\r\n.leading dot\r\n..\r\n",
		},
		{
			name: "line too long",
			data: "Subject: " + strings.Repeat("y", 70<<10) + "\r\n.\r\n",
			want: "500 5.6.0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDeliverer{}
			_, addr := start(t, d, nil)
			c := dialRaw(t, addr)
			c.hello()
			c.cmd("MAIL FROM:<a@example.org>", "250 ")
			c.cmd("RCPT TO:<demo@localhost>", "250 ")
			c.cmd("DATA", "354 ")
			c.send(tc.data)
			c.expect(tc.want)
			got := d.deliveries()
			if !strings.HasPrefix(tc.want, "250") {
				if len(got) != 0 {
					t.Fatalf("delivered %q after %s", got, tc.want)
				}
				return
			}
			if len(got) != 1 || got[0].raw != tc.raw {
				t.Fatalf("delivered %q, want %q", got, tc.raw)
			}
			c.cmd("NOOP", "250 ")
		})
	}
}

// TestGarbageAfterData pipelines junk behind the final dot: the message is
// still accepted, each junk line gets a 5xx, and after too many errors the
// server says so and hangs up.
func TestGarbageAfterData(t *testing.T) {
	d := &fakeDeliverer{}
	_, addr := start(t, d, nil)
	c := dialRaw(t, addr)
	c.hello()
	c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\nDATA\r\n")
	c.expect("250 ")
	c.expect("250 ")
	c.expect("354 ")
	c.send("Subject: g\r\n\r\nbody\r\n.\r\n\x00\xff garbage\r\nXYZZ\r\n\r\nHELO\r\n" + strings.Repeat("junk\r\n", 5))
	c.expect("250 ")
	c.expect("501 ") // "\x00\xff garbage"
	c.expect("500 ") // XYZZ
	c.expect("500 ") // empty line
	c.expect("501 ") // HELO without domain
	c.expect("500 ") // junk: the fourth protocol error
	c.expect("500 5.5.1 Too many errors")
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("connection still open after too many errors")
	}
	if got := d.deliveries(); len(got) != 1 || got[0].raw != "Subject: g\r\n\r\nbody\r\n" {
		t.Fatalf("delivered %q", got)
	}
}

// TestCommandErrors: commands out of order or malformed are refused, and
// the session goes on.
func TestCommandErrors(t *testing.T) {
	d := &fakeDeliverer{}
	_, addr := start(t, d, nil)
	c := dialRaw(t, addr)
	c.expect("220 ")
	c.cmd("MAIL FROM:<a@example.org>", "502 ")
	c.cmd("EHLO test.example", "250 ")
	c.cmd("DATA", "502 ")
	c.cmd("RCPT TO:<demo@localhost>", "502 ")
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<nobody@localhost>", "550 5.1.1")
	c.cmd("DATA", "502 ")
	c.cmd("RSET", "250 ")
	c.cmd("QUIT", "221 ")
	if len(d.deliveries()) != 0 {
		t.Fatal("delivered something")
	}
}

// TestNetworks: a client outside the allowed networks gets 554 instead of
// the greeting.
func TestNetworks(t *testing.T) {
	d := &fakeDeliverer{}
	_, addr := start(t, d, &Options{Networks: mustPrefixes(t, "10.0.0.0/8")})
	c := dialRaw(t, addr)
	c.expect("554 5.7.1")
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("connection still open after 554")
	}
}

func TestDefaultNetworksLoopback(t *testing.T) {
	s := New(&fakeDeliverer{}, nil)
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:25", true},
		{"127.1.2.3:25", true},
		{"[::1]:25", true},
		{"[::ffff:127.0.0.1]:25", true},
		{"192.0.2.1:25", false},
		{"[2001:db8::1]:25", false},
	} {
		if got := s.allowed(tcpAddr(tc.addr)); got != tc.want {
			t.Errorf("allowed(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// TestBDAT: CHUNKING (RFC 3030), which go-smtp always offers, delivers the
// chunks byte for byte, and a chunk over the size limit gets 552.
func TestBDAT(t *testing.T) {
	d := &fakeDeliverer{}
	_, addr := start(t, d, &Options{MaxSize: 100})
	c := dialRaw(t, addr)
	c.hello()
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@localhost>", "250 ")
	c.send("BDAT 12\r\nSubject: b\r\n")
	c.expect("250 ")
	c.send("BDAT 8 LAST\r\n\r\n.body\n")
	c.expect("250 ")
	if got := d.deliveries(); len(got) != 1 || got[0].raw != "Subject: b\r\n\r\n.body\n" {
		t.Fatalf("delivered %q", got)
	}
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@localhost>", "250 ")
	c.send("BDAT 200 LAST\r\n" + strings.Repeat("x", 200))
	c.expect("552 5.3.4")
	c.cmd("NOOP", "250 ")
	// RSET between chunks drops the transaction and keeps the session.
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@localhost>", "250 ")
	c.send("BDAT 3\r\nabc")
	c.expect("250 ")
	c.cmd("RSET", "250 ")
	c.cmd("NOOP", "250 ")
	c.cmd("DATA", "502 ")
	if n := len(d.deliveries()); n != 1 {
		t.Fatalf("%d deliveries, want 1", n)
	}
}

// TestDataTimeout: a client that stalls in DATA gets 421 and is
// disconnected; what it sends later is never read as commands.
func TestDataTimeout(t *testing.T) {
	d := &fakeDeliverer{}
	_, addr := start(t, d, &Options{DataTimeout: 300 * time.Millisecond})
	c := dialRaw(t, addr)
	c.hello()
	c.cmd("MAIL FROM:<a@example.org>", "250 ")
	c.cmd("RCPT TO:<demo@localhost>", "250 ")
	c.cmd("DATA", "354 ")
	c.send("Subject: slow\r\n\r\npart")
	c.expect("421 4.4.2")
	if _, err := c.r.ReadByte(); err == nil {
		t.Fatal("connection still open after 421")
	}
	if n := len(d.deliveries()); n != 0 {
		t.Fatalf("%d deliveries of a broken message, want 0", n)
	}
}
