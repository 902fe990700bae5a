package smtpin

import "testing"

func TestMessageID(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"Message-ID: <a@b>\r\n\r\nbody", "<a@b>"},
		{"Subject: x\nmessage-id:   <c@d>  \n\n", "<c@d>"},
		{"Message-ID:\r\n <folded@x>\r\n\r\n", "<folded@x>"},
		{"Subject: x\r\n\r\nMessage-ID: <in@body>\r\n", ""},
		{"", ""},
		{"Message-ID", ""},
	} {
		if got := messageID([]byte(tc.raw)); got != tc.want {
			t.Errorf("messageID(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
