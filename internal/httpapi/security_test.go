package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/ratelimit"
	"github.com/sunpath/sunpath/internal/testfix"
)

// caller is one kind of caller in the matrix.
type caller struct {
	name   string
	role   auth.Role // "" for the unauthenticated kinds
	other  bool      // from another unit or agency than the records
	client *http.Client
	key    string
}

// TestAccessMatrix walks every registered route against every kind of
// caller and checks the answer against the policy table: 401 without valid
// credentials, 403 for a role the route does not admit, never 401/403 or a
// 5xx for one it admits, and never 2xx for another unit's records. Every
// denial is in the audit trail.
func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	// Hundreds of unauthenticated calls come from one address here: the
	// address limit (tested on its own) must not answer them first.
	e := newEnvWith(t, mustOpen(t, url), func(c *Config) { c.UnauthenticatedBurst = 100000 })
	ctx := context.Background()

	// Records in unit west (agency hz): a subject with an assessment, a
	// flag, a recommendation, an override and a screening session.
	e.putSubject("M-1", "west", "carol", testfix.NIJProfile(t))
	carol := e.login("carol")
	var a casework.Assessment
	e.call(carol, "", http.MethodPost, "/v1/subjects/M-1/assessments", asqAcute(), &a)
	var rec casework.Recommendation
	e.call(carol, "", http.MethodPost, "/v1/subjects/M-1/recommendations", map[string]string{}, &rec)
	var ov casework.Override
	e.call(carol, "", http.MethodPost, "/v1/recommendations/"+rec.ID+"/overrides", map[string]string{"tier": "lenient", "reason_code": "other", "note": "n"}, &ov)
	var sess casework.OpenedSession
	e.call(carol, "", http.MethodPost, "/v1/subjects/M-1/sessions", map[string]any{"instruments": []string{"phq9"}, "language": "en", "kiosk": true}, &sess)
	if a.ID == "" || rec.ID == "" || ov.ID == "" || sess.ID == "" || len(a.Flags) == 0 {
		t.Fatal("set-up failed")
	}
	params := map[string]string{"subject_id": "M-1", "instrument": "phq9", "code": "west", "name": "nij-review"}
	idFor := func(path string) string {
		switch {
		case strings.HasPrefix(path, "/v1/flags/"):
			return a.Flags[0].ID
		case strings.HasPrefix(path, "/v1/sessions/"):
			return sess.ID
		case strings.HasPrefix(path, "/v1/recommendations/"):
			return rec.ID
		case strings.HasPrefix(path, "/v1/overrides/"):
			return ov.ID
		case strings.HasPrefix(path, "/v1/assessments/"):
			return a.ID
		}
		return "phq9"
	}

	// Callers.
	nbKey, _, err := e.auth.CreateAPIKey(ctx, "case system nb", auth.RoleCaseSystem, "nb", nil)
	if err != nil {
		t.Fatal(err)
	}
	expired := e.login("sue")
	conn, _ := pgx.Connect(ctx, url)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE sessions SET last_seen_at = now() - interval '31 minutes' WHERE user_id = (SELECT id FROM users WHERE username = 'sue')`); err != nil {
		t.Fatal(err)
	}
	otherKiosk := casework.OpenedSession{}
	e.putSubject("M-2", "east", "dave", nil)
	e.call(e.login("dave"), "", http.MethodPost, "/v1/subjects/M-2/sessions", map[string]any{"instruments": []string{"phq9"}, "language": "en", "kiosk": true}, &otherKiosk)
	callers := []caller{
		{name: "anonymous"},
		{name: "expired session", client: expired},
		{name: "forged key", key: auth.APIKeyPrefix + strings.Repeat("Q", 43)},
		{name: "forged kiosk token", key: auth.KioskPrefix + strings.Repeat("Q", 43)},
		{name: "revoked key", key: e.revoked},
		{name: "admin", role: auth.RoleAdmin, client: e.login("admin")},
		{name: "supervisor", role: auth.RoleSupervisor, client: e.login("sam")},
		{name: "supervisor of another unit", role: auth.RoleSupervisor, other: true, client: e.login("eve")},
		{name: "counselor", role: auth.RoleCounselor, client: carol},
		{name: "counselor of another unit", role: auth.RoleCounselor, other: true, client: e.login("dave")},
		{name: "case system", role: auth.RoleCaseSystem, key: e.keys[auth.RoleCaseSystem]},
		{name: "case system of another agency", role: auth.RoleCaseSystem, other: true, key: nbKey},
		{name: "auditor", role: auth.RoleAuditor, client: e.login("audrey")},
		{name: "kiosk", role: auth.RoleKiosk, key: sess.KioskToken},
		{name: "kiosk of another session", role: auth.RoleKiosk, other: true, key: otherKiosk.KioskToken},
	}
	var before int
	conn.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE outcome = 'denied'`).Scan(&before)

	denials, checked := 0, 0
	routes := e.srv.EngineRoutes()
	for _, r := range routes {
		if !strings.HasPrefix(r.Path, "/v1/") {
			continue
		}
		pol, ok := policy[r.Method+" "+r.Path]
		if !ok {
			t.Errorf("%s %s is served but has no row in the policy table", r.Method, r.Path)
			continue
		}
		if pol.Scope == scopePublic {
			continue
		}
		path := r.Path
		for _, seg := range strings.Split(r.Path, "/") {
			if strings.HasPrefix(seg, ":") {
				v := params[seg[1:]]
				if seg == ":id" {
					v = idFor(r.Path)
				}
				path = strings.Replace(path, seg, v, 1)
			}
		}
		// The kiosk's own calls go last: submitting ends its token.
		for _, cl := range callers {
			if cl.role == auth.RoleKiosk && r.Method == http.MethodPost && strings.HasSuffix(path, "/submit") {
				continue
			}
			if r.Path == "/v1/auth/logout" && cl.client != nil {
				continue // would end the session the rest of the matrix uses
			}
			code, body := send(t, e.ts.URL, cl, r.Method, path)
			checked++
			admitted := false
			for _, role := range pol.Roles {
				admitted = admitted || role == cl.role
			}
			if pol.Scope == scopeSelf && cl.client == nil {
				admitted = false // one's own account: people with a session, not keys
			}
			switch {
			case cl.role == "":
				if code != http.StatusUnauthorized {
					t.Errorf("%s %s as %s = %d, want 401", r.Method, path, cl.name, code)
				}
				denials++
			case !admitted:
				if code != http.StatusForbidden {
					t.Errorf("%s %s as %s = %d, want 403", r.Method, path, cl.name, code)
				}
				denials++
			case code == http.StatusUnauthorized || code == http.StatusForbidden || code >= 500:
				t.Errorf("%s %s as %s (admitted) = %d %s", r.Method, path, cl.name, code, body)
			case cl.other && pol.Scope == scopeSubject && strings.Contains(r.Path, ":"):
				if code != http.StatusNotFound && code != http.StatusUnprocessableEntity && code != http.StatusBadRequest {
					t.Errorf("%s %s as %s = %d, want 404 for another unit's record", r.Method, path, cl.name, code)
				}
				if code == http.StatusNotFound {
					denials++
				}
			case cl.other && (strings.Contains(body, "M-1") || strings.Contains(body, a.ID)):
				t.Errorf("%s %s as %s leaks another unit's records: %.200s", r.Method, path, cl.name, body)
			}
		}
	}
	// Requests that named no one are audited as per-minute counts.
	e.srv.flushRefusals(ctx, true)
	var after int
	conn.QueryRow(ctx, `SELECT coalesce(sum(CASE WHEN action = 'http.refused' THEN (detail->>'count')::int ELSE 1 END), 0)
		FROM audit_events WHERE outcome = 'denied'`).Scan(&after)
	if after-before != denials {
		t.Errorf("%d denials answered, %d audited as denied", denials, after-before)
	}
	t.Logf("%d route × caller checks, %d denials, all audited", checked, denials)
}

func send(t *testing.T, base string, cl caller, method, path string) (int, string) {
	t.Helper()
	var body io.Reader
	if method != http.MethodGet {
		body = strings.NewReader("{}")
	}
	req, _ := http.NewRequest(method, base+path, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.key != "" {
		req.Header.Set("Authorization", "Bearer "+cl.key)
	}
	c := cl.client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

// TestCanaryNeverLeaks seeds names, notes, profile values and invalid
// answers with a marker and runs the workflow; the marker must never reach
// the logs, the metrics or any error body.
func TestCanaryNeverLeaks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const canary = "CANARY-9c1e5d"
	admin := e.keys[auth.RoleAdmin]
	carol, sam, sue := e.login("carol"), e.login("sam"), e.login("sue")
	var errorBodies []string
	record := func(code int, body any) {
		if code >= 400 {
			b, _ := json.Marshal(body)
			errorBodies = append(errorBodies, string(b))
		}
	}
	var p map[string]any
	subj := map[string]any{"display_name": "张三 " + canary, "sex": "male", "supervision_type": "parole", "unit": "west", "counselor": "carol", "profile": testfix.NIJProfile(t)}
	e.call(nil, admin, http.MethodPut, "/v1/subjects/C-1", subj, nil)
	bad := map[string]any{"display_name": canary, "sex": canary, "supervision_type": canary, "unit": canary, "counselor": canary, "birth_year": 3000, "profile": map[string]any{"Age_at_Release": canary}}
	record(e.call(nil, admin, http.MethodPut, "/v1/subjects/C-2", bad, &p), p)
	record(e.call(carol, "", http.MethodPost, "/v1/subjects/C-1/assessments", map[string]any{"instrument": "phq9", "language": "en", "answers": map[string]any{"phq9_1": canary, "phq9_9": canary}}, &p), p)
	record(e.call(carol, "", http.MethodPost, "/v1/subjects/C-1/assessments", map[string]any{"instrument": canary, "language": canary, "answers": map[string]any{"x": 1}}, &p), p)
	record(e.call(carol, "", http.MethodPost, "/v1/risk/score", map[string]any{"model": "nij-review", "features": map[string]any{"Age_at_Release": canary}}, &p), p)
	var a casework.Assessment
	e.call(carol, "", http.MethodPost, "/v1/subjects/C-1/assessments", asqAcute(), &a)
	e.call(carol, "", http.MethodPost, "/v1/flags/"+a.Flags[0].ID+"/acknowledge", nil, nil)
	e.call(carol, "", http.MethodPost, "/v1/flags/"+a.Flags[0].ID+"/resolve", map[string]string{"resolution_code": "other", "note": "note " + canary}, nil)
	record(e.call(carol, "", http.MethodPost, "/v1/flags/"+a.Flags[0].ID+"/resolve", map[string]string{"resolution_code": canary, "note": canary}, &p), p)
	var rec casework.Recommendation
	e.call(carol, "", http.MethodPost, "/v1/subjects/C-1/recommendations", nil, &rec)
	var ov casework.Override
	e.call(sam, "", http.MethodPost, "/v1/recommendations/"+rec.ID+"/overrides", map[string]string{"tier": "strict", "reason_code": "other", "note": canary}, &ov)
	record(e.call(sam, "", http.MethodPost, "/v1/overrides/"+ov.ID+"/approve", map[string]string{"note": canary}, &p), p)
	e.call(sue, "", http.MethodPost, "/v1/overrides/"+ov.ID+"/reject", map[string]string{"note": canary}, nil)
	record(e.call(nil, "", http.MethodPost, "/v1/auth/login", map[string]string{"username": "carol", "password": canary}, &p), p)
	var sc casework.OpenedSession
	e.call(carol, "", http.MethodPost, "/v1/subjects/C-1/sessions", map[string]any{"instruments": []string{"phq9"}, "language": "en"}, &sc)
	record(e.call(carol, "", http.MethodPut, "/v1/sessions/"+sc.ID+"/answers", map[string]any{"instrument": "phq9", "answers": map[string]any{"phq9_1": canary}}, &p), p)
	// Read everything back (the data itself may hold the canary: that is
	// the point of storing it; it must stay out of logs and errors).
	var got casework.Subject
	e.call(carol, "", http.MethodGet, "/v1/subjects/C-1", nil, &got)
	if !strings.Contains(got.DisplayName, canary) {
		t.Fatal("the canary did not even get stored; the test would prove nothing")
	}
	metrics := e.scrape()
	if len(errorBodies) < 8 {
		t.Fatalf("only %d error bodies collected", len(errorBodies))
	}
	for _, b := range errorBodies {
		if strings.Contains(b, canary) {
			t.Errorf("an error body carries the canary: %s", b)
		}
	}
	if bytes.Contains(metrics, []byte(canary)) {
		t.Error("the metrics carry the canary")
	}
	if strings.Contains(e.logs.String(), canary) {
		t.Errorf("the logs carry the canary")
	}
	// The canary is sealed at rest: not in the clear in any table.
	var n int
	conn, _ := pgx.Connect(context.Background(), e.dbURL)
	defer conn.Close(context.Background())
	conn.QueryRow(context.Background(), `SELECT count(*) FROM (
		SELECT display_name::text AS v FROM subjects UNION ALL SELECT profile::text FROM subjects
		UNION ALL SELECT convert_from(answers, 'SQL_ASCII') FROM assessments UNION ALL SELECT encode(note, 'escape') FROM overrides
		UNION ALL SELECT encode(resolution_note, 'escape') FROM flags WHERE resolution_note IS NOT NULL
		UNION ALL SELECT detail::text FROM audit_events) x WHERE v LIKE '%' || $1 || '%'`, canary).Scan(&n)
	if n != 0 {
		t.Errorf("the canary is stored in the clear in %d places", n)
	}
}

func TestSecurityHeadersAndLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	resp := e.do(http.MethodGet, "/v1/auth/me", e.keys[auth.RoleAdmin], nil)
	resp.Body.Close()
	for h, want := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	// Sign-in attempts per name: past the burst, refused with Retry-After,
	// whatever the password. The bucket refills once an hour here, so the
	// outcome does not depend on how fast Argon2id runs on this machine.
	e.auth.SetLoginLimiters(ratelimit.New(1.0/3600, 10), nil)
	var last *http.Response
	for i := 0; i < 11; i++ {
		last = e.do(http.MethodPost, "/v1/auth/login", "", map[string]string{"username": "eve", "password": "wrong wrong wrong"})
		if i < 10 {
			last.Body.Close()
		}
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Errorf("11th sign-in = %d Retry-After %q, want 429 with Retry-After", last.StatusCode, last.Header.Get("Retry-After"))
	}
	wantProblem(t, last, http.StatusTooManyRequests)
	// Unknown fields and methods.
	req, _ := http.NewRequest("TRACE", e.ts.URL+"/v1/auth/me", nil)
	r2, _ := http.DefaultClient.Do(req)
	wantProblem(t, r2, http.StatusMethodNotAllowed)
}

func TestCallerRateLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.callers = ratelimit.New(1.0/3600, 5) // no refill within the test, however slow the machine
	key := e.keys[auth.RoleCaseSystem]
	codes := map[int]int{}
	var retry string
	for i := 0; i < 8; i++ {
		resp := e.do(http.MethodGet, "/v1/instruments", key, nil)
		codes[resp.StatusCode]++
		if resp.StatusCode == http.StatusTooManyRequests {
			retry = resp.Header.Get("Retry-After")
		}
		resp.Body.Close()
	}
	if codes[200] != 5 || codes[429] != 3 || retry == "" {
		t.Errorf("codes %v, Retry-After %q: want 5 × 200 then 429 with Retry-After", codes, retry)
	}
	// Another key is not affected.
	resp := e.do(http.MethodGet, "/v1/instruments", e.keys[auth.RoleAdmin], nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("another caller = %d", resp.StatusCode)
	}
}
