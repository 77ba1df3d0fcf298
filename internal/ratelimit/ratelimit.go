// Package ratelimit keeps one token bucket per key (an API key, a login
// name, an address) with golang.org/x/time/rate, forgetting keys idle for
// ten minutes. Limits are per process: with N replicas behind a balancer a
// caller may reach N times the rate, which is the documented trade-off for
// keeping them out of the database.
package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ErrLimited is wrapped by every *Error.
var ErrLimited = errors.New("too many requests")

// Error says how long to wait before the next attempt.
type Error struct{ Retry time.Duration }

func (e *Error) Error() string {
	return fmt.Sprintf("rate limit exceeded; retry in %s", e.Retry.Round(time.Second))
}

func (e *Error) Unwrap() error { return ErrLimited }

// RetryAfter is the Retry-After header value: whole seconds, at least 1.
func (e *Error) RetryAfter() string {
	return strconv.Itoa(int(math.Max(1, math.Ceil(e.Retry.Seconds()))))
}

// Limiter is a set of token buckets. The zero rate disables it.
type Limiter struct {
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

// New returns a limiter allowing perSecond tokens per key with burst.
func New(perSecond float64, burst int) *Limiter {
	return &Limiter{rate: rate.Limit(perSecond), burst: burst, m: map[string]*bucket{}}
}

// PerMinute returns a limiter allowing n per minute per key, all at once.
func PerMinute(n int) *Limiter { return New(float64(n)/60, n) }

// Allow takes a token for key, or returns an *Error saying how long until
// one is available.
func (l *Limiter) Allow(key string) error {
	if l == nil || l.rate <= 0 {
		return nil
	}
	now := time.Now()
	b := l.bucket(key, now)
	r := b.l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return &Error{Retry: d}
	}
	return nil
}

// Check returns an *Error when key has no token left, without taking one:
// with Allow called only for some outcomes (a failed sign-in, a refused
// credential) it limits those outcomes while checking every attempt.
func (l *Limiter) Check(key string) error {
	if l == nil || l.rate <= 0 {
		return nil
	}
	now := time.Now()
	if tokens := l.bucket(key, now).l.TokensAt(now); tokens < 1 {
		return &Error{Retry: time.Duration((1 - tokens) / float64(l.rate) * float64(time.Second))}
	}
	return nil
}

func (l *Limiter) bucket(key string, now time.Time) *bucket {
	l.mu.Lock()
	defer l.mu.Unlock()
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
	return b
}
