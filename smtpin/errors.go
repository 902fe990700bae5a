package smtpin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/emersion/go-smtp"
)

// Replies. Their text is generic on purpose: details go to the log, never to
// the sender. go-smtp turns any error that is not an *smtp.SMTPError into a
// 554 carrying its text, so every error handed back to go-smtp is one of
// these.
var (
	// RFC 3463 X.1.1: bad destination mailbox address.
	errUnknownRcpt = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such list here"}
	// RFC 5321 section 4.5.1 wants postmaster mail accepted, but all that
	// is accepted here is published: without Options.Postmaster, a
	// polite refusal (X.1.1: no such mailbox) beats a public archive of
	// abuse reports and bounces.
	errNoPostmaster = &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No postmaster mailbox here: this server only archives public mailing lists, and mail to postmaster would be published; write to the list owner instead"}
	// RFC 3463 X.3.0: other or undefined mail system status.
	errTempFail = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Temporary local problem, try again later"}
	// RFC 3463 X.6.0: other or undefined media error.
	errRejected = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Message rejected"}
	// RFC 3463 X.3.2: system not accepting network messages; RFC 5321
	// section 3.8 for 421.
	errShuttingDown = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Service shutting down"}
	// RFC 3463 X.4.2: bad connection. RFC 5321 section 4.5.3.2.6: a
	// server that times out in DATA closes the connection; 421 says so
	// (section 3.8), so nothing after it is read as commands.
	errDataBroken = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2}, Message: "Message transfer timed out or broke off, closing connection"}
	// RFC 5321 section 4.5.3.1.6 ("500 Line too long"); RFC 3463 X.6.0.
	// Retrying cannot help, so it is permanent.
	errLineTooLong = &smtp.SMTPError{Code: 500, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "Line too long"}
)

// dataError maps an error reading DATA to a reply. go-smtp's own replies
// (message too large: 552 5.3.4, RFC 1870 section 6.3) pass through.
func (ss *session) dataError(err error) error {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		ss.log.Info("data refused", "code", se.Code, "reason", se.Message)
		return se
	}
	if errors.Is(err, smtp.ErrDataReset) {
		// RSET or QUIT between BDAT chunks (RFC 3030 section 3): the
		// transaction is dropped, the session goes on.
		ss.log.Info("data aborted by client")
		return errDataBroken
	}
	if errors.Is(err, smtp.ErrTooLongLine) {
		ss.log.Info("data refused", "code", errLineTooLong.Code, "reason", "line too long")
		return errLineTooLong
	}
	ss.log.Warn("data transfer failed", "err", err)
	if ss.c != nil {
		ss.c.hangUp()
	}
	return errDataBroken
}

// deliver hands raw to the Deliverer and maps its outcome to a reply,
// logging the real error once. A panic in the Deliverer is a temporary
// failure: the sender keeps the message and retries.
func (s *Server) deliver(log *slog.Logger, list string, raw []byte) (err error) {
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			log.Error("deliver panicked", "list", list, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = errTempFail
		}
	}()
	err = s.d.Deliver(s.ctx, list, raw)
	switch {
	case err == nil:
		log.Info("delivered", "list", list, "size", len(raw), "took", time.Since(start))
		return nil
	case s.opts.IsRejected != nil && s.opts.IsRejected(err):
		log.Warn("delivery rejected", "list", list, "size", len(raw), "err", err)
		return errRejected
	default:
		// Temporary, unclassified, or our context ended: 451 (docs/DESIGN.md,
		// "Durability order": storage trouble is never a 5xx).
		if !errors.Is(err, context.Canceled) && s.opts.IsTempFail != nil && !s.opts.IsTempFail(err) {
			log.Error("delivery failed (unclassified)", "list", list, "size", len(raw), "err", err)
		} else {
			log.Error("delivery failed", "list", list, "size", len(raw), "err", err)
		}
		return errTempFail
	}
}
