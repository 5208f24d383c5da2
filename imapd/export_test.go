package imapd

// FetchCacheLen reports how many messages the parsed-structure cache holds.
func FetchCacheLen(s *Server) int {
	c := s.fetchCache
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.old)
}
