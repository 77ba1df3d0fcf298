// Package web is Sunpath's server-rendered user interface: sign-in, the
// counselor's caseload and screening pages, the self-administration kiosk,
// the supervisor's flag queue, override approvals, dashboard and model cards,
// and account administration. Pages are html/template with embedded assets
// and a little progressive enhancement (htmx, vendored); they work without
// JavaScript where reasonable.
//
// Every read or write of a person's data is a use case of casework.Service,
// audited in its own transaction, exactly as the JSON API calls it. The UI logs nothing personal: no names, answers, notes or paths with
// identifiers.
package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzhttp"
	"github.com/nicksnyder/go-i18n/v2/i18n"
	"golang.org/x/text/language"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/refusal"
	"github.com/sunpath/sunpath/internal/riskmodel"
)

// Config is the web UI's configuration.
type Config struct {
	// CookieSecure marks cookies Secure even on plain HTTP (set behind an
	// HTTPS proxy); cookies are always Secure on a TLS request.
	CookieSecure bool
	// MaxBodyBytes bounds every form body.
	MaxBodyBytes int64
	// ModelsDir holds models/<name>/MODEL_CARD.md and calibration.svg.
	ModelsDir string
	// DefaultModel is the model whose recommendations the service makes.
	DefaultModel string
	// Location is the time zone dates are shown in; time.Local when nil.
	Location *time.Location
}

// Deps are the services the pages call.
type Deps struct {
	Log  *slog.Logger
	Auth *auth.Service
	// Casework owns every use case; the pages call it as the API does.
	Casework *casework.Service
	Catalog  *instrument.Catalog
	Models   map[string]*riskmodel.Model
	// Refusals counts rate-limited sign-ins for the audit trail (shared
	// with the API). Optional: without it each is audited on its own.
	Refusals *refusal.Counter
}

// Cookie names. The session cookie is the JSON API's: signing in on a page
// also authenticates the API, and the other way round.
const (
	sessionCookie = "sunpath_session"
	kioskCookie   = "sunpath_kiosk"
	langCookie    = "sunpath_lang"
)

// contentSecurityPolicy forbids inline scripts and styles: every script and
// stylesheet is a static file of this package.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

type server struct {
	cfg     Config
	d       Deps
	log     *slog.Logger
	loc     *time.Location
	mux     *http.ServeMux
	tmpl    map[string]*template.Template
	bundle  *i18n.Bundle
	matcher language.Matcher
	assets  map[string]string // static file → URL with a content version
	cards   sync.Map          // model name → rendered card (template.HTML)
	langs   langCache
	units   unitNames
	staff   staffNames
}

// New returns the UI's root handler. It fails when a template or message
// file is broken, or a required dependency is missing.
func New(cfg Config, d Deps) (http.Handler, error) {
	if d.Log == nil || d.Auth == nil || d.Casework == nil || d.Catalog == nil {
		return nil, errors.New("web: Log, Auth, Casework and Catalog are required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	s := &server{cfg: cfg, d: d, log: d.Log, loc: cfg.Location}
	if s.loc == nil {
		s.loc = time.Local
	}
	var err error
	if s.bundle, err = newBundle(); err != nil {
		return nil, err
	}
	s.matcher = language.NewMatcher(supported)
	if s.assets, err = assetURLs(); err != nil {
		return nil, err
	}
	if s.tmpl, err = s.parseTemplates(); err != nil {
		return nil, err
	}
	s.routes()
	// Pages, stylesheets and scripts go out gzip-compressed to clients that
	// accept it; the random jitter blurs the compressed length of pages that
	// show a secret (a kiosk link) beside text a request chose (BREACH).
	gz, err := gzhttp.NewWrapper(gzhttp.ContentTypes(compressible), gzhttp.RandomJitter(32, 0, false))
	if err != nil {
		return nil, err
	}
	return gz(s.secure(s.mux)), nil
}

// compressible are the media types the UI compresses; workbooks and images
// are compressed already.
var compressible = []string{"text/html", "text/css", "text/javascript", "application/javascript", "image/svg+xml", "text/plain"}

func (s *server) routes() {
	m := http.NewServeMux()
	staff := []auth.Role{auth.RoleAdmin, auth.RoleSupervisor, auth.RoleCounselor}
	admins := []auth.Role{auth.RoleAdmin}
	supervisors := []auth.Role{auth.RoleSupervisor}

	m.Handle("GET /static/", s.staticHandler())
	m.Handle("GET /{$}", s.page(nil, s.home))
	m.Handle("GET /signin", s.public(s.signinPage))
	m.Handle("POST /signin", s.public(s.signin))
	m.Handle("POST /signout", s.public(s.signout))
	m.Handle("POST /language", s.public(s.setLanguage))
	m.Handle("GET /account/password", s.page(nil, s.passwordPage))
	m.Handle("POST /account/password", s.page(nil, s.changePassword))

	m.Handle("GET /subjects/{id}", s.page(staff, s.subjectPage))
	m.Handle("GET /subjects/new", s.page(staff, s.registerPage))
	m.Handle("POST /subjects", s.page(staff, s.saveSubject))
	m.Handle("GET /subjects/{id}/edit", s.page(staff, s.editPage))
	m.Handle("POST /subjects/{id}/edit", s.page(staff, s.saveSubject))
	m.Handle("POST /subjects/{id}/sessions", s.page(staff, s.createSession))
	m.Handle("POST /recommendations/{id}/overrides", s.page([]auth.Role{auth.RoleCounselor, auth.RoleSupervisor}, s.requestOverride))
	m.Handle("POST /recommendations/{id}/accept", s.page([]auth.Role{auth.RoleCounselor, auth.RoleSupervisor}, s.acceptRecommendation))
	m.Handle("POST /subjects/{id}/recommendations", s.page(staff, s.requestRecommendation))
	m.Handle("GET /subjects/{id}/outcomes", s.page(staff, s.outcomesPage))
	m.Handle("POST /subjects/{id}/outcomes", s.page(staff, s.recordOutcome))

	m.Handle("GET /sessions/{id}", s.page(staff, s.staffFlow(s.sessionStart)))
	m.Handle("GET /sessions/{id}/q", s.page(staff, s.staffFlow(s.questionPage)))
	m.Handle("POST /sessions/{id}/answer", s.page(staff, s.staffFlow(s.answer)))
	m.Handle("GET /sessions/{id}/form", s.page(staff, s.staffFlow(s.formPage)))
	m.Handle("POST /sessions/{id}/form", s.page(staff, s.staffFlow(s.saveForm)))
	m.Handle("GET /sessions/{id}/review", s.page(staff, s.staffFlow(s.reviewPage)))
	m.Handle("POST /sessions/{id}/submit", s.page(staff, s.staffFlow(s.submit)))
	m.Handle("GET /sessions/{id}/result", s.page(staff, s.resultPage))
	m.Handle("GET /assessments/{id}", s.page(staff, s.assessmentPage))

	m.Handle("GET /kiosk", s.public(s.kioskEntry))
	m.Handle("POST /kiosk/start", s.public(s.kioskStart))
	m.Handle("GET /kiosk/q", s.kiosk(s.questionPage))
	m.Handle("POST /kiosk/answer", s.kiosk(s.answer))
	m.Handle("GET /kiosk/review", s.kiosk(s.reviewPage))
	m.Handle("POST /kiosk/submit", s.kiosk(s.submit))
	m.Handle("GET /kiosk/thanks", s.public(s.kioskThanks))

	m.Handle("GET /flags", s.page(staff, s.flagsPage))
	m.Handle("GET /flags/live", s.poll(s.liveFlags))
	m.Handle("GET /alerts", s.poll(s.alertsBadge))
	m.Handle("POST /flags/{id}/acknowledge", s.page(staff, s.acknowledgeFlag))
	m.Handle("POST /flags/{id}/resolve", s.page(staff, s.resolveFlag))
	m.Handle("GET /overrides", s.page(staff, s.overridesPage))
	m.Handle("POST /overrides/{id}/approve", s.page(supervisors, s.decideOverride(true)))
	m.Handle("POST /overrides/{id}/reject", s.page(supervisors, s.decideOverride(false)))
	m.Handle("GET /dashboard", s.page(staff, s.dashboardPage))
	m.Handle("GET /dashboard/month.xlsx", s.page(staff, s.exportMonth))
	m.Handle("GET /caseload.xlsx", s.page(staff, s.exportCaseload))
	m.Handle("GET /models", s.page(staff, s.modelsPage))
	m.Handle("GET /models/{name}/{$}", s.page(staff, s.modelPage))
	m.Handle("GET /models/{name}/calibration.svg", s.page(staff, s.calibrationSVG))
	m.Handle("GET /models/{name}/comparison", s.page([]auth.Role{auth.RoleAdmin, auth.RoleSupervisor}, s.comparisonPage))

	m.Handle("GET /admin/users", s.page(admins, s.usersPage))
	m.Handle("POST /admin/users", s.page(admins, s.createUser))
	m.Handle("POST /admin/users/{name}/{action}", s.page(admins, s.changeUser))
	m.Handle("GET /admin/keys", s.page(admins, s.keysPage))
	m.Handle("POST /admin/keys", s.page(admins, s.createKey))
	m.Handle("POST /admin/keys/{id}/revoke", s.page(admins, s.revokeKey))
	m.Handle("GET /admin/units", s.page(admins, s.unitsPage))
	m.Handle("POST /admin/units", s.page(admins, s.putUnit))

	m.Handle("/", s.public(func(rq *request) { rq.notFound() }))
	s.mux = m
}

// secure sets the security headers on every response, bounds form bodies
// and keeps pages with personal data out of every cache.
func (s *server) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		if r.Body != nil {
			if r.ContentLength > s.cfg.MaxBodyBytes {
				http.Error(w, http.StatusText(http.StatusRequestEntityTooLarge), http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// request is one page request: who asks, in which language, and helpers to
// answer it.
type request struct {
	s    *server
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	p    auth.Principal
	user bool // a signed-in person (not a kiosk)
	lang string
	loc  *i18n.Localizer
}

func (s *server) newRequest(w http.ResponseWriter, r *http.Request) *request {
	rq := &request{s: s, w: w, r: r, ctx: r.Context()}
	rq.setLang(s.language(r, nil))
	return rq
}

func (rq *request) setLang(lang string) {
	rq.lang = lang
	rq.loc = i18n.NewLocalizer(rq.s.bundle, lang)
}

// public serves a page that needs no sign-in; the principal is known when
// there is a live session.
func (s *server) public(h func(*request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := s.newRequest(w, r)
		if p, ok := s.sessionPrincipal(r); ok {
			rq.p, rq.user = p, true
			rq.setLang(s.language(r, &p))
		}
		h(rq)
	})
}

// page serves a page for signed-in people with one of roles (nil: any
// role). Without a live session it redirects to the sign-in page, except
// "/", which is the sign-in page then.
func (s *server) page(roles []auth.Role, h func(*request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := s.newRequest(w, r)
		p, ok := s.sessionPrincipal(r)
		if !ok {
			if r.URL.Path == "/" {
				s.signinPage(rq)
				return
			}
			next := ""
			if r.Method == http.MethodGet {
				next = r.URL.Path
			}
			rq.redirect(signinURL(next))
			return
		}
		rq.p, rq.user = p, true
		rq.setLang(s.language(r, &p))
		if roles != nil && !slices.Contains(roles, p.Role) {
			s.record(rq, audit.Event{Action: "page.denied", Outcome: audit.Denied})
			rq.forbidden()
			return
		}
		h(rq)
	})
}

// sessionPrincipal resolves the session cookie; a stale cookie is treated as
// none.
func (s *server) sessionPrincipal(r *http.Request) (auth.Principal, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return auth.Principal{}, false
	}
	p, err := s.d.Auth.Session(r.Context(), c.Value)
	if err != nil {
		if !errors.Is(err, auth.ErrUnauthorized) {
			s.log.Warn("session lookup failed", "err", err)
		}
		return auth.Principal{}, false
	}
	return p, true
}

func signinURL(next string) string {
	if next == "" || next == "/" {
		return "/signin"
	}
	return "/signin?next=" + urlQueryEscape(next)
}

// call is the use-case call of the page's request.
func (rq *request) call() casework.Call {
	return casework.Call{Principal: rq.p, RequestID: rq.requestID()}
}

// check records a use case's refusal for scope as a denial, as the API's
// audit trail does (the use case's transaction rolled back), and returns err.
func (rq *request) check(action string, err error) error {
	if errors.Is(err, casework.ErrOutOfScope) {
		rq.s.record(rq, audit.Event{Action: action, Outcome: audit.Denied})
	}
	return err
}

// record writes an audit event outside a transaction: for sign-ins,
// account administration and denials. Failures are logged, never shown.
func (s *server) record(rq *request, ev audit.Event) {
	if ev.Actor == "" {
		ev.Actor, ev.Role = "anonymous", "anonymous"
		if rq.user || rq.p.Kind == auth.KindKiosk {
			ev.Actor, ev.Role = rq.p.Actor(), string(rq.p.Role)
		}
	}
	ev.RequestID = rq.requestID()
	if ev.Detail == "" {
		ev.Detail = "{}"
	}
	if err := s.d.Casework.Record(context.WithoutCancel(rq.ctx), ev); err != nil {
		s.log.Error("audit event not written", "action", ev.Action, "err", err)
	}
}

// requestID is the id the API's middleware gave the request (it sets it on
// the response), else the caller's.
func (rq *request) requestID() string {
	if id := rq.w.Header().Get("X-Request-ID"); id != "" {
		return id
	}
	return rq.r.Header.Get("X-Request-ID")
}

// fail answers an error from the store: out of scope and unknown are the
// same friendly 404, a database outage is a 503, anything else a 500
// (logged once, without personal data).
func (rq *request) fail(err error) {
	switch {
	case errors.Is(err, casework.ErrNotFound), errors.Is(err, auth.ErrNotFound), errors.Is(err, instrument.ErrNotFound):
		rq.notFound()
	case errors.Is(err, casework.ErrForbidden):
		rq.forbidden()
	case errors.Is(err, casework.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		rq.errorPage(http.StatusServiceUnavailable, "error.unavailable")
	default:
		rq.s.log.Error("page failed", "request_id", rq.requestID(), "method", rq.r.Method, "err", err)
		rq.errorPage(http.StatusInternalServerError, "error.internal")
	}
}

func (rq *request) notFound()  { rq.errorPage(http.StatusNotFound, "error.notfound") }
func (rq *request) forbidden() { rq.errorPage(http.StatusForbidden, "error.forbidden") }

func (rq *request) errorPage(status int, msg string) {
	rq.render(status, "error", map[string]any{"Status": status, "Message": msg})
}

// redirect answers a POST or an unauthenticated GET with 303 See Other.
func (rq *request) redirect(url string) {
	http.Redirect(rq.w, rq.r, url, http.StatusSeeOther)
}

// cookie sets a cookie with the session cookie's attributes.
func (rq *request) cookie(name, value, path string, maxAge int) {
	http.SetCookie(rq.w, &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: maxAge,
		HttpOnly: true, Secure: rq.s.cfg.CookieSecure || rq.r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// modelCard reads and renders models/<name>/MODEL_CARD.md once.
func (s *server) modelCard(name string) (template.HTML, error) {
	if v, ok := s.cards.Load(name); ok {
		return v.(template.HTML), nil
	}
	if _, ok := s.d.Models[name]; !ok {
		return "", fmt.Errorf("model: %w", casework.ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(s.cfg.ModelsDir, name, "MODEL_CARD.md"))
	if err != nil {
		return "", err
	}
	html, err := renderMarkdown(b)
	if err != nil {
		return "", err
	}
	s.cards.Store(name, html)
	return html, nil
}
