// Package smtpin accepts list posts over SMTP (RFC 5321) and LMTP (RFC 2033)
// and hands each one to a Deliverer (in production, archive). go-smtp is used
// only here and none of its types leave the package.
//
// A 250 is a promise: it is sent only once Deliver has returned nil, which
// means the message is durable. Storage trouble is a 451 with generic text;
// the real error is logged once, here, at the edge. The replies:
//
//	unknown recipient                 550 5.1.1
//	postmaster, none configured       550 5.1.1 (Options.Postmaster)
//	message over Options.MaxSize      552 5.3.4 (connection stays usable)
//	line over Options.MaxLineLength   500 5.6.0
//	Deliver error, temporary/unknown  451 4.3.0
//	Deliver error, rejected           554 5.6.0
//	DATA/BDAT timed out or broke off  421 4.4.2, then the connection closes
//	client outside Options.Networks   554 5.7.1 instead of the greeting
//	MAIL before AUTH (Users set)      530 5.7.0
//	shutting down                     421 4.3.2, then the connection closes
//
// Each list is delivered once per message however many of its addresses
// are recipients; over LMTP every recipient still gets its own reply. The
// message reaches the Deliverer exactly as sent, dot-unstuffed, bare LFs,
// NULs and 8-bit bytes included; a message whose bytes did not all arrive
// (the client went away inside DATA or a BDAT chunk) never reaches it.
// go-smtp v0.26.0 is carried under third_party/go-smtp with the fixes that
// needs (a BDAT chunk cut short, the CR after a stuffing dot; MAILSWARM.md
// there).
//
// smtpin imports nothing of ours: the Deliverer interface is its only tie
// to the archive, and it keeps nothing on disk (a message is durable once
// Deliver returns, in the archive's spool). Only cmd/mailswarm imports
// smtpin; it fills Options from the config.
package smtpin
