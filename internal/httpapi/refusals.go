package httpapi

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
)

// Refused requests (401 without a principal, every 429) are audited as
// per-minute counts by a refusal.Counter, not one event each.

// flushRefusals writes the refusal counts (all of them when all is set).
func (s *Server) flushRefusals(ctx context.Context, all bool) {
	s.deps.Refusals.Flush(ctx, s.deps.Casework, s.log, all)
}

// refused reports whether a finished request is one audited as a count:
// every 429, and a 401 of a request that named no one (no principal, no
// login name). It records it if so.
func (s *Server) refused(c *gin.Context, code int) bool {
	if code != http.StatusTooManyRequests && code != http.StatusUnauthorized {
		return false
	}
	actor, role := "anonymous", "anonymous"
	if p, ok := principal(c); ok {
		actor, role = p.Actor(), string(p.Role)
	} else if code == http.StatusUnauthorized && c.GetString(ctxActor) != "" {
		return false // a failed sign-in names the account: its own event (and its own limits)
	}
	s.deps.Refusals.Add(actor, role, c.ClientIP(), "http.refused", code)
	return true
}

// limitAddresses refuses, before any credential is looked up, a client
// address that has recently failed authentication too often; each failure
// (401) takes a token of its address's bucket. Authenticated traffic from
// the address takes none, so colleagues behind one NAT are not limited by
// their own successful requests.
func (s *Server) limitAddresses(c *gin.Context) {
	addr := c.ClientIP()
	if err := s.unauthenticated.Check(addr); err != nil {
		s.fail(c, err)
		return
	}
	c.Next()
	if c.Writer.Status() == http.StatusUnauthorized {
		_ = s.unauthenticated.Allow(addr)
	}
}
