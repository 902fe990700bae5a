package peertest

import (
	"fmt"
	"strings"
	"testing"
)

func TestIMAPParseValue(t *testing.T) {
	tests := []struct {
		in, canon, rest string
		kind            IMAPKind
	}{
		{`NIL`, `NIL`, ``, IMAPNil},
		{`nil rest`, `NIL`, ` rest`, IMAPNil},
		{`  42)`, `42`, `)`, IMAPNumber},
		{`18446744073709551616`, `18446744073709551616`, ``, IMAPAtom}, // too big: an atom
		{`"a \"b\" \\c"`, `"a \"b\" \\c"`, ``, IMAPString},
		{`""`, `""`, ``, IMAPString},
		{"{5}\r\nab\"\\c tail", `"ab\"\\c"`, ` tail`, IMAPString},
		{"{0}\r\n", `""`, ``, IMAPString},
		{"~{3}\r\n\x00\x01\xff", `"\x00\x01\xff"`, ``, IMAPString},
		{"{2+}\r\n\r\n", `"\x0d\x0a"`, ``, IMAPString},
		{`(1 "x" NIL (a b) ())`, `(1 "x" NIL (a b) ())`, ``, IMAPList},
		{`(  1   2 )x`, `(1 2)`, `x`, IMAPList},
		{`\Seen)`, `\Seen`, `)`, IMAPAtom},
		{`BODY[HEADER.FIELDS (FROM TO)] {1}`, `BODY[HEADER.FIELDS (FROM TO)]`, ` {1}`, IMAPAtom},
		{"(\"a\" {3}\r\nb c NIL)", `("a" "b c" NIL)`, ``, IMAPList},
	}
	for _, tt := range tests {
		v, rest, err := ParseIMAPValue([]byte(tt.in))
		if err != nil {
			t.Errorf("ParseIMAPValue(%q): %v", tt.in, err)
			continue
		}
		if got := Canon(v); got != tt.canon || string(rest) != tt.rest || v.Kind != tt.kind {
			t.Errorf("ParseIMAPValue(%q) = %s kind %d rest %q, want %s kind %d rest %q",
				tt.in, got, v.Kind, rest, tt.canon, tt.kind, tt.rest)
		}
	}
}

func TestIMAPParseValueErrors(t *testing.T) {
	for _, in := range []string{
		``, ` `, `)`, `(`, `(a b`, `"abc`, `"a\`, "\"a\r\nb\"", `{`, `{3}`, "{3}\r\nab",
		`{x}` + "\r\n", `{-1}` + "\r\n", `{+1}` + "\r\n", "{1}ab", "~{", "\x01",
		strings.Repeat("(", maxIMAPDepth+1) + strings.Repeat(")", maxIMAPDepth+1),
	} {
		if v, _, err := ParseIMAPValue([]byte(in)); err == nil {
			t.Errorf("ParseIMAPValue(%q) = %s, want an error", in, Canon(v))
		}
	}
}

func TestIMAPFetchItems(t *testing.T) {
	r := IMAPResp{Raw: []byte("12 FETCH (UID 7 envelope (NIL {3}\r\nS\"j NIL NIL NIL NIL NIL NIL NIL NIL) FLAGS (\\Seen))")}
	seq, items, ok := FetchResp(r)
	if !ok || seq != 12 {
		t.Fatalf("FetchResp = %d, %v, %v", seq, items, ok)
	}
	for k, want := range map[string]string{
		"UID":      `7`,
		"ENVELOPE": `(NIL "S\"j" NIL NIL NIL NIL NIL NIL NIL NIL)`,
		"FLAGS":    `(\Seen)`,
	} {
		if got := Canon(items[k]); got != want {
			t.Errorf("item %s = %s, want %s", k, got, want)
		}
	}
	for _, raw := range []string{"3 EXISTS", "OK [ALERT] x", "1 FETCH (UID)", "1 FETCH UID 2", "x FETCH (UID 1)"} {
		if items := FetchItems(IMAPResp{Raw: []byte(raw)}); items != nil {
			t.Errorf("FetchItems(%q) = %v, want nil", raw, items)
		}
	}
}

func TestIMAPLiteralAtEnd(t *testing.T) {
	for in, want := range map[string]int64{
		"* 1 FETCH (BODY[] {12}": 12, "x ~{0}": 0, "{7+}": 7,
		"a}": -1, "\"{3}\"": -1, "{}": -1, "{+3}": -1, "{3a}": -1,
	} {
		n, ok := literalAtEnd([]byte(in))
		if !ok {
			n = -1
		}
		if n != want {
			t.Errorf("literalAtEnd(%q) = %d, want %d", in, n, want)
		}
	}
}

// TestIMAPDovecot loads three messages into a private Dovecot and reads
// them back through IMAPConn: the order of the messages, literals in
// responses (BODY[] always comes as one) and a failing command.
func TestIMAPDovecot(t *testing.T) {
	var msgs [][]byte
	for i := 1; i <= 3; i++ {
		msgs = append(msgs, []byte(fmt.Sprintf("Subject: message %d\nMessage-ID: <%d@example.org>\n\nbody %d\n", i, i, i)))
	}
	port := DovecotStart(t, msgs)
	c := IMAPDial(t, fmt.Sprintf("127.0.0.1:%d", port))
	if _, status, err := c.Cmd("LOGIN bench wrong"); err == nil {
		t.Errorf("LOGIN with a wrong password: %s, want an error", status)
	}
	c.Login(DovecotUser, DovecotPass)
	if _, _, err := c.Cmd("SELECT INBOX"); err != nil {
		t.Fatal(err)
	}
	resps, _, err := c.Cmd("FETCH 1:* (BODY.PEEK[] ENVELOPE)")
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, r := range resps {
		seq, items, ok := FetchResp(r)
		if !ok {
			continue
		}
		n++
		want := strings.ReplaceAll(string(msgs[seq-1]), "\n", "\r\n")
		if got := items["BODY[]"].Str; got != want {
			t.Errorf("message %d: BODY[] = %q, want %q", seq, got, want)
		}
		env := items["ENVELOPE"]
		if len(env.List) != 10 || env.List[1].Str != fmt.Sprintf("message %d", seq) {
			t.Errorf("message %d: ENVELOPE = %s", seq, Canon(env))
		}
	}
	if n != 3 {
		t.Errorf("%d FETCH responses, want 3", n)
	}
	c.Close()
}

func FuzzParseIMAPValue(f *testing.F) {
	for _, s := range []string{
		`NIL`, `(1 "a" NIL)`, "{3}\r\nabc", "~{2}\r\n\x00\x01", `BODY[HEADER.FIELDS (A)]`,
		`(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1 NIL NIL NIL NIL) "mixed")`,
		"{99999999999999999999}\r\n", `"\`, `(((`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, rest, err := ParseIMAPValue(b)
		if err != nil {
			return
		}
		if len(rest) > len(b) {
			t.Fatalf("rest longer than input")
		}
		_ = Canon(v)
		FetchItems(IMAPResp{Raw: b})
	})
}
