package message

import (
	"bytes"
	"testing"
)

// mboxEdgeInputs are mbox texts that exercise the splitting rules: the inputs
// of TestReadMbox (MboxRD ones) and a few more.
func mboxEdgeInputs() []string {
	var ins []string
	for _, tc := range readMboxCases() {
		if tc.format == MboxRD {
			ins = append(ins, tc.in)
		}
	}
	return append(ins,
		"From a b c d 1:2:3 4\n\n\nFrom a b c d 1:2:3 4\nx\n\r\n",
		"\n\nFrom a  b c  d e:f:g h\r\n>>From \r\nX: y\r\n\r\n\r\n",
		"From a b c d 1:2:3 4\nFrom a b c d 1:2:3 4\nFrom a b c d 1:2:3 4\n",
		"\r\n\r\nFrom a b c d 1:2:3 4\r\n\r\n\r\n",
		"x\nFrom a b\tc d 1:2:3 4\ny\n",
		"From a b c d :: \n",
		"From a b c d x:y:z w\n\x00\n\n",
	)
}

// FuzzMbox checks that ReadMbox never panics or fails on any bytes, in any
// format, and that the messages MboxRD yields survive MboxWriter and a
// second read unchanged (but for a line ending added to a message that had
// none), twice over.
func FuzzMbox(f *testing.F) {
	for _, in := range mboxEdgeInputs() {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []MboxFormat{MboxO, MboxCL} {
			// MboxCL returns errors on malformed input; no panic is
			// all that is asked.
			_ = ReadMbox(bytes.NewReader(data), format, func(msg []byte) error {
				if len(msg) > len(data) {
					t.Fatalf("%v message longer than its input", format)
				}
				return nil
			})
		}
		msgs := mboxReadAll(t, bytes.NewReader(data), MboxRD)
		for _, m := range msgs {
			if !hasMboxContent(m) {
				t.Fatalf("blank message %q", m)
			}
		}
		want := make([][]byte, len(msgs))
		for i, m := range msgs {
			want[i] = m
			if !bytes.HasSuffix(m, []byte("\n")) {
				want[i] = append(bytes.Clone(m), missingEOL(m)...)
			}
		}
		got := msgs
		for pass := 1; pass <= 2; pass++ {
			var buf bytes.Buffer
			w := NewMboxWriter(&buf)
			for _, m := range got {
				if err := w.Write(m, ""); err != nil {
					t.Fatalf("pass %d: Write(%q): %v", pass, m, err)
				}
			}
			got = mboxReadAll(t, &buf, MboxRD)
			if len(got) != len(want) {
				t.Fatalf("pass %d: %d messages after round trip, want %d\nin: %q\nmbox: %q",
					pass, len(got), len(want), data, buf.Bytes())
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("pass %d: message %d = %q after round trip, want %q", pass, i, got[i], want[i])
				}
			}
		}
	})
}
