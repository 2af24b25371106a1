package redisstore

// Queued is how many ingests wait in the queue for a sender (for tests).
func (s *Store) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}
