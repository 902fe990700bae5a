package imapd

// SetCompare replaces the bcrypt check of s's logins, so that a test can
// see which hashes a login was checked against (and that it was).
func SetCompare(s *Server, f func(hash, password []byte) error) { s.compare = f }

// SearchReads is how many messages SEARCH has read so far.
func (s *Server) SearchReads() int64 { return s.searchReads.Load() }

// Sessions is how many sessions are open (Close not yet called).
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
