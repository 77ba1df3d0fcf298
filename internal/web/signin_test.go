package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/httpapi"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/ratelimit"
)

// TestSigninLimitBehindProxy: behind a trusted proxy, sign-in attempts are
// limited per real client address (X-Forwarded-For), not per proxy; the
// refusal is a 429 page with Retry-After, never a 500, and it is audited
// with the client's address.
func TestSigninLimitBehindProxy(t *testing.T) {
	t.Parallel()
	cfg := httpapi.DefaultConfig()
	cfg.TrustedProxies = []string{"127.0.0.1"}
	e := newEnvConfig(t, cfg)
	e.auth.SetLoginLimiters(nil, ratelimit.PerMinute(3))
	signin := func(from, password string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/signin",
			strings.NewReader(url.Values{"username": {"carol"}, "password": {password}, "next": {"/"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", from)
		resp, err := e.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	for i := 0; i < 3; i++ {
		if resp := signin("203.0.113.7", "wrong password!"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d = %d, want 401", i+1, resp.StatusCode)
		}
	}
	resp := signin("203.0.113.7", "wrong password!")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("4th attempt from one address = %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// Another client behind the same proxy is not limited.
	if resp := signin("198.51.100.9", e.pass); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("another client's sign-in = %d, want 303", resp.StatusCode)
	}
	ctx := context.Background()
	e.refusals.Flush(ctx, e.audit, slog.New(slog.NewJSONHandler(e.logs, nil)), true)
	evs, err := e.audit.List(ctx, postgres.AuditFilter{Actor: "user:carol", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Action == "auth.login" && ev.ResourceID == "203.0.113.7" && ev.Outcome == audit.Rejected &&
			strings.Contains(ev.Detail, `"status": 429`) && strings.Contains(ev.Detail, `"count": 1`) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("audited 429 sign-ins from 203.0.113.7: %d events, want one counting 1; events %+v", n, evs)
	}
}
