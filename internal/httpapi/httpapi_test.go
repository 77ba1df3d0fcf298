package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/caseprom"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/riskmodel"
	"github.com/sunpath/sunpath/internal/testfix"
)

// env is a server on a fresh database with one account of each kind.
type env struct {
	dbURL   string
	clock   *clock
	cases   *postgres.Cases
	svc     *casework.Service
	audit   *postgres.AuditStore
	t       *testing.T
	srv     *Server
	ts      *httptest.Server
	db      *postgres.DB
	auth    *auth.Service
	logs    *testfix.Buffer
	metrics *httptest.Server // the metrics listener
	keys    map[auth.Role]string
	pass    string
	revoked string
}

func newEnv(t *testing.T, checks ...Check) *env {
	t.Helper()
	url := pgtest.NewURL(t)
	e := newEnvOn(t, mustOpen(t, url), checks...)
	e.dbURL = url
	return e
}

func newEnvOn(t *testing.T, db *postgres.DB, checks ...Check) *env {
	t.Helper()
	return newEnvWith(t, db, nil, checks...)
}

// newEnvWith is newEnvOn with the server's configuration adjusted by mod.
func newEnvWith(t *testing.T, db *postgres.DB, mod func(*Config), checks ...Check) *env {
	t.Helper()
	ctx := context.Background()
	svc := auth.NewService(postgres.NewAccounts(db), auth.DefaultSessionPolicy)
	svc.LimitLogins(10)
	e := &env{t: t, db: db, auth: svc, logs: &testfix.Buffer{}, keys: map[auth.Role]string{}, pass: "correct horse battery"}
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
		{"sue", auth.RoleSupervisor, "west"}, {"dave", auth.RoleCounselor, "east"}, {"eve", auth.RoleSupervisor, "east"}, {"audrey", auth.RoleAuditor, ""}} {
		if _, err := svc.CreateUser(ctx, u.name, e.pass, u.role, u.unit); err != nil {
			t.Fatalf("create user %s: %v", u.name, err)
		}
	}
	for _, r := range auth.Roles {
		scope := "west"
		if r == auth.RoleCaseSystem {
			scope = "hz" // a case system's scope is its agency
		}
		key, _, err := svc.CreateAPIKey(ctx, "key-"+string(r), r, scope, nil)
		if err != nil {
			t.Fatalf("create key: %v", err)
		}
		e.keys[r] = key
	}
	key, id, err := svc.CreateAPIKey(ctx, "old", auth.RoleAdmin, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeAPIKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	e.revoked = key
	cfg := DefaultConfig()
	cfg.Version = "test"
	if mod != nil {
		mod(&cfg)
	}
	e.clock = &clock{t: time.Now()}
	e.cases = postgres.NewCases(db, postgres.CasesConfig{Keys: testfix.Keyring(t), Flags: casework.DefaultFlagPolicy, Endpoints: []string{"crisis-desk"}, Now: e.clock.Now})
	e.audit = postgres.NewAuditStore(db)
	reg := prometheus.NewRegistry()
	rm, err := riskmodel.NewMetrics(reg, testfix.Models(t), 100)
	if err != nil {
		t.Fatal(err)
	}
	pol := casework.DefaultPolicy()
	pol.IdempotencyTTL, pol.SessionTTL, pol.KioskTTL = time.Hour, time.Hour, time.Hour
	pol.ReliableChange = map[string]int{"phq9": 5}
	pol.CrisisProtocol = map[string]string{"zh-CN": "危机处置：确保安全", "en": "Crisis protocol: ensure safety"}
	e.svc, err = casework.New(casework.Deps{Store: e.cases, Audit: e.audit, Catalog: testfix.Catalog(t), Models: testfix.Models(t),
		ModelSource: e.cases, Training: e.cases, DefaultModel: "nij-review", Policy: pol, Metrics: caseprom.New(reg, rm), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Deps{
		Log:          slog.New(slog.NewJSONHandler(e.logs, nil)),
		Registry:     reg,
		Auth:         svc,
		Checks:       checks,
		Catalog:      testfix.Catalog(t),
		Models:       testfix.Models(t),
		DefaultModel: "nij-review",
		RiskMetrics:  rm,
		Casework:     e.svc,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.srv = s
	t.Cleanup(func() {
		if t.Failed() {
			for _, line := range strings.Split(e.logs.String(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) {
					t.Log(line)
				}
			}
		}
	})
	e.ts = httptest.NewServer(checkContract(t, s.Handler()))
	t.Cleanup(e.ts.Close)
	e.metrics = httptest.NewServer(MetricsHandler(reg))
	t.Cleanup(e.metrics.Close)
	// The units exist already (accounts need them): PUT renames, keeping
	// the agency when none is given.
	for code, agency := range map[string]string{"west": "hz", "east": ""} {
		resp := e.do(http.MethodPut, "/v1/units/"+code, e.keys[auth.RoleAdmin], map[string]string{"name": code + " district", "agency": agency})
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT unit %s = %d", code, resp.StatusCode)
		}
	}
	return e
}

// do sends a request with an optional bearer key and JSON body.
func (e *env) do(method, path, key string, body any) *http.Response {
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
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// login returns a client holding a session cookie for username.
func (e *env) login(username string) *http.Client {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.Post(e.ts.URL+"/v1/auth/login", "application/json",
		strings.NewReader(`{"username":"`+username+`","password":"`+e.pass+`"}`))
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("login %s: status %d", username, resp.StatusCode)
	}
	return c
}

// wantProblem checks that resp is a problem with the status, the request id
// both in the body and the header, and returns the body.
func wantProblem(t *testing.T, resp *http.Response, code int) problem.Problem {
	t.Helper()
	defer resp.Body.Close()
	if resp.StatusCode != code {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, code, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != problem.ContentType {
		t.Fatalf("Content-Type = %q, want %q", ct, problem.ContentType)
	}
	var p problem.Problem
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatalf("decode problem: %v", err)
	}
	if p.Status != code || p.Title == "" || p.Type == "" {
		t.Errorf("problem = %+v, want status %d with type and title", p, code)
	}
	if p.RequestID == "" || p.RequestID != resp.Header.Get(headerRequestID) {
		t.Errorf("request_id = %q, header %q: want equal and non-empty", p.RequestID, resp.Header.Get(headerRequestID))
	}
	return p
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"no credentials", "", http.StatusUnauthorized},
		{"basic scheme", "Basic YWRtaW46eA==", http.StatusUnauthorized},
		{"garbage key", "Bearer nonsense", http.StatusUnauthorized},
		{"well-formed unknown key", "Bearer " + auth.APIKeyPrefix + strings.Repeat("A", 43), http.StatusUnauthorized},
		{"revoked key", "Bearer " + e.revoked, http.StatusUnauthorized},
		{"forged session cookie as bearer", "Bearer " + auth.SessionPrefix + strings.Repeat("A", 43), http.StatusUnauthorized},
		{"admin key", "Bearer " + e.keys[auth.RoleAdmin], http.StatusOK},
		{"case system key on admin route", "Bearer " + e.keys[auth.RoleCaseSystem], http.StatusForbidden},
		{"auditor key on admin route", "Bearer " + e.keys[auth.RoleAuditor], http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/v1/users", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == http.StatusOK {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status = %d, want 200", resp.StatusCode)
				}
				return
			}
			wantProblem(t, resp, tt.want)
			if tt.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestLoginSessionsAndRoles(t *testing.T) {
	t.Parallel()
	e := newEnv(t)

	resp := e.do(http.MethodPost, "/v1/auth/login", "", map[string]string{"username": "carol", "password": "wrong password!"})
	wantProblem(t, resp, http.StatusUnauthorized)
	resp = e.do(http.MethodPost, "/v1/auth/login", "", map[string]string{"username": "nobody", "password": "wrong password!"})
	wantProblem(t, resp, http.StatusUnauthorized)
	resp = e.do(http.MethodPost, "/v1/auth/login", "", map[string]string{"username": "carol"})
	p := wantProblem(t, resp, http.StatusUnprocessableEntity)
	if len(p.Errors) != 1 || p.Errors[0].Field != "password" {
		t.Errorf("errors = %+v, want one naming password", p.Errors)
	}

	counselor := e.login("carol")
	r, _ := counselor.Get(e.ts.URL + "/v1/auth/me")
	var me principalResponse
	json.NewDecoder(r.Body).Decode(&me)
	r.Body.Close()
	if me.Name != "carol" || me.Role != "counselor" || me.Unit != "west" {
		t.Errorf("me = %+v", me)
	}
	r, _ = counselor.Get(e.ts.URL + "/v1/users")
	wantProblem(t, r, http.StatusForbidden)

	// A role change takes effect at once: the old session ends.
	if err := e.auth.SetRole(context.Background(), "carol", auth.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	r, _ = counselor.Get(e.ts.URL + "/v1/auth/me")
	wantProblem(t, r, http.StatusUnauthorized)

	admin := e.login("admin")
	r, _ = admin.Get(e.ts.URL + "/v1/users")
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Fatalf("admin GET /v1/users = %d", r.StatusCode)
	}
	r, _ = admin.Post(e.ts.URL+"/v1/auth/logout", "application/json", nil)
	r.Body.Close()
	if r.StatusCode != http.StatusNoContent {
		t.Fatalf("logout = %d", r.StatusCode)
	}
	r, _ = admin.Get(e.ts.URL + "/v1/users")
	wantProblem(t, r, http.StatusUnauthorized)
}

func TestLockout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := 0; i < auth.MaxFailedLogins; i++ {
		resp := e.do(http.MethodPost, "/v1/auth/login", "", map[string]string{"username": "sam", "password": "not the password"})
		wantProblem(t, resp, http.StatusUnauthorized)
	}
	resp := e.do(http.MethodPost, "/v1/auth/login", "", map[string]string{"username": "sam", "password": e.pass})
	wantProblem(t, resp, http.StatusUnauthorized)
	if err := e.auth.Unlock(context.Background(), "sam"); err != nil {
		t.Fatal(err)
	}
	e.login("sam")
}

// TestLockoutIsPerAddressAndTimeBoxed: five wrong passwords from one
// address lock (name, address) for the base duration, doubling with the
// next lock; the same person from another address signs in meanwhile, and
// the account itself is never locked.
func TestLockoutIsPerAddressAndTimeBoxed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const base = 500 * time.Millisecond
	e.auth.SetLockout(base, 4*base)
	ctx := context.Background()
	login := func(pw, addr string) error {
		_, _, err := e.auth.Login(ctx, "admin", pw, addr)
		return err
	}
	for i := 0; i < auth.MaxFailedLogins; i++ {
		if err := login("not the password", "203.0.113.66"); !errors.Is(err, auth.ErrUnauthorized) {
			t.Fatalf("wrong password %d: %v", i+1, err)
		}
	}
	if err := login(e.pass, "203.0.113.66"); !errors.Is(err, auth.ErrLocked) {
		t.Fatalf("right password from the attacker's address while locked: %v, want ErrLocked", err)
	}
	if err := login(e.pass, "198.51.100.1"); err != nil {
		t.Fatalf("the admin from another address: %v, want a session", err)
	}
	if e.auth.Lockouts() != 1 {
		t.Errorf("Lockouts() = %d, want 1", e.auth.Lockouts())
	}
	time.Sleep(base + 100*time.Millisecond)
	// The box ended; the next wrong password locks again, twice as long.
	if err := login("not the password", "203.0.113.66"); !errors.Is(err, auth.ErrLocked) || e.auth.Lockouts() != 2 {
		t.Fatalf("wrong password after the lock ended: %v (%d locks), want locked again", err, e.auth.Lockouts())
	}
	time.Sleep(base + 100*time.Millisecond)
	if err := login(e.pass, "203.0.113.66"); !errors.Is(err, auth.ErrLocked) {
		t.Fatalf("after %v of a doubled lock: %v, want still locked", base+100*time.Millisecond, err)
	}
	time.Sleep(base + 100*time.Millisecond)
	if err := login(e.pass, "203.0.113.66"); err != nil {
		t.Fatalf("after the doubled lock: %v, want a session", err)
	}
	us, err := e.auth.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.Username == "admin" && u.Locked {
			t.Error("the account itself was locked")
		}
	}
}

func TestProblemBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.srv.engine.GET("/test/panic", func(*gin.Context) { panic("boom") })
	admin := e.keys[auth.RoleAdmin]

	wantProblem(t, e.do(http.MethodGet, "/no/such/route", "", nil), http.StatusNotFound)
	resp := e.do(http.MethodDelete, "/v1/auth/me", admin, nil)
	if got := resp.Header.Get("Allow"); got != "GET" {
		t.Errorf("Allow = %q, want GET", got)
	}
	wantProblem(t, resp, http.StatusMethodNotAllowed)
	wantProblem(t, e.do(http.MethodGet, "/test/panic", "", nil), http.StatusInternalServerError)
	if !strings.Contains(e.logs.String(), `"msg":"panic"`) {
		t.Error("panic not logged")
	}

	post := func(body, ctype string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v1/auth/login", strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	wantProblem(t, post(`{"username":`, "application/json"), http.StatusBadRequest)
	wantProblem(t, post(`{"username":"a","password":"b"} {}`, "application/json"), http.StatusBadRequest)
	wantProblem(t, post(`<xml/>`, "text/xml"), http.StatusUnsupportedMediaType)
	wantProblem(t, post(strings.Repeat("[", 100)+strings.Repeat("]", 100), "application/json"), http.StatusBadRequest)
	// Unknown fields are counted, never echoed: a client's keys can hold anything.
	p := wantProblem(t, post(`{"username":"a","password":"b","role":"admin","张三 CANARY":1}`, "application/json"), http.StatusUnprocessableEntity)
	if len(p.Errors) != 1 || p.Errors[0].Field != "(body)" || !strings.HasPrefix(p.Errors[0].Detail, "2 unknown fields") ||
		strings.Contains(fmt.Sprint(p), "CANARY") || strings.Contains(fmt.Sprint(p), "role") {
		t.Errorf("unknown field errors = %+v, want a count of 2 naming neither", p.Errors)
	}
	p = wantProblem(t, post(`{"username":1,"password":"b"}`, "application/json"), http.StatusUnprocessableEntity)
	if len(p.Errors) != 1 || p.Errors[0].Field != "username" {
		t.Errorf("wrong type errors = %+v, want one naming username", p.Errors)
	}
}

func TestOversizedBodyRefusedUnread(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// A 2 MiB body that is never fully sent: a server that tried to read it
	// whole would block; the answer must come from the declared length.
	pr, pw := io.Pipe()
	go func() {
		pw.Write(bytes.Repeat([]byte("a"), 64<<10))
		// Never write the rest; close only when the test ends.
	}()
	t.Cleanup(func() { pw.Close() })
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v1/auth/login", pr)
	req.ContentLength = 2 << 20
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("oversized request: %v", err)
	}
	wantProblem(t, resp, http.StatusRequestEntityTooLarge)

	// Chunked, without a declared length: cut off at the limit.
	req, _ = http.NewRequest(http.MethodPost, e.ts.URL+"/v1/auth/login", io.MultiReader(strings.NewReader(`{"username":"`), bytes.NewReader(bytes.Repeat([]byte("a"), 2<<20)), strings.NewReader(`"}`)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wantProblem(t, resp, http.StatusRequestEntityTooLarge)
}

// proxy forwards TCP to target and can be cut and restored, standing in for
// a database that goes away and comes back.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	down   bool
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

func TestReadinessFollowsDatabase(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	direct := postgres.DefaultConfig()
	direct.URL = url
	setup, err := postgres.Open(context.Background(), direct)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(setup.Close)

	host := strings.Split(strings.Split(url, "@")[1], "/")[0]
	px := newProxy(t, host)
	viaProxy := direct
	viaProxy.URL = strings.Replace(url, host, px.ln.Addr().String(), 1)
	viaProxy.ConnectTimeout = time.Second
	viaProxy.AcquireTimeout = time.Second
	db, err := postgres.New(viaProxy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	e := newEnvOn(t, setup, Check{Name: "database", Fn: db.Ping}, Check{Name: "migrations", Fn: db.CheckSchema})

	ready := func() int {
		resp := e.do(http.MethodGet, "/readyz", "", nil)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := ready(); got != http.StatusOK {
		t.Fatalf("readyz with database up = %d, want 200", got)
	}
	px.setDown(true)
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Fatalf("readyz with database down = %d, want 503", got)
	}
	resp := e.do(http.MethodGet, "/healthz", "", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz with database down = %d, want 200", resp.StatusCode)
	}
	px.setDown(false)
	deadline := time.Now().Add(10 * time.Second)
	for ready() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("readyz did not recover after the database came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestShutdownDrainsInFlight(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	started, release := make(chan struct{}), make(chan struct{})
	e.srv.engine.GET("/test/slow", func(c *gin.Context) {
		close(started)
		<-release // finishes only when the test says so
		c.String(http.StatusOK, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.srv.Serve(ctx, ln) }()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/test/slow")
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	cancel()
	// Readiness fails while the request is still in flight.
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec := httptest.NewRecorder()
		e.srv.engine.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if rec.Code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz during shutdown = %d, want 503", rec.Code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if body := <-got; body != "done" {
		t.Errorf("in-flight request got %q, want done", body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after graceful shutdown", err)
	}
}

func TestAccessLogHasNoBodies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const canary = "CANARY-7f3a9"
	resp := e.do(http.MethodPost, "/v1/auth/login", "", map[string]string{"username": "carol", "password": canary})
	wantProblem(t, resp, http.StatusUnauthorized)
	resp = e.do(http.MethodPost, "/v1/auth/login", "", map[string]string{"username": canary, "password": canary, "extra": canary})
	p := wantProblem(t, resp, http.StatusUnprocessableEntity)
	if b, _ := json.Marshal(p); bytes.Contains(b, []byte(canary)) {
		t.Errorf("problem body echoes the request: %s", b)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"request"`) {
		t.Fatal("no access log lines")
	}
	if strings.Contains(logs, canary) {
		t.Errorf("logs contain the request body: %s", logs)
	}
}

func TestOpenAPIMatchesRouter(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	resp := e.do(http.MethodGet, "/openapi.json", "", nil)
	defer resp.Body.Close()
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	inDoc := map[string]bool{}
	for path, ops := range doc.Paths {
		for m := range ops {
			inDoc[strings.ToUpper(m)+" "+path] = true
		}
	}
	inRouter := map[string]bool{}
	for _, r := range e.srv.EngineRoutes() {
		if strings.HasPrefix(r.Path, "/v1/") {
			inRouter[r.Method+" "+OpenAPIPath(r.Path)] = true
		}
	}
	for op := range inRouter {
		if !inDoc[op] {
			t.Errorf("%s is served but missing from /openapi.json", op)
		}
	}
	for op := range inDoc {
		if !inRouter[op] {
			t.Errorf("%s is in /openapi.json but not served", op)
		}
	}
	if len(inRouter) == 0 {
		t.Fatal("no /v1 routes")
	}
}

// scrape returns the metrics listener's /metrics.
func (e *env) scrape() []byte {
	e.t.Helper()
	resp, err := http.Get(e.metrics.URL + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET /metrics = %d", resp.StatusCode)
	}
	return b
}

func TestMetricsExposed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.do(http.MethodGet, "/v1/users", "", nil).Body.Close()
	b := e.scrape()
	// Not on the service port.
	resp := e.do(http.MethodGet, "/metrics", "", nil)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("GET /metrics on the service port = 200, want it served only on the metrics listener")
	}
	for _, want := range []string{
		`sunpath_http_request_duration_seconds_bucket{method="GET",route="/v1/users",status="401"`,
		"sunpath_http_requests_in_flight",
		`sunpath_build_info{`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestDepth(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{`{}`, 1},
		{`{"a":[1,{"b":2}]}`, 3},
		{`"[[[["`, 0},
		{`{"a":"\"[["}`, 1},
		{`]]]`, 0},
	}
	for _, tt := range tests {
		if got := depth([]byte(tt.in)); got != tt.want {
			t.Errorf("depth(%s) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// FuzzDecodeJSON: no input makes the decoder panic or fail without one of
// the errors that map to a 4xx.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"username":"a","password":"b"}`, `{`, `[]`, `{"username":1}`, `{"x":1}`, `null`, ``, `{"username":"a"} 1`, strings.Repeat("[", 40)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req loginRequest
		err := decodeJSONBytes(b, &req)
		if err == nil {
			return
		}
		if code := status(err); code < 400 || code >= 500 {
			t.Fatalf("decodeJSONBytes(%q) error %v maps to %d, want 4xx", b, err, code)
		}
		var inv *problem.Invalid
		if errors.As(err, &inv) && len(inv.Errors) == 0 {
			t.Fatal("empty Invalid")
		}
	})
}

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
