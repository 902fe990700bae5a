package smtpin

import (
	"crypto/sha256"
	"crypto/subtle"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// RFC 4954 section 6: 530 5.7.0 Authentication required.
var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

// authRequired reports whether MAIL must wait for AUTH: whenever users are
// configured.
func (ss *session) authRequired() bool {
	return len(ss.s.opts.Users) > 0 && ss.user == ""
}

// AuthMechanisms offers PLAIN when users are configured. go-smtp offers it
// only under TLS (RFC 4954 section 4: no plain-text passwords in clear).
func (ss *session) AuthMechanisms() []string {
	if len(ss.s.opts.Users) == 0 {
		return nil
	}
	return []string{sasl.Plain}
}

// Auth checks a PLAIN login (RFC 4616) against Options.Users.
func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || len(ss.s.opts.Users) == 0 {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if identity != "" && identity != user {
			ss.log.Warn("auth failed", "user", user, "reason", "authorization identity differs")
			return smtp.ErrAuthFailed
		}
		want, ok := ss.s.opts.Users[user]
		// Compare digests so the time taken says nothing about lengths.
		a, b := sha256.Sum256([]byte(pass)), sha256.Sum256([]byte(want))
		if subtle.ConstantTimeCompare(a[:], b[:]) != 1 || !ok {
			ss.log.Warn("auth failed", "user", user)
			return smtp.ErrAuthFailed
		}
		ss.user = user
		ss.log = ss.log.With("user", user)
		ss.log.Info("authenticated")
		return nil
	}), nil
}
