package message

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
)

// MboxFormat is how ">From " quoting was done in an mbox file.
type MboxFormat int

const (
	// MboxRD is mboxrd: every line matching ^>*From got one more '>'.
	// Reading removes one '>' from every line matching ^>+From .
	MboxRD MboxFormat = iota
	// MboxO is mboxo: only lines matching ^From got a '>'. Reading
	// removes the '>' of every line matching ^>From (as public-inbox
	// does; mboxo quoting cannot be reversed exactly).
	MboxO
	// MboxCL is mboxcl: every message has a Content-Length header giving
	// the length of its body, and body lines matching ^From got a '>'.
	MboxCL
)

// String returns the format's usual name ("mboxrd", "mboxo", "mboxcl").
func (f MboxFormat) String() string {
	switch f {
	case MboxRD:
		return "mboxrd"
	case MboxO:
		return "mboxo"
	case MboxCL:
		return "mboxcl"
	}
	return "MboxFormat(" + strconv.Itoa(int(f)) + ")"
}

// mboxFromLine is public-inbox's $from_strict (PublicInbox::MboxReader,
// public-inbox 1.9), applied to one line including its "\n". Perl's \s, on
// the byte strings MboxReader handles, is [\t\n\v\f\r ] (checked against
// perl 5.36: \v and \f count as space, 0x85 and 0xA0 do not); RE2's \s lacks
// \v, hence the explicit classes. No part of the pattern can match "\n", so a
// match never crosses a line and whether a line is a separator does not
// depend on anything around it.
var mboxFromLine = regexp.MustCompile(
	`^From [^\t\n\v\f\r ]+ +[^\t\n\v\f\r ]+ [^\t\n\v\f\r ]+ +[^\t\n\v\f\r ]+ [^\n:]+:[^\n:]+:[^\n:]+ [^\n:]+\n$`)

// isMboxFromLine reports whether line (which must include its trailing
// "\n", if any) separates two messages.
func isMboxFromLine(line []byte) bool {
	return bytes.HasPrefix(line, []byte("From ")) && mboxFromLine.Match(line)
}

// mboxReadBuf is the size of the bufio buffer; longer lines are read in pieces.
const mboxReadBuf = 64 << 10

// ReadMbox calls fn for each message of an mbox stream in order. msg is the
// message's bytes exactly as they were before mbox quoting (the "From "
// separator line is not part of the message; the blank line mbox adds after
// each message is not either). fn may not keep msg after returning (its
// buffer is reused). Malformed input never panics; an I/O error or fn's
// error stops it, and is returned (fn's unwrapped). Line endings are kept as
// they are: CRLF files give CRLF messages.
//
// MboxRD and MboxO split exactly as public-inbox 1.9's
// PublicInbox::MboxReader does (what public-inbox-import and import_mbox
// use):
//
//   - a separator is a whole line matching public-inbox's strict pattern
//     ("From " sender, then a date with three ':'-separated fields); a
//     looser "From " line stays in the message;
//   - the text before the first separator is a message too when it holds
//     anything but spaces, tabs, CRs and LFs; so is every other piece: a
//     piece of only such bytes is skipped;
//   - a piece ending in a line ending preceded by "\n" loses that last line
//     ending (the blank line mbox puts after a message, "\n" or "\r\n");
//   - then one '>' is removed from every line matching ^>+From (MboxRD) or
//     ^>From (MboxO).
//
// One deliberate difference: public-inbox's Eml parser then drops a message
// whose first line exceeds 100 KB and that has no blank line, and truncates
// headers over 100 KB; ReadMbox passes such messages on whole.
func ReadMbox(r io.Reader, format MboxFormat, fn func(msg []byte) error) error {
	switch format {
	case MboxRD, MboxO:
		return readMboxFrom(r, format, fn)
	case MboxCL:
		return readMboxCL(r, fn)
	}
	return fmt.Errorf("message: read mbox: unknown format %d", int(format))
}

// readMboxFrom implements MboxRD and MboxO (public-inbox's _mbox_from).
func readMboxFrom(r io.Reader, format MboxFormat, fn func(msg []byte) error) error {
	br := bufio.NewReaderSize(r, mboxReadBuf)
	var msg []byte
	for {
		start := len(msg)
		var err error
		msg, err = appendLine(br, msg)
		if err != nil && err != io.EOF {
			return fmt.Errorf("message: read mbox: %w", err)
		}
		line := msg[start:]
		if isMboxFromLine(line) {
			if e := emitMboxPiece(msg[:start], fn); e != nil {
				return e
			}
			msg = msg[:0]
		} else if unquote(line, format) {
			copy(line, line[1:])
			msg = msg[:len(msg)-1]
		}
		if err == io.EOF {
			return emitMboxPiece(msg, fn)
		}
	}
}

// appendLine appends the next line of br, "\n" included, to buf. At the end
// of the stream it returns io.EOF with whatever was left (maybe nothing).
func appendLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		frag, err := br.ReadSlice('\n')
		buf = append(buf, frag...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return buf, err
	}
}

// unquote reports whether line is a quoted "From " line of format, that is
// whether its first byte, a '>', is to be removed.
func unquote(line []byte, format MboxFormat) bool {
	if len(line) == 0 || line[0] != '>' {
		return false
	}
	rest := line[1:]
	if format == MboxRD {
		rest = bytes.TrimLeft(rest, ">")
	}
	return bytes.HasPrefix(rest, []byte("From "))
}

// emitMboxPiece passes one piece between separators, already unquoted, to
// fn unless it is blank, after removing the blank line mbox adds after a
// message: public-inbox's grep /[^ \t\r\n]/ and s/^\r?\n\z//ms.
func emitMboxPiece(piece []byte, fn func([]byte) error) error {
	if !hasMboxContent(piece) {
		return nil
	}
	if n := len(piece); n >= 2 && piece[n-1] == '\n' {
		if piece[n-2] == '\n' {
			piece = piece[:n-1]
		} else if n >= 3 && piece[n-2] == '\r' && piece[n-3] == '\n' {
			piece = piece[:n-2]
		}
	}
	return fn(piece)
}

// hasMboxContent reports whether b holds a byte other than space, tab, CR
// and LF (public-inbox's test for an empty message).
func hasMboxContent(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
		default:
			return true
		}
	}
	return false
}

// errMboxCL is wrapped by every malformed-mboxcl error.
var errMboxCL = errors.New("message: malformed mboxcl")

// readMboxCL implements MboxCL after public-inbox's mboxcl reader: each
// message is a "From " line (blank lines before it are skipped), a header
// ending at the first blank line, which must hold exactly one
// Content-Length of digits only, and that many bytes of body, in which
// lines beginning ">From " lose their '>'. The message passed to fn is the
// header, its blank line and the body; the From line is not part of it.
// Unlike public-inbox, which reads its header from whatever it buffered,
// the header search here is per message; the results are the same on
// well-formed files.
func readMboxCL(r io.Reader, fn func(msg []byte) error) error {
	br := bufio.NewReaderSize(r, mboxReadBuf)
	var msg []byte
	for n := 1; ; n++ {
		// Skip blank lines, then expect the From line.
		var line []byte
		var err error
		for {
			line, err = appendLine(br, line[:0])
			if err != nil && err != io.EOF {
				return fmt.Errorf("message: read mboxcl: %w", err)
			}
			if len(bytes.Trim(line, "\r\n")) != 0 || err == io.EOF {
				break
			}
		}
		if !hasMboxContent(line) && err == io.EOF {
			return nil
		}
		if !bytes.HasPrefix(bytes.TrimLeft(line, "\r\n"), []byte("From ")) {
			return fmt.Errorf("%w: message %d: no From line", errMboxCL, n)
		}
		if err == io.EOF {
			return fmt.Errorf("%w: message %d: no header", errMboxCL, n)
		}
		// The header, up to and including its blank line.
		msg = msg[:0]
		for {
			start := len(msg)
			msg, err = appendLine(br, msg)
			if err != nil && err != io.EOF {
				return fmt.Errorf("message: read mboxcl: %w", err)
			}
			l := msg[start:]
			if string(l) == "\n" || string(l) == "\r\n" {
				break
			}
			if err == io.EOF {
				return fmt.Errorf("%w: message %d: header not ended by a blank line", errMboxCL, n)
			}
		}
		cl, cerr := contentLength(msg)
		if cerr != nil {
			return fmt.Errorf("%w: message %d: %v", errMboxCL, n, cerr)
		}
		start := len(msg)
		// Read the body in chunks, growing the buffer with the data
		// rather than with the length claimed.
		for int64(len(msg)-start) < cl {
			want := min(cl-int64(len(msg)-start), mboxReadBuf)
			msg = append(msg, make([]byte, want)...)
			got, err := io.ReadFull(br, msg[len(msg)-int(want):])
			if err != nil {
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					short := cl - int64(len(msg)-start) + want - int64(got)
					return fmt.Errorf("%w: message %d: body %d bytes short", errMboxCL, n, short)
				}
				return fmt.Errorf("message: read mboxcl: %w", err)
			}
		}
		body := msg[start:]
		out := unquoteCLBody(body)
		msg = append(msg[:start], out...)
		if err := fn(msg); err != nil {
			return err
		}
	}
}

// unquoteCLBody removes the '>' of every line of body starting ">From "
// (public-inbox's s/^>From /From /sgm), in place.
func unquoteCLBody(body []byte) []byte {
	out := body[:0]
	atStart := true
	for i := 0; i < len(body); i++ {
		c := body[i]
		if atStart && c == '>' && bytes.HasPrefix(body[i+1:], []byte("From ")) {
			atStart = false
			continue
		}
		out = append(out, c)
		atStart = c == '\n'
	}
	return out
}

// contentLength returns the value of the single Content-Length field of
// header, which must be made of digits only.
func contentLength(header []byte) (int64, error) {
	var vals [][]byte
	for rest := header; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok || !bytes.EqualFold(name, []byte("Content-Length")) {
			continue
		}
		vals = append(vals, bytes.TrimSpace(val))
	}
	switch len(vals) {
	case 0:
		return 0, errors.New("no Content-Length")
	case 1:
	default:
		return 0, fmt.Errorf("%d Content-Length fields", len(vals))
	}
	v := vals[0]
	if len(v) == 0 || len(v) > 18 {
		return 0, fmt.Errorf("invalid Content-Length %q", v)
	}
	var cl int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("invalid Content-Length %q", v)
		}
		cl = cl*10 + int64(c-'0')
	}
	return cl, nil
}
