package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/caseprom"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/httpapi"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/refusal"
	"github.com/sunpath/sunpath/internal/sealed"
	"github.com/sunpath/sunpath/internal/testfix"
)

// env is the whole server (JSON API with this UI mounted, as cmd/sunpath
// wires it) on a fresh database, with staff in two units.
type env struct {
	t     *testing.T
	ts    *httptest.Server
	ui    http.Handler
	auth  *auth.Service
	cases *postgres.Cases
	svc   *casework.Service
	audit *postgres.AuditStore
	// refusals counts rate-limited and anonymous refusals of both fronts.
	refusals *refusal.Counter
	logs     *testfix.Buffer
	pass     string
	admin    string // admin API key
	cms      string // case-system API key of agency hz (unit west)
}

const (
	crisisZH = "危机处置：立即确保当事人安全，不要让其独处。"
	crisisEN = "Crisis protocol: make sure the person is safe now."
)

func testPolicy() casework.Policy {
	p := casework.DefaultPolicy()
	p.SessionTTL, p.KioskTTL, p.IdempotencyTTL = time.Hour, time.Hour, time.Hour
	p.ReliableChange = map[string]int{"phq9": 5, "gad7": 4}
	p.CrisisProtocol = map[string]string{"zh-CN": crisisZH, "en": crisisEN}
	return p
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvConfig(t, httpapi.DefaultConfig())
}

// newEnvConfig is newEnv with the API server's configuration.
func newEnvConfig(t *testing.T, cfg httpapi.Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, auth.DefaultSessionPolicy)
}

// newEnvWith is newEnvConfig with the sessions' policy.
func newEnvWith(t *testing.T, cfg httpapi.Config, sessions auth.SessionPolicy) *env {
	t.Helper()
	ctx := context.Background()
	db := pgtest.NewDB(t)
	svc := auth.NewService(postgres.NewAccounts(db), sessions)
	e := &env{t: t, auth: svc, logs: &testfix.Buffer{}, pass: "correct horse battery"}
	// Accounts belong to units that exist (auth.ErrUnknownUnit).
	for code, agency := range map[string]string{"west": "hz", "east": "nb"} {
		if err := postgres.NewUnits(db).Create(ctx, postgres.Unit{Code: code, Name: code + " district", Agency: agency}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []struct {
		name string
		role auth.Role
		unit string
	}{{"admin", auth.RoleAdmin, ""}, {"carol", auth.RoleCounselor, "west"}, {"sam", auth.RoleSupervisor, "west"},
		{"sue", auth.RoleSupervisor, "west"}, {"dave", auth.RoleCounselor, "east"}, {"audrey", auth.RoleAuditor, ""}} {
		if _, err := svc.CreateUser(ctx, u.name, e.pass, u.role, u.unit); err != nil {
			t.Fatalf("create user %s: %v", u.name, err)
		}
	}
	var err error
	if e.admin, _, err = svc.CreateAPIKey(ctx, "key-admin", auth.RoleAdmin, "", nil); err != nil {
		t.Fatal(err)
	}
	if e.cms, _, err = svc.CreateAPIKey(ctx, "key-cms", auth.RoleCaseSystem, "hz", nil); err != nil {
		t.Fatal(err)
	}
	keys, err := sealed.ParseKeyring("t1:"+sealed.NewKey(), "t1")
	if err != nil {
		t.Fatal(err)
	}
	e.cases = postgres.NewCases(db, postgres.CasesConfig{Keys: keys, Flags: casework.DefaultFlagPolicy})
	e.audit = postgres.NewAuditStore(db)
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg := prometheus.NewRegistry()
	e.svc, err = casework.New(casework.Deps{Store: e.cases, Audit: e.audit, Catalog: testfix.Catalog(t), Models: testfix.Models(t),
		ModelSource: e.cases, DefaultModel: "nij-review", Policy: testPolicy(), Metrics: caseprom.New(reg, nil)})
	if err != nil {
		t.Fatal(err)
	}
	e.refusals = refusal.New(reg)
	e.ui, err = New(Config{ModelsDir: "../../models", DefaultModel: "nij-review"},
		Deps{Log: log, Auth: svc, Casework: e.svc, Catalog: testfix.Catalog(t), Models: testfix.Models(t), Refusals: e.refusals})
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	srv, err := httpapi.New(cfg, httpapi.Deps{
		Log: log, Registry: reg, Auth: svc, Catalog: testfix.Catalog(t), Models: testfix.Models(t), DefaultModel: "nij-review",
		Casework: e.svc, UI: e.ui, Refusals: e.refusals,
	})
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(e.ts.Close)
	t.Cleanup(func() {
		if t.Failed() {
			for _, line := range strings.Split(e.logs.String(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) {
					t.Log(line)
				}
			}
		}
	})
	for code, agency := range map[string]string{"west": "hz", "east": "nb"} {
		e.api(http.MethodPut, "/v1/units/"+code, e.admin, map[string]string{"name": code + " district", "agency": agency}, http.StatusOK, nil)
	}
	return e
}

// api calls the JSON API with a bearer key and checks the status.
func (e *env) api(method, path, key string, body any, want int, out any) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.ts.URL+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s = %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatal(err)
		}
	}
}

// putSubject registers a person through the case system's API.
func (e *env) putSubject(id, unit, counselor, name string, profile map[string]any) {
	e.t.Helper()
	if profile == nil {
		profile = map[string]any{}
	}
	body := map[string]any{"display_name": name, "sex": "female", "birth_year": 1988, "supervision_type": "probation",
		"unit": unit, "counselor": counselor, "supervision_start": time.Now().AddDate(0, 0, -3).Format("2006-01-02"), "profile": profile}
	e.api(http.MethodPut, "/v1/subjects/"+id, e.admin, body, http.StatusCreated, nil)
}

// phq9At stores a PHQ-9 with the given item scores, completed days ago.
func (e *env) phq9At(subject string, daysAgo int, scores ...int) {
	e.t.Helper()
	a := map[string]any{}
	for i, v := range scores {
		a[fmt.Sprintf("phq9_%d", i+1)] = v
	}
	at := time.Now().AddDate(0, 0, -daysAgo).UTC()
	e.api(http.MethodPost, "/v1/subjects/"+subject+"/assessments", e.admin,
		map[string]any{"instrument": "phq9", "language": "zh-CN", "answers": a, "completed_at": at, "started_at": at.Add(-10 * time.Minute)}, http.StatusCreated, nil)
}

// client is a browser-like HTTP client that keeps cookies and does not
// follow redirects, so tests see each 303.
func (e *env) client() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signin signs a client in through the sign-in form.
func (e *env) signin(c *http.Client, username string) {
	e.t.Helper()
	resp := e.post(c, "/signin", url.Values{"username": {username}, "password": {e.pass}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("sign in %s = %d, want 303", username, resp.StatusCode)
	}
}

func (e *env) get(c *http.Client, path string, header ...string) (*http.Response, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *env) post(c *http.Client, path string, form url.Values) *http.Response {
	e.t.Helper()
	resp, err := c.PostForm(e.ts.URL+path, form)
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}
