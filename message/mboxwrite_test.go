package message

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestMboxWriter(t *testing.T) {
	tests := []struct {
		name, msg, from, want string
	}{
		{"default From line", "A: 1\n\nx\n", "", mboxSep + "A: 1\n\nx\n\n"},
		{"given From line", "A: 1\n\nx\n", "From a@b  Wed Jul  1 13:17:17 1998",
			"From a@b  Wed Jul  1 13:17:17 1998\nA: 1\n\nx\n\n"},
		{"given From line with newline", "A: 1\n", "From a@b Wed Jul  1 13:17:17 1998\n",
			"From a@b Wed Jul  1 13:17:17 1998\nA: 1\n\n"},
		{"quoting", "A: 1\n\nFrom x\n>From y\n>>From z\nFrom: not\n> From not\nFromage\n",
			"", mboxSep + "A: 1\n\n>From x\n>>From y\n>>>From z\nFrom: not\n> From not\nFromage\n\n"},
		{"quoting first and last line", "From x\nA: 1\n>From y", "", mboxSep + ">From x\nA: 1\n>>From y\n\n"},
		{"missing newline", "A: 1\n\nx", "", mboxSep + "A: 1\n\nx\n\n"},
		{"crlf", "A: 1\r\n\r\nFrom x\r\n", "", mboxSep + "A: 1\r\n\r\n>From x\r\n\n"},
		{"crlf missing newline", "A: 1\r\n\r\nx", "", mboxSep + "A: 1\r\n\r\nx\r\n\n"},
		{"ends in cr", "A: 1\r\n\r\nx\r", "", mboxSep + "A: 1\r\n\r\nx\r\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := NewMboxWriter(&buf).Write([]byte(tc.msg), tc.from); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want {
				t.Errorf("Write(%q, %q) wrote %q, want %q", tc.msg, tc.from, buf.String(), tc.want)
			}
			got := mboxReadAll(t, &buf, MboxRD)
			want := tc.msg
			if !strings.HasSuffix(want, "\n") {
				want += string(missingEOL([]byte(want)))
			}
			if len(got) != 1 || string(got[0]) != want {
				t.Errorf("read back %q, want [%q]", got, want)
			}
		})
	}
}

func TestMboxWriterRefuses(t *testing.T) {
	var buf bytes.Buffer
	w := NewMboxWriter(&buf)
	for _, from := range []string{"From x", "From: a@b Thu Jan  1 00:00:00 1970", "X Thu Jan  1 00:00:00 1970",
		"From a@b Thu Jan  1 00:00:00 1970\nA: 1"} {
		if err := w.Write([]byte("A: 1\n"), from); err == nil {
			t.Errorf("Write with From line %q = nil, want an error", from)
		}
	}
	for _, msg := range []string{"", "\n", " \r\n\t"} {
		if err := w.Write([]byte(msg), ""); err == nil {
			t.Errorf("Write(%q) = nil, want an error", msg)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("refused writes wrote %q", buf.String())
	}
}

// mboxFailWriter fails every write after the first.
type mboxFailWriter struct{ n int }

var errMboxFail = errors.New("disk full")

func (f *mboxFailWriter) Write(p []byte) (int, error) {
	f.n++
	if f.n > 1 {
		return 0, errMboxFail
	}
	return len(p), nil
}

func TestMboxWriterError(t *testing.T) {
	w := NewMboxWriter(&mboxFailWriter{})
	if err := w.Write([]byte("A: 1\n"), ""); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := w.Write([]byte("A: 2\n"), ""); !errors.Is(err, errMboxFail) {
			t.Errorf("Write after failure = %v, want %v", err, errMboxFail)
		}
	}
}
