package httpapi

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// errRateLimited answers 429 with Retry-After.
var errRateLimited = errors.New("too many requests")

// rateLimitError carries how long to wait.
type rateLimitError struct{ retry time.Duration }

func (e *rateLimitError) Error() string {
	return fmt.Sprintf("rate limit exceeded; retry in %s", e.retry.Round(time.Second))
}
func (e *rateLimitError) Unwrap() error { return errRateLimited }

// limiter keeps one token bucket per key (an API key, a login name, an
// address), forgetting keys idle for ten minutes. Limits are per replica.
type limiter struct {
	mu    sync.Mutex
	rate  rate.Limit
	burst int
	m     map[string]*bucket
	calls int
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiter(perSecond float64, burst int) *limiter {
	return &limiter{rate: rate.Limit(perSecond), burst: burst, m: map[string]*bucket{}}
}

// allow takes a token for key, or says how long until one is available.
func (l *limiter) allow(key string) error {
	if l == nil || l.rate <= 0 {
		return nil
	}
	now := time.Now()
	l.mu.Lock()
	b, ok := l.m[key]
	if !ok {
		b = &bucket{l: rate.NewLimiter(l.rate, l.burst)}
		l.m[key] = b
	}
	b.seen = now
	if l.calls++; l.calls%1024 == 0 {
		for k, x := range l.m {
			if now.Sub(x.seen) > 10*time.Minute {
				delete(l.m, k)
			}
		}
	}
	l.mu.Unlock()
	r := b.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &rateLimitError{retry: d}
	}
	return nil
}

// retryAfter is the Retry-After value, in whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(math.Max(1, math.Ceil(d.Seconds()))))
}

// limitCallers rate-limits every authenticated principal (API keys, sessions,
// kiosks) by identity.
func (s *Server) limitCallers(c *gin.Context) {
	if p, ok := principal(c); ok {
		if err := s.callers.allow(p.Actor()); err != nil {
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
