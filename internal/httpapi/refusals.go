package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/sunpath/sunpath/internal/audit"
)

// Refused requests (401 without a principal, every 429) are audited as
// counts, not one event each: one event per (caller or address, minute,
// status), written when the minute is over. A client that floods the API
// with forged credentials adds a row a minute, not a row a request.

// refusalKey is one aggregate: who was refused, in which minute, how.
type refusalKey struct {
	actor, role string
	addr        string
	minute      time.Time
	status      int
}

// maxRefusalKeys bounds the aggregates kept between flushes; beyond it new
// callers are counted under one "(other)" address of their minute.
const maxRefusalKeys = 10000

type refusals struct {
	mu     sync.Mutex
	counts map[refusalKey]int
	now    func() time.Time
	total  *prometheus.CounterVec
}

func newRefusals(reg *prometheus.Registry) *refusals {
	return &refusals{counts: map[refusalKey]int{}, now: time.Now,
		total: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "sunpath_http_refused_total",
			Help: "Requests refused before reaching a handler, by reason (unauthenticated: no or bad credentials; rate_limited: 429). Audited as per-minute counts.",
		}, []string{"reason"})}
}

func (r *refusals) add(actor, role, addr string, status int) {
	reason := "unauthenticated"
	if status == http.StatusTooManyRequests {
		reason = "rate_limited"
	}
	r.total.WithLabelValues(reason).Inc()
	k := refusalKey{actor: actor, role: role, addr: addr, minute: r.now().UTC().Truncate(time.Minute), status: status}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.counts[k]; !ok && len(r.counts) >= maxRefusalKeys {
		k.actor, k.role, k.addr = "anonymous", "anonymous", "(other)"
	}
	r.counts[k]++
}

// take removes and returns the aggregates of minutes before until (all of
// them with a zero until).
func (r *refusals) take(until time.Time) map[refusalKey]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[refusalKey]int{}
	for k, n := range r.counts {
		if until.IsZero() || k.minute.Before(until) {
			out[k] = n
			delete(r.counts, k)
		}
	}
	return out
}

// flushRefusals writes one audit event per finished minute's aggregate (all
// of them when all is set, at shutdown). Aggregates that fail to write are
// kept for the next flush.
func (s *Server) flushRefusals(ctx context.Context, all bool) {
	until := s.refusals.now().UTC().Truncate(time.Minute)
	if all {
		until = time.Time{}
	}
	for k, n := range s.refusals.take(until) {
		outcome := audit.Denied
		if k.status == http.StatusTooManyRequests {
			outcome = audit.Rejected
		}
		detail, _ := json.Marshal(map[string]any{"status": k.status, "count": n,
			"minute": k.minute.Format(time.RFC3339)})
		ev := audit.Event{Actor: k.actor, Role: k.role, Action: "http.refused", ResourceType: "client_address",
			ResourceID: k.addr, Outcome: outcome, Detail: string(detail)}
		if err := s.deps.Audit.Record(ctx, ev); err != nil {
			s.log.Error("refusal counts not audited; kept for the next flush", "count", n, "err", err)
			s.refusals.mu.Lock()
			s.refusals.counts[k] += n
			s.refusals.mu.Unlock()
		}
	}
}

// runRefusalFlusher flushes finished minutes every few seconds until ctx
// ends, then everything that is left.
func (s *Server) runRefusalFlusher(ctx context.Context) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.flushRefusals(fctx, true)
			cancel()
			return
		case <-t.C:
			s.flushRefusals(ctx, false)
		}
	}
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
	s.refusals.add(actor, role, c.ClientIP(), code)
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
