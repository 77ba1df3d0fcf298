package httpapi

import (
	"github.com/gin-gonic/gin"
)

// limitCallers rate-limits every authenticated principal (API keys, sessions,
// kiosks) by identity.
func (s *Server) limitCallers(c *gin.Context) {
	if p, ok := principal(c); ok {
		if err := s.callers.Allow(p.Actor()); err != nil {
			s.fail(c, err)
			return
		}
	}
	c.Next()
}

// securityHeaders are set on every API and operations response. Everything
// under /v1 may carry personal data, so none of it is cached.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Cache-Control", "no-store")
	if c.Request.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
	}
	c.Next()
}
