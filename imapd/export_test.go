package imapd

// SearchReads is how many messages SEARCH has read so far.
func (s *Server) SearchReads() int64 { return s.searchReads.Load() }

// Sessions is how many sessions are open (Close not yet called).
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}
