package message

import (
	"bytes"
	"fmt"
	"io"
)

// defaultMboxFromLine is the separator MboxWriter writes when no From line
// is given: the one public-inbox, lore.kernel.org and b4 use in mboxrd.
const defaultMboxFromLine = "From mboxrd@z Thu Jan  1 00:00:00 1970"

// MboxWriter writes messages as mboxrd: for each message a "From " line,
// the message with every line matching ^>*From given one more '>', a line
// ending added if the message does not end with one, then one blank line.
// ReadMbox(MboxRD) gives back exactly the messages written (with that line
// ending added where it was missing), CRLF messages included.
//
// Separator lines and the blank line after each message are always "\n",
// also around CRLF messages: that is what public-inbox and mutt write, and
// ReadMbox (like public-inbox's reader) removes either "\n" or "\r\n" as the
// blank line, so both read back the same. The quoting rule is the same for
// CRLF messages: lines are what ends in "\n".
//
// Each Write makes one call to the underlying writer (nothing is buffered
// between calls, so there is nothing to flush). An MboxWriter is not safe
// for concurrent use.
type MboxWriter struct {
	w   io.Writer
	buf []byte // the message being written, reused
	err error
}

// NewMboxWriter returns an MboxWriter writing to w.
func NewMboxWriter(w io.Writer) *MboxWriter {
	return &MboxWriter{w: w}
}

// Write appends msg, preceded by fromLine ("" for defaultMboxFromLine). A
// given fromLine, with or without its "\n", must be a line ReadMbox takes
// for a separator ("From sender Www Mmm dd hh:mm:ss yyyy"), or the file
// would not read back: Write refuses any other. It also refuses a message
// of only spaces, tabs, CRs and LFs, which readers skip. msg is not kept. After a
// write error every later call returns that error.
func (w *MboxWriter) Write(msg []byte, fromLine string) error {
	if w.err != nil {
		return w.err
	}
	if fromLine == "" {
		fromLine = defaultMboxFromLine
	}
	line := []byte(fromLine)
	if !bytes.HasSuffix(line, []byte("\n")) {
		line = append(line, '\n')
	}
	if !hasMboxContent(msg) {
		return fmt.Errorf("message: mbox write: empty message")
	}
	if !isMboxFromLine(line) {
		return fmt.Errorf("message: mbox write: invalid From line %q", fromLine)
	}
	b := append(w.buf[:0], line...)
	for rest := msg; len(rest) > 0; {
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i+1], rest[i+1:]
		} else {
			rest = nil
		}
		if bytes.HasPrefix(bytes.TrimLeft(l, ">"), []byte("From ")) {
			b = append(b, '>')
		}
		b = append(b, l...)
	}
	if len(msg) > 0 && msg[len(msg)-1] != '\n' {
		b = append(b, missingEOL(msg)...)
	}
	b = append(b, '\n')
	if len(b) <= 1<<20 {
		w.buf = b // keep a buffer of ordinary size for the next message
	}
	if _, err := w.w.Write(b); err != nil {
		w.err = fmt.Errorf("message: mbox write: %w", err)
	}
	return w.err
}

// missingEOL is the line ending Write adds to a message that does not end in
// "\n": "\n" after a '\r' or in a message whose first line ends in "\n",
// "\r\n" in a message whose first line ends in "\r\n".
func missingEOL(msg []byte) []byte {
	if msg[len(msg)-1] != '\r' {
		if i := bytes.IndexByte(msg, '\n'); i > 0 && msg[i-1] == '\r' {
			return []byte("\r\n")
		}
	}
	return []byte{'\n'}
}
