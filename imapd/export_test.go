package imapd

// SetCompare replaces the bcrypt check of s's logins, so that a test can
// see which hashes a login was checked against (and that it was).
func SetCompare(s *Server, f func(hash, password []byte) error) { s.compare = f }
