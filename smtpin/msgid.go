package smtpin

import (
	"bytes"
)

// messageID returns the Message-ID header's value for logging, or "" if the
// header section (RFC 5322 section 2.1) has none. It reads at most the first
// 64 KiB and never fails: the message is stored as received either way.
func messageID(raw []byte) string {
	if len(raw) > 64<<10 {
		raw = raw[:64<<10]
	}
	const name = "message-id:"
	for len(raw) > 0 {
		line, rest, _ := bytes.Cut(raw, []byte("\n"))
		raw = rest
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return "" // end of the header section
		}
		if len(line) < len(name) || !bytes.EqualFold(line[:len(name)], []byte(name)) {
			continue
		}
		v := line[len(name):]
		// One folded continuation line is enough for any real Message-ID.
		if next, _, _ := bytes.Cut(raw, []byte("\n")); len(next) > 0 && (next[0] == ' ' || next[0] == '\t') {
			v = append(append([]byte(nil), v...), bytes.TrimSuffix(next, []byte("\r"))...)
		}
		v = bytes.TrimSpace(v)
		if len(v) > 200 {
			v = v[:200]
		}
		return string(v)
	}
	return ""
}
