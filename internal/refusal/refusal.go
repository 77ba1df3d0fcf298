// Package refusal counts refused requests (no or bad credentials, rate
// limits) and audits them as one event per (caller or client address,
// minute, status) with a count, not one event per request: a client that
// floods the service with forged credentials adds a row a minute, not a row
// a request. Both front ends (the JSON API and the web pages) share one
// Counter.
package refusal

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/sunpath/sunpath/internal/audit"
)

// Recorder appends one audit event; postgres.AuditStore implements it.
type Recorder interface {
	Record(ctx context.Context, ev audit.Event) error
}

type key struct {
	actor, role, addr, action string
	minute                    time.Time
	status                    int
}

// maxKeys bounds the aggregates kept between flushes; beyond it new callers
// are counted under one "(other)" address of their minute.
const maxKeys = 10000

// Counter aggregates refusals until Flush writes them.
type Counter struct {
	mu     sync.Mutex
	counts map[key]int
	now    func() time.Time
	total  *prometheus.CounterVec
}

// New returns a Counter exporting sunpath_http_refused_total{reason} on reg.
func New(reg prometheus.Registerer) *Counter {
	return &Counter{counts: map[key]int{}, now: time.Now,
		total: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "sunpath_http_refused_total",
			Help: "Requests refused for missing or bad credentials (reason unauthenticated) or a rate limit (rate_limited), audited as per-minute counts.",
		}, []string{"reason"})}
}

// Add counts one refused request: actor and role ("anonymous" when nobody
// authenticated), the client address, the action (e.g. "http.refused",
// "auth.login") and the status (401 or 429).
func (c *Counter) Add(actor, role, addr, action string, status int) {
	reason := "unauthenticated"
	if status == http.StatusTooManyRequests {
		reason = "rate_limited"
	}
	c.total.WithLabelValues(reason).Inc()
	k := key{actor: actor, role: role, addr: addr, action: action, minute: c.now().UTC().Truncate(time.Minute), status: status}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.counts[k]; !ok && len(c.counts) >= maxKeys {
		k.actor, k.role, k.addr = "anonymous", "anonymous", "(other)"
	}
	c.counts[k]++
}

// Flush writes one audit event per aggregate of a finished minute, or of
// every minute when all is set (at shutdown). Aggregates that fail to write
// are kept for the next flush.
func (c *Counter) Flush(ctx context.Context, rec Recorder, log *slog.Logger, all bool) {
	until := c.now().UTC().Truncate(time.Minute)
	c.mu.Lock()
	out := map[key]int{}
	for k, n := range c.counts {
		if all || k.minute.Before(until) {
			out[k] = n
			delete(c.counts, k)
		}
	}
	c.mu.Unlock()
	for k, n := range out {
		outcome := audit.Denied
		if k.status == http.StatusTooManyRequests {
			outcome = audit.Rejected
		}
		detail, _ := json.Marshal(map[string]any{"status": k.status, "count": n, "minute": k.minute.Format(time.RFC3339)})
		ev := audit.Event{Actor: k.actor, Role: k.role, Action: k.action, ResourceType: "client_address",
			ResourceID: k.addr, Outcome: outcome, Detail: string(detail)}
		if err := rec.Record(ctx, ev); err != nil {
			log.Error("refusal counts not audited; kept for the next flush", "count", n, "err", err)
			c.mu.Lock()
			c.counts[k] += n
			c.mu.Unlock()
		}
	}
}

// Run flushes finished minutes every few seconds until ctx ends, then
// everything that is left.
func (c *Counter) Run(ctx context.Context, rec Recorder, log *slog.Logger) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			c.Flush(fctx, rec, log, true)
			cancel()
			return
		case <-t.C:
			c.Flush(ctx, rec, log, false)
		}
	}
}
