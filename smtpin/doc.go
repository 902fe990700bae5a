// Package smtpin accepts list posts over SMTP (RFC 5321) and LMTP (RFC 2033)
// and hands each one to a Deliverer (in production, archive). go-smtp is used
// only here and none of its types leave the package.
//
// A 250 is a promise: it is sent only once Deliver has returned nil, which
// means the message is durable. Storage trouble is a 451 with generic text;
// the real error is logged once, here, at the edge.
//
// Only cmd/mailswarm imports smtpin; it fills Options from the config.
package smtpin
