package web

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nicksnyder/go-i18n/v2/i18n"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/riskmodel"
	"github.com/sunpath/sunpath/internal/testfix"
)

func TestSigninPageLanguage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	for _, tt := range []struct {
		accept, lang string
		want         []string
	}{
		{"zh-CN,zh;q=0.9,en;q=0.8", "zh-CN", []string{"登录", "用户名", "密码"}},
		{"en-US,en;q=0.9", "en", []string{"Sign in", "Username", "Password"}},
		{"", "zh-CN", []string{"登录"}},
		{"fr-FR", "zh-CN", []string{"登录"}},
	} {
		resp, body := e.get(c, "/", "Accept-Language", tt.accept)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET / (Accept-Language %q) = %d", tt.accept, resp.StatusCode)
		}
		if !strings.Contains(body, `<html lang="`+tt.lang+`">`) {
			t.Errorf("GET / (Accept-Language %q): page language is not %s", tt.accept, tt.lang)
		}
		for _, w := range tt.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET / (Accept-Language %q): no %q on the sign-in page", tt.accept, w)
			}
		}
		if !strings.Contains(body, `action="/signin"`) {
			t.Errorf("GET / (Accept-Language %q) is not the sign-in form", tt.accept)
		}
	}
	// The switcher's cookie wins over the header.
	resp := e.post(c, "/language", url.Values{"lang": {"en"}, "next": {"/"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("POST /language = %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := e.get(c, "/", "Accept-Language", "zh-CN"); !strings.Contains(body, "Sign in") {
		t.Error("the language cookie did not win over Accept-Language")
	}
}

// pageHeaders are the headers every page carries.
var pageHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"X-Frame-Options":         "DENY",
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("P-1", "west", "carol", "王五", nil)
	anon, carol := e.client(), e.client()
	e.signin(carol, "carol")
	for _, tt := range []struct {
		c      *http.Client
		path   string
		status int
	}{
		{anon, "/", http.StatusOK},
		{anon, "/signin", http.StatusOK},
		{anon, "/subjects/P-1", http.StatusSeeOther},
		{anon, "/no/such/page", http.StatusNotFound},
		{anon, "/kiosk", http.StatusOK},
		{carol, "/", http.StatusOK},
		{carol, "/subjects/P-1", http.StatusOK},
		{carol, "/flags", http.StatusOK},
		{carol, "/admin/users", http.StatusForbidden},
		{carol, "/models/nij-review/", http.StatusOK},
	} {
		resp, body := e.get(tt.c, tt.path)
		if resp.StatusCode != tt.status {
			t.Errorf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.status)
		}
		for k, v := range pageHeaders {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("GET %s: %s = %q, want %q", tt.path, k, got, v)
			}
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("GET %s: Cache-Control = %q, want no-store", tt.path, got)
		}
		if resp.Header.Get("Strict-Transport-Security") != "" {
			t.Errorf("GET %s: HSTS on plain HTTP", tt.path)
		}
		// No inline script or style: the CSP would block it.
		if regexp.MustCompile(`<script>|<script [^>]*>[^<]|<style|style="|\son[a-z]+="`).MatchString(body) {
			t.Errorf("GET %s: inline script, style or event handler in the page", tt.path)
		}
	}
	// Static assets: the same headers, cacheable.
	resp, _ := e.get(anon, strings.Split(mustAsset(t, e, "app.css"), "?")[0])
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Errorf("GET app.css = %d %v", resp.StatusCode, resp.Header)
	}
	// HSTS when the request came over TLS.
	req := httptest.NewRequest(http.MethodGet, "https://sunpath.example/signin", nil)
	req.TLS = &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	e.ui.ServeHTTP(rec, req)
	if got := rec.Header().Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Errorf("TLS request: Strict-Transport-Security = %q", got)
	}
}

func mustAsset(t *testing.T, e *env, name string) string {
	t.Helper()
	_, body := e.get(e.client(), "/signin")
	m := regexp.MustCompile(`/static/` + regexp.QuoteMeta(name) + `\?v=[0-9a-f]+`).FindString(body)
	if m == "" {
		t.Fatalf("no link to %s in the page", name)
	}
	return m
}

func TestRedirectToSignin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	for _, tt := range []struct{ method, path, want string }{
		{http.MethodGet, "/subjects/P-1", "/signin?next=%2Fsubjects%2FP-1"},
		{http.MethodGet, "/flags", "/signin?next=%2Fflags"},
		{http.MethodGet, "/admin/users", "/signin?next=%2Fadmin%2Fusers"},
		{http.MethodPost, "/flags/00000000-0000-0000-0000-000000000000/acknowledge", "/signin"},
	} {
		var resp *http.Response
		if tt.method == http.MethodGet {
			resp, _ = e.get(c, tt.path)
		} else {
			resp = e.post(c, tt.path, url.Values{})
		}
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != tt.want {
			t.Errorf("%s %s = %d → %q, want 303 → %q", tt.method, tt.path, resp.StatusCode, resp.Header.Get("Location"), tt.want)
		}
	}
	// After signing in, the page asked for; never another site.
	for next, want := range map[string]string{"/flags": "/flags", "//evil.example/x": "/", "https://evil.example": "/", "/\\evil": "/"} {
		c := e.client()
		resp := e.post(c, "/signin", url.Values{"username": {"carol"}, "password": {e.pass}, "next": {next}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("sign in with next=%q → %d %q, want %q", next, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	// A wrong password: one message, no session, audited as denied.
	c = e.client()
	resp := e.post(c, "/signin", url.Values{"username": {"carol"}, "password": {"wrong password!"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong password = %d, want 401", resp.StatusCode)
	}
	if resp, _ := e.get(c, "/flags"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after a failed sign-in GET /flags = %d, want 303", resp.StatusCode)
	}
	if !hasEvent(t, e, "user:carol", "auth.login", audit.Denied) {
		t.Error("failed sign-in not audited")
	}
}

func hasEvent(t *testing.T, e *env, actor, action string, outcome audit.Outcome) bool {
	t.Helper()
	evs, err := e.audit.List(context.Background(), audit.Filter{Actor: actor, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Action == action && ev.Outcome == outcome {
			if ev.RequestID == "" {
				t.Errorf("audit event %s of %s has no request id", action, actor)
			}
			return true
		}
	}
	return false
}

func TestOtherUnitSubjectIsNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("W-1", "west", "carol", "西区对象", nil)
	e.putSubject("E-1", "east", "dave", "东区对象", nil)
	carol := e.client()
	e.signin(carol, "carol")
	resp, body := e.get(carol, "/subjects/W-1")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "西区对象") {
		t.Fatalf("own subject = %d", resp.StatusCode)
	}
	resp, other := e.get(carol, "/subjects/E-1")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("another unit's subject = %d, want 404", resp.StatusCode)
	}
	if strings.Contains(other, "东区对象") || strings.Contains(other, "dave") || strings.Contains(other, "east") {
		t.Error("the 404 page reveals something about the other unit's subject")
	}
	_, missing := e.get(carol, "/subjects/NOBODY")
	if strings.ReplaceAll(other, "/subjects/E-1", "") != strings.ReplaceAll(missing, "/subjects/NOBODY", "") {
		t.Error("the 404 for another unit's subject differs from the 404 for nobody")
	}
	if !hasEvent(t, e, "user:carol", "subject.read", audit.Denied) {
		t.Error("the denied read is not audited")
	}
	// The supervisor of east sees it; a supervisor of west does not.
	sam := e.client()
	e.signin(sam, "sam")
	if resp, _ := e.get(sam, "/subjects/E-1"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("west supervisor reading an east subject = %d, want 404", resp.StatusCode)
	}
	// Sessions of another unit's subject are not found either.
	var sess casework.Session
	e.api(http.MethodPost, "/v1/subjects/E-1/sessions", e.admin, map[string]any{"instruments": []string{"phq9"}, "language": "zh-CN"}, http.StatusCreated, &sess)
	for _, p := range []string{"/sessions/" + sess.ID + "/q", "/sessions/" + sess.ID + "/review", "/sessions/" + sess.ID + "/result"} {
		if resp, _ := e.get(carol, p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s of another unit = %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	e.signin(c, "carol")
	if resp, body := e.get(c, "/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="/signout"`) {
		t.Fatalf("signed-in home = %d", resp.StatusCode)
	}
	u, _ := url.Parse(e.ts.URL)
	var token string
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			token = ck.Value
		}
	}
	if token == "" {
		t.Fatal("no session cookie after sign-in")
	}
	resp := e.post(c, "/signout", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("POST /signout = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cleared bool
	for _, ck := range resp.Cookies() {
		if ck.Name == sessionCookie && ck.MaxAge < 0 && ck.HttpOnly && ck.SameSite == http.SameSiteStrictMode {
			cleared = true
		}
	}
	if !cleared {
		t.Error("sign-out did not clear the session cookie")
	}
	// The old token is revoked on the server, not only forgotten.
	stale := e.client()
	stale.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: token, Path: "/"}})
	if resp, _ := e.get(stale, "/flags"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET /flags with the signed-out token = %d, want 303 to sign-in", resp.StatusCode)
	}
	if resp, body := e.get(stale, "/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="/signin"`) {
		t.Errorf("GET / with the signed-out token is not the sign-in page")
	}
	// The API agrees: the UI's cookie is the API's.
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/v1/auth/me", nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: token})
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("API with the signed-out token = %d, want 401", r.StatusCode)
	}
}

func TestSigninCookieAttributes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	resp := e.post(e.client(), "/signin", url.Values{"username": {"carol"}, "password": {e.pass}})
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.MaxAge != 12*3600 {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Strict, Path=/, Max-Age 12h", ck)
	}
	// The cookie works for the JSON API as it does for pages.
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/v1/auth/me", nil)
	req.AddCookie(ck)
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusOK {
		t.Errorf("API with the UI's cookie = %d", r.StatusCode)
	}
}

func TestRolesAndForbiddenPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	carol, sam, admin, audrey := e.client(), e.client(), e.client(), e.client()
	e.signin(carol, "carol")
	e.signin(sam, "sam")
	e.signin(admin, "admin")
	e.signin(audrey, "audrey")
	for _, tt := range []struct {
		c    *http.Client
		path string
		want int
	}{
		{carol, "/admin/users", http.StatusForbidden},
		{carol, "/admin/keys", http.StatusForbidden},
		{carol, "/dashboard", http.StatusOK}, // their caseload's figures, as GET /v1/dashboard
		{carol, "/overrides", http.StatusOK},
		{sam, "/dashboard", http.StatusOK},
		{sam, "/admin/units", http.StatusForbidden},
		{admin, "/admin/users", http.StatusOK},
		{admin, "/admin/keys", http.StatusOK},
		{admin, "/admin/units", http.StatusOK},
		{audrey, "/", http.StatusOK},
		{audrey, "/flags", http.StatusForbidden},
		{carol, "/models", http.StatusOK},
		{carol, "/models/nij-review/calibration.svg", http.StatusOK},
		{carol, "/models/nope/", http.StatusNotFound},
	} {
		resp, body := e.get(tt.c, tt.path)
		if resp.StatusCode != tt.want {
			t.Errorf("GET %s = %d, want %d", tt.path, resp.StatusCode, tt.want)
		}
		if tt.want == http.StatusForbidden && !strings.Contains(body, "无权访问") {
			t.Errorf("GET %s: 403 is not the friendly page", tt.path)
		}
	}
	if resp := e.post(carol, "/overrides/00000000-0000-0000-0000-000000000000/approve", nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("counselor approving = %d, want 403", resp.StatusCode)
	}
	if resp, _ := e.get(admin, "/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/users" {
		t.Errorf("admin home = %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestModelCard(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	e.signin(c, "sam")
	_, body := e.get(c, "/models/nij-review/")
	for _, want := range []string{"<h1>Model card: nij-review", "<table>", `<img src="calibration.svg"`, "仅供参考"} {
		if !strings.Contains(body, want) {
			t.Errorf("model card page lacks %q", want)
		}
	}
	resp, svg := e.get(c, "/models/nij-review/calibration.svg")
	if resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.HasPrefix(svg, "<svg") {
		t.Errorf("calibration.svg = %s %.20q", resp.Header.Get("Content-Type"), svg)
	}
	if resp, _ := e.get(c, "/models/nij-review"); resp.StatusCode != http.StatusMovedPermanently && resp.StatusCode != http.StatusNotFound {
		t.Logf("GET /models/nij-review = %d", resp.StatusCode)
	}
}

// TestFlagsAndOverrides walks the supervisor's pages over HTTP:
// acknowledge and resolve a flag; a self-approval refused with its message;
// another supervisor's approval. Notes carry a canary that must never
// reach the logs.
func TestFlagsAndOverrides(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const canary = "CANARY-7f3a"
	e.putSubject("P-9", "west", "carol", "张三"+canary, testfix.NIJProfile(t))
	e.phq9At("P-9", 1, 1, 1, 1, 1, 1, 1, 1, 1, 2) // item 9 ≥ 1: urgent flag
	var rec casework.Recommendation
	e.api(http.MethodPost, "/v1/subjects/P-9/recommendations", e.cms, map[string]string{"model": "nij-review"}, http.StatusCreated, &rec)

	sam, sue := e.client(), e.client()
	e.signin(sam, "sam")
	e.signin(sue, "sue")
	_, body := e.get(sam, "/flags")
	m := regexp.MustCompile(`action="/flags/([0-9a-f-]{36})/acknowledge"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no acknowledge form in the flag queue")
	}
	flagID := m[1]
	if resp := e.post(sam, "/flags/"+flagID+"/acknowledge", nil); resp.Header.Get("Location") != "/flags?done=acknowledged" {
		t.Fatalf("acknowledge → %q", resp.Header.Get("Location"))
	}
	if resp := e.post(sam, "/flags/"+flagID+"/acknowledge", nil); resp.Header.Get("Location") != "/flags?error=not_open" {
		t.Errorf("second acknowledge → %q", resp.Header.Get("Location"))
	}
	if resp := e.post(sam, "/flags/"+flagID+"/resolve", url.Values{"resolution_code": {"nonsense"}, "note": {"x"}}); resp.Header.Get("Location") != "/flags?error=resolve_invalid" {
		t.Errorf("resolve with a bad code → %q", resp.Header.Get("Location"))
	}
	if resp := e.post(sam, "/flags/"+flagID+"/resolve", url.Values{"resolution_code": {"safety_plan_made"}, "intervention": {"individual_counselling", "family_contacted"}, "note": {"安全计划 " + canary}, "subject": {"P-9"}}); resp.Header.Get("Location") != "/subjects/P-9?done=resolved#flags" {
		t.Errorf("resolve → %q", resp.Header.Get("Location"))
	}
	var fl casework.Flag
	e.api(http.MethodGet, "/v1/flags/"+flagID, e.admin, nil, http.StatusOK, &fl)
	if fl.Status != "resolved" || fl.ResolutionCode != "safety_plan_made" || fl.AcknowledgedBy != "user:sam" || len(fl.Interventions) != 2 || fl.FollowUpDue == nil {
		t.Errorf("flag after the UI = %+v", fl)
	}

	// Sam requests an override on the subject page, then tries to approve it.
	_, body = e.get(sam, "/subjects/P-9")
	for _, want := range []string{"模型建议的等级（仅供参考）", "仅供参考：", "使估计"} {
		if !strings.Contains(body, want) {
			t.Errorf("subject page lacks %q", want)
		}
	}
	// The factors are named in Chinese, with the model's own name beside
	// them, and without the model's English description.
	var contribs []riskmodel.Contribution
	if err := json.Unmarshal(rec.Explanation, &contribs); err != nil || len(contribs) == 0 {
		t.Fatalf("explanation %s: %v", rec.Explanation, err)
	}
	bundle, err := newBundle()
	if err != nil {
		t.Fatal(err)
	}
	top := contribs[0].Feature
	label := featureLabel(i18n.NewLocalizer(bundle, "zh-CN"), top)
	if label == top || !strings.Contains(body, html.EscapeString(label)) || !strings.Contains(body, html.EscapeString(top)) {
		t.Errorf("subject page does not name the top factor %q as %q", top, label)
	}
	for _, f := range testfix.Models(t)["nij-review"].InputFields() {
		if f.Name == top && strings.Contains(body, html.EscapeString(strings.TrimSuffix(f.Description, "."))) {
			t.Errorf("Chinese page shows the English description of %s", top)
		}
	}
	want := casework.Strict
	if rec.Tier == casework.Strict {
		want = casework.Lenient
	}
	resp := e.post(sam, "/recommendations/"+rec.ID+"/overrides", url.Values{"subject": {"P-9"}, "tier": {string(want)}, "reason_code": {"new_information"}, "note": {"新情况 " + canary}})
	if resp.Header.Get("Location") != "/subjects/P-9?done=override_requested#recommendation" {
		t.Fatalf("override request → %q", resp.Header.Get("Location"))
	}
	_, body = e.get(sam, "/overrides")
	m = regexp.MustCompile(`formaction="/overrides/([0-9a-f-]{36})/approve"`).FindStringSubmatch(body)
	if m == nil || !strings.Contains(body, "新情况 "+canary) || !strings.Contains(body, "这是您本人提交的申请") {
		t.Fatal("the pending override is not shown with its note and the own-request notice")
	}
	ovID := m[1]
	if resp := e.post(sam, "/overrides/"+ovID+"/approve", nil); resp.Header.Get("Location") != "/overrides?error=self_approval" {
		t.Fatalf("self-approval → %q, want the refusal", resp.Header.Get("Location"))
	}
	if _, body := e.get(sam, "/overrides?error=self_approval"); !strings.Contains(body, "不能审批自己提交的申请") {
		t.Error("the self-approval refusal is not shown")
	}
	if resp := e.post(sue, "/overrides/"+ovID+"/approve", url.Values{"note": {"同意 " + canary}}); resp.Header.Get("Location") != "/overrides?done=approved" {
		t.Fatalf("approval by another supervisor → %q", resp.Header.Get("Location"))
	}
	var subj casework.Subject
	e.api(http.MethodGet, "/v1/subjects/P-9", e.admin, nil, http.StatusOK, &subj)
	if subj.Tier == nil || *subj.Tier != want || subj.TierSource != "override" {
		t.Errorf("tier after approval = %v %s, want %s from override", subj.Tier, subj.TierSource, want)
	}
	if _, body := e.get(sue, "/dashboard"); !strings.Contains(body, "单位概览") || !strings.Contains(body, "<meter") {
		t.Error("dashboard does not render")
	}
	if strings.Contains(e.logs.String(), canary) {
		t.Error("a name or note reached the logs")
	}
}

func TestAdminPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.client()
	e.signin(admin, "admin")
	// A user with a generated password, shown once.
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/admin/users", strings.NewReader(url.Values{"username": {"nina"}, "role": {"counselor"}, "unit": {"west"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := admin.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`<code id="new-password">([^<]+)</code>`).FindStringSubmatch(readAll(resp))
	if resp.StatusCode != http.StatusCreated || m == nil {
		t.Fatalf("create user = %d, no password shown", resp.StatusCode)
	}
	nina := e.client()
	if resp := e.post(nina, "/signin", url.Values{"username": {"nina"}, "password": {m[1]}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the new user cannot sign in: %d", resp.StatusCode)
	}
	if resp := e.post(admin, "/admin/users", url.Values{"username": {"nina"}, "role": {"counselor"}, "unit": {"west"}, "password": {"long enough password"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("duplicate user = %d, want 422", resp.StatusCode)
	}
	if resp := e.post(admin, "/admin/users", url.Values{"username": {"ned"}, "role": {"counselor"}, "password": {"long enough password"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("counselor without a unit = %d, want 422", resp.StatusCode)
	}
	for _, tt := range []struct{ action, want string }{
		{"disable", "done=disabled"}, {"enable", "done=enabled"}, {"unlock", "done=unlocked"},
	} {
		if resp := e.post(admin, "/admin/users/nina/"+tt.action, nil); !strings.HasSuffix(resp.Header.Get("Location"), tt.want) {
			t.Errorf("%s → %q", tt.action, resp.Header.Get("Location"))
		}
	}
	if resp := e.post(admin, "/admin/users/nina/role", url.Values{"role": {"supervisor"}}); resp.Header.Get("Location") != "/admin/users?done=role" {
		t.Errorf("set role → %q", resp.Header.Get("Location"))
	}
	if resp, _ := e.get(nina, "/"); resp.StatusCode != http.StatusOK {
		t.Logf("home after role change = %d", resp.StatusCode)
	}
	if resp, _ := e.get(nina, "/flags"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a role change must end the user's sessions: GET /flags = %d", resp.StatusCode)
	}
	if resp := e.post(admin, "/admin/users/admin/disable", nil); resp.Header.Get("Location") != "/admin/users?error=self" {
		t.Errorf("disabling oneself → %q", resp.Header.Get("Location"))
	}
	if resp := e.post(admin, "/admin/users/nina/password", url.Values{"password": {"short"}}); resp.Header.Get("Location") != "/admin/users?error=password_short" {
		t.Errorf("short password → %q", resp.Header.Get("Location"))
	}
	if !hasEvent(t, e, "user:admin", "user.disable", audit.Success) {
		t.Error("account change not audited")
	}

	// API keys: shown once, then only the prefix; revocable.
	req, _ = http.NewRequest(http.MethodPost, e.ts.URL+"/admin/keys", strings.NewReader(url.Values{"name": {"cms-prod"}, "role": {"case_system"}, "unit": {"hz"}, "expires_days": {"30"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = admin.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	m = regexp.MustCompile(`<code id="new-key">(spk_[^<]+)</code>`).FindStringSubmatch(readAll(resp))
	if resp.StatusCode != http.StatusCreated || m == nil {
		t.Fatalf("create key = %d, no key shown", resp.StatusCode)
	}
	key := m[1]
	e.api(http.MethodGet, "/v1/subjects", key, nil, http.StatusOK, nil)
	if _, body := e.get(admin, "/admin/keys"); strings.Contains(body, key) {
		t.Error("the key list shows a secret")
	}
	_, body := e.get(admin, "/admin/keys")
	ids := regexp.MustCompile(`action="/admin/keys/(\d+)/revoke"`).FindAllStringSubmatch(body, -1)
	revoked := false
	for _, id := range ids {
		if resp := e.post(admin, "/admin/keys/"+id[1]+"/revoke", nil); resp.Header.Get("Location") == "/admin/keys?done=revoked" {
			revoked = true
		}
	}
	if !revoked {
		t.Fatal("no key revoked")
	}
	e.api(http.MethodGet, "/v1/subjects", key, nil, http.StatusUnauthorized, nil)

	// Units: create, rename, refuse a bad code.
	if resp := e.post(admin, "/admin/units", url.Values{"code": {"north"}, "name": {"北区"}, "agency": {"hz"}}); resp.Header.Get("Location") != "/admin/units?done=saved" {
		t.Errorf("create unit → %q", resp.Header.Get("Location"))
	}
	if resp := e.post(admin, "/admin/units", url.Values{"code": {"north"}, "name": {"北区矫正中心"}}); resp.Header.Get("Location") != "/admin/units?done=saved" {
		t.Errorf("rename unit → %q", resp.Header.Get("Location"))
	}
	if resp := e.post(admin, "/admin/units", url.Values{"code": {"bad code!"}, "name": {"x"}}); resp.Header.Get("Location") != "/admin/units?error=invalid" {
		t.Errorf("bad unit code → %q", resp.Header.Get("Location"))
	}
	if _, body := e.get(admin, "/admin/units"); !strings.Contains(body, "北区矫正中心") {
		t.Error("renamed unit not listed")
	}
}

func TestKioskLinkInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c := e.client()
	for _, p := range []string{"/kiosk?t=spq_garbage", "/kiosk/q", "/kiosk/review"} {
		resp, body := e.get(c, p)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "链接无效") {
			t.Errorf("GET %s = %d, want the invalid-link page", p, resp.StatusCode)
		}
		if strings.Contains(body, `href="/"`) {
			t.Errorf("GET %s: a kiosk page links out", p)
		}
	}
}

// TestScreeningOverHTTP administers a PHQ-9 through the step pages without
// a browser: autosave, resume, a refused submission shown on the review, and
// the result.
func TestScreeningOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("P-3", "west", "carol", "赵六", nil)
	c := e.client()
	e.signin(c, "carol")
	resp := e.post(c, "/subjects/P-3/sessions", url.Values{"instrument": {"phq9"}, "language": {"en"}, "mode": {"step"}})
	loc := resp.Header.Get("Location")
	if !regexp.MustCompile(`^/sessions/[0-9a-f-]{36}/q$`).MatchString(loc) {
		t.Fatalf("start screening → %d %q", resp.StatusCode, loc)
	}
	base := strings.TrimSuffix(loc, "/q")
	for i := 1; i <= 8; i++ {
		resp := e.post(c, base+"/answer", url.Values{"inst": {"phq9"}, "item": {"phq9_" + itoa(i)}, "value": {"0"}})
		want := base + "/q?item=phq9.phq9_" + itoa(i+1)
		if resp.Header.Get("Location") != want {
			t.Fatalf("answer %d → %q, want %q", i, resp.Header.Get("Location"), want)
		}
	}
	if resp := e.post(c, base+"/answer", url.Values{"inst": {"phq9"}, "item": {"phq9_1"}, "value": {"7"}}); resp.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("an answer that is no option = %d, want 422", resp.StatusCode)
	}
	// Resuming lands on the first unanswered question.
	_, body := e.get(c, base+"/q")
	if !strings.Contains(body, `name="item" value="phq9_9"`) || !strings.Contains(body, "第 9 题，共 10 题") {
		t.Error("resume does not show the first unanswered question")
	}
	// Submitting without item 9 is refused and shown on the review.
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+base+"/submit", nil)
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(r); r.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "此题需要回答。") {
		t.Fatalf("submit without item 9 = %d", r.StatusCode)
	}
	e.post(c, base+"/answer", url.Values{"inst": {"phq9"}, "item": {"phq9_9"}, "value": {"0"}})
	if resp := e.post(c, base+"/submit", nil); resp.Header.Get("Location") != base+"/result" {
		t.Fatalf("submit → %q", resp.Header.Get("Location"))
	}
	_, body = e.get(c, base+"/result")
	if !strings.Contains(body, "<strong>0</strong> / 27") || strings.Contains(body, `role="alert"`) {
		t.Error("result page: want total 0/27 and no alert")
	}
	// The session is closed: its pages go to the result.
	if resp, _ := e.get(c, base+"/q"); resp.Header.Get("Location") != base+"/result" {
		t.Errorf("question page of a submitted session → %q", resp.Header.Get("Location"))
	}
	// The full form saves with htmx (a status fragment) and without (a redirect).
	resp = e.post(c, "/subjects/P-3/sessions", url.Values{"instrument": {"gad7"}, "language": {"zh-CN"}, "mode": {"form"}})
	form := resp.Header.Get("Location")
	if !strings.HasSuffix(form, "/form") {
		t.Fatalf("start form → %q", form)
	}
	req, _ = http.NewRequest(http.MethodPost, e.ts.URL+form, strings.NewReader(url.Values{"a.gad7.gad7_1": {"2"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("HX-Request", "true")
	r, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := readAll(r); r.StatusCode != http.StatusOK || !strings.Contains(body, "已自动保存") || strings.Contains(body, "<html") {
		t.Errorf("htmx autosave = %d %q", r.StatusCode, body)
	}
	if _, body := e.get(c, form); !strings.Contains(body, `name="a.gad7.gad7_1" value="2" checked`) {
		t.Error("the autosaved answer is not checked on the form")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestMessagesComplete(t *testing.T) {
	files := map[string]map[string]any{}
	for _, l := range langNames {
		b, err := localeFS.ReadFile("locales/active." + l + ".json")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]any{}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		files[l] = m
	}
	for _, a := range langNames {
		for _, b := range langNames {
			for k := range files[a] {
				if _, ok := files[b][k]; !ok {
					t.Errorf("message %s is in %s but not in %s", k, a, b)
				}
			}
		}
	}
	// Every message id a template names literally exists.
	re := regexp.MustCompile(`\{\{T "([a-z0-9._]+)"`)
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := templateFS.ReadFile(p)
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			if _, ok := files["zh-CN"][m[1]]; !ok {
				t.Errorf("%s: message %s is missing", p, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Codes the pages translate by prefix.
	for prefix, codes := range map[string][]string{
		"tier.": {"lenient", "ordinary", "strict", "unassigned"}, "resolution.": casework.ResolutionCodes,
		"reason.": casework.OverrideReasons, "supervision.": casework.SupervisionTypes,
		"role.": {"admin", "supervisor", "counselor", "case_system", "auditor"}, "level.": {"critical", "urgent", "review"},
		"direction.": {"stricter", "more_lenient", "same"}, "flag.status.": {"open", "acknowledged", "resolved"},
		"subject.error.": subjectErrors, "subject.done.": subjectNotices, "flags.done.": flagNotices, "flags.error.": flagErrors,
		"overrides.done.": overrideNotices, "overrides.error.": overrideErrors, "users.done.": userNotices, "users.error.": userErrors,
		"keys.done.": keyNotices, "keys.error.": keyErrors,
		"error.":   {"notfound", "forbidden", "internal", "unavailable", "badrequest", "badanswer"},
		"quality.": {"too_fast", "straight_lining"}, "change.": {"improved", "deteriorated", "none"},
	} {
		for _, c := range codes {
			if _, ok := files["en"][prefix+c]; !ok {
				t.Errorf("message %s%s is missing", prefix, c)
			}
		}
	}
	// The English advisory is the store's notice, word for word.
	if got := files["en"]["rec.advisory.title"].(string) + " " + files["en"]["rec.advisory"].(string); got != casework.AdvisoryNotice {
		t.Errorf("English advisory = %q, want casework.AdvisoryNotice %q", got, casework.AdvisoryNotice)
	}
}

func TestVendoredHTMX(t *testing.T) {
	b, err := staticFS.ReadFile("static/htmx.min.js")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	notes, err := os.ReadFile("static/VENDOR.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(notes), hex.EncodeToString(sum[:])) {
		t.Errorf("static/htmx.min.js sha256 %x is not the one VENDOR.md records", sum)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"": "/", "/": "/", "/flags": "/flags", "/subjects/P-1?x=1": "/subjects/P-1?x=1",
		"//evil.example": "/", "/\\evil": "/", "https://evil.example": "/", "javascript:alert(1)": "/", "/a\nb": "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTrendSVG(t *testing.T) {
	def, _ := testfix.Catalog(t).Get("phq9")
	v := func(n int) *int { return &n }
	now := time.Now()
	pts := []casework.TrendPoint{
		{CompletedAt: now.AddDate(0, -2, 0), Total: v(18)},
		{CompletedAt: now.AddDate(0, -1, 0), Total: v(11), ReliableChange: "improved"},
		{CompletedAt: now, Total: v(4), ReliableChange: "improved"},
	}
	svg := string(trendSVG(def, pts, "zh-CN", time.UTC, "c", `<title> & "x"`, "desc"))
	if n := strings.Count(svg, `class="band band-`); n != 5 {
		t.Errorf("%d severity bands drawn, want PHQ-9's 5", n)
	}
	for _, want := range []string{"无或极轻微 0–4", "重度 20–27", `class="trend-line"`, `role="img"`, "&lt;title&gt; &amp; &#34;x&#34;", `class="point improved"`} {
		if !strings.Contains(svg, want) {
			t.Errorf("trend SVG lacks %q", want)
		}
	}
	if strings.Contains(svg, "style=") {
		t.Error("the SVG has inline styles, which the CSP forbids")
	}
	if one := string(trendSVG(def, pts[:1], "en", time.UTC, "c", "t", "d")); !strings.Contains(one, "<circle") || strings.Contains(one, "polyline") {
		t.Error("a single point is not drawn as a point")
	}
}

func TestAskedFollowsSkipLogic(t *testing.T) {
	def, _ := testfix.Catalog(t).Get("asq")
	q5, _ := def.Item("asq_5")
	raw := func(kv ...string) map[string]json.RawMessage {
		m := map[string]json.RawMessage{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = json.RawMessage(kv[i+1])
		}
		return m
	}
	if asked(def, q5, raw("asq_1", "0", "asq_2", "0", "asq_3", "0", "asq_4", "0")) {
		t.Error("ASQ question 5 asked after four noes")
	}
	if !asked(def, q5, raw("asq_1", "1", "asq_2", "0", "asq_3", "0", "asq_4", "0")) {
		t.Error("ASQ question 5 not asked after a yes")
	}
	if !asked(def, q5, raw("asq_1", `"yes"`)) {
		t.Error("ASQ question 5 not asked after a yes given as a code (unanswered items count as yes)")
	}
	if v, ok := selected(q5, json.RawMessage(`true`)); !ok || v != 1 {
		t.Errorf("selected(true) = %d %v, want the yes option", v, ok)
	}
	if _, ok := selected(q5, json.RawMessage(`"maybe"`)); ok {
		t.Error("selected accepted a value that is no option")
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Second: "< 1 min", 15 * time.Minute: "15 min", 90 * time.Minute: "90 min",
		24 * time.Hour: "24 h", 150 * time.Minute: "2.5 h", 7 * 24 * time.Hour: "7 d",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestCrossOriginPostRefused: the UI's forms are protected by the server's
// http.CrossOriginProtection; a form posted from another site is refused
// even with the victim's cookie.
func TestCrossOriginPostRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("P-5", "west", "carol", "孙九", nil)
	c := e.client()
	e.signin(c, "carol")
	for _, h := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		{"Origin": "https://evil.example"},
	} {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/subjects/P-5/sessions", strings.NewReader(url.Values{"instrument": {"phq9"}, "language": {"zh-CN"}, "mode": {"step"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin POST with %v = %d, want 403", h, resp.StatusCode)
		}
	}
	// Same-origin (the browser says so) is accepted.
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/subjects/P-5/sessions", strings.NewReader(url.Values{"instrument": {"phq9"}, "language": {"zh-CN"}, "mode": {"step"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("same-origin POST = %d, want 303", resp.StatusCode)
	}
}

// Every input of every shipped model has a label in each language, so a
// recommendation's factors are never shown by their column names alone.
func TestFeatureLabels(t *testing.T) {
	bundle, err := newBundle()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range langNames {
		loc := i18n.NewLocalizer(bundle, lang)
		for name, m := range testfix.Models(t) {
			for _, f := range m.InputFields() {
				if _, err := loc.Localize(&i18n.LocalizeConfig{MessageID: "feature." + f.Name}); err != nil {
					t.Errorf("%s: model %s input %s has no label", lang, name, f.Name)
				}
			}
		}
	}
}
