package auth

import (
	"context"
	"fmt"
)

// PeekSession is Session for requests a page makes on its own (the alert
// poll): it checks the session exactly as Session does, idle timeout
// included, but does not touch it, so a page left open does not keep its
// session alive past the idle timeout.
func (s *Service) PeekSession(ctx context.Context, token string) (Principal, error) {
	if !WellFormed(token, SessionPrefix) {
		return Principal{}, fmt.Errorf("malformed session token: %w", ErrUnauthorized)
	}
	return s.store.PeekSessionPrincipal(ctx, HashToken(token), s.policy.Idle)
}
