package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// healthz answers 200 while the process is alive.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// readyz answers 200 when every check passes and the server is not shutting
// down, 503 otherwise, naming the failing checks (never their internals).
func (s *Server) readyz(c *gin.Context) {
	r := readiness{Status: "ready", Checks: map[string]string{}}
	code := http.StatusOK
	if s.stopping.Load() {
		r.Status, code = "shutting down", http.StatusServiceUnavailable
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	for _, ch := range s.deps.Checks {
		if err := ch.Fn(ctx); err != nil {
			r.Checks[ch.Name] = "failing"
			if code == http.StatusOK {
				r.Status, code = "not ready", http.StatusServiceUnavailable
			}
			s.log.Warn("readiness check failing", "check", ch.Name, "err", err)
			continue
		}
		r.Checks[ch.Name] = "ok"
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(code, r)
}
