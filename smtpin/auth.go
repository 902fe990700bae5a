package smtpin

import (
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"
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
		hash, ok := ss.s.opts.Users[user]
		if !ok {
			// Spend the time of a real check, so timing does not tell
			// which user names exist.
			hash = dummyHash
		}
		if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)); err != nil || !ok {
			ss.log.Warn("auth failed", "user", user)
			return smtp.ErrAuthFailed
		}
		ss.user = user
		ss.log = ss.log.With("user", user)
		ss.log.Info("authenticated")
		return nil
	}), nil
}

// dummyHash is a bcrypt hash of a random password, checked for unknown
// users.
const dummyHash = "$2a$10$wERje3byZrW4xJv5lhTIFeH1STvRNuYf66lbW/t1MGDUeZQohzPI6"

// isBcrypt reports whether h looks like a bcrypt hash ("$2a$", "$2b$",
// "$2y$").
func isBcrypt(h string) bool {
	return len(h) == 60 && (strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$"))
}
