// Package httpapi is Sunpath's HTTP interface: a gin router built from one
// route table, RFC 9457 problems for every error, authentication, metrics and
// access logs. gin stays in this package; handlers stay thin.
package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/ratelimit"
	"github.com/sunpath/sunpath/internal/refusal"
	"github.com/sunpath/sunpath/internal/riskmodel"
)

// Config is the HTTP server's configuration.
type Config struct {
	Addr              string
	ShutdownTimeout   time.Duration // how long in-flight requests may take to finish
	RequestTimeout    time.Duration // deadline of each request's context
	ReadHeaderTimeout time.Duration
	MaxBodyBytes      int64
	TrustedProxies    []string // addresses whose X-Forwarded-For is believed; none by default
	CookieSecure      bool     // mark the session cookie Secure (always with TLS)
	Version           string
	// TLSCertFile and TLSKeyFile, when both set, make the listener TLS 1.2+.
	TLSCertFile, TLSKeyFile string
	// Rate limit: requests per second (and burst) per authenticated caller.
	// Sign-in attempts are limited by auth.Service.LimitLogins.
	CallerRate  float64
	CallerBurst int
	// Failed authentications (401) allowed per client address: per second
	// and burst. Beyond them the address is refused 429 before any
	// credential is looked up. Zero rate disables.
	UnauthenticatedRate  float64
	UnauthenticatedBurst int
}

// DefaultConfig returns the defaults used when a setting is not given.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:8080",
		ShutdownTimeout:   20 * time.Second,
		RequestTimeout:    30 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
		MaxBodyBytes:      1 << 20,
		CallerRate:        100,
		CallerBurst:       200,

		UnauthenticatedRate:  5,
		UnauthenticatedBurst: 200,
	}
}

// Check is one readiness condition; it returns nil when satisfied.
type Check struct {
	Name string
	Fn   func(context.Context) error
}

// Deps are the services the handlers call.
type Deps struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	Auth     *auth.Service
	// Checks must all pass for /readyz to answer 200.
	Checks []Check

	Catalog      *instrument.Catalog
	Models       map[string]*riskmodel.Model
	DefaultModel string
	RiskMetrics  *riskmodel.Metrics
	// Casework owns every use case of the case work (and the audit log).
	Casework *casework.Service
	// Refusals counts refused requests for the audit trail; shared with the
	// UI. Optional: New makes one.
	Refusals *refusal.Counter
	// UI serves every GET/POST outside /v1, /healthz, /readyz and
	// /openapi.json: the server-rendered web pages. It sets its own headers.
	UI http.Handler
}

// Server serves Sunpath's HTTP API.
type Server struct {
	cfg      Config
	log      *slog.Logger
	deps     Deps
	engine   *gin.Engine
	routes   []route
	metrics  *httpMetrics
	stopping atomic.Bool
	callers  *ratelimit.Limiter

	unauthenticated *ratelimit.Limiter // failed authentications per client address
}

// New builds the server and its router.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Log == nil || d.Registry == nil || d.Auth == nil {
		return nil, errors.New("httpapi: Log, Registry and Auth are required")
	}
	if d.Casework == nil || d.Catalog == nil || d.Models == nil {
		return nil, errors.New("httpapi: Casework, Catalog and Models are required")
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{cfg: cfg, log: d.Log, deps: d,
		callers:         ratelimit.New(cfg.CallerRate, cfg.CallerBurst),
		unauthenticated: ratelimit.New(cfg.UnauthenticatedRate, cfg.UnauthenticatedBurst)}
	if s.deps.Refusals == nil {
		s.deps.Refusals = refusal.New(d.Registry)
	}
	s.metrics = newHTTPMetrics(d.Registry, cfg.Version)
	if err := s.buildRouter(); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the root handler. Cookie-authenticated requests from other
// origins are refused by Go's cross-origin protection (CSRF), which looks at
// Sec-Fetch-Site and Origin; API clients that send neither pass.
func (s *Server) Handler() http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Refused before the router: give the answer its request id here.
		id := r.Header.Get(headerRequestID)
		if !requestIDRE.MatchString(id) {
			id = uuid.NewString()
		}
		w.Header().Set(headerRequestID, id)
		writeProblem(w, r, http.StatusForbidden, "cross-origin request refused", "state-changing requests must come from this site's own pages", nil)
	}))
	return cop.Handler(s.engine)
}

// Serve answers requests on ln until ctx ends, then shuts down gracefully:
// readiness fails at once, in-flight requests get ShutdownTimeout to finish.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.RequestTimeout + 5*time.Second,
		WriteTimeout:      s.cfg.RequestTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	flushCtx, stopFlush := context.WithCancel(context.WithoutCancel(ctx))
	flushed := make(chan struct{})
	go func() { s.deps.Refusals.Run(flushCtx, s.deps.Casework, s.log); close(flushed) }()
	defer func() { stopFlush(); <-flushed }()
	errc := make(chan error, 1)
	if s.cfg.TLSCertFile != "" && s.cfg.TLSKeyFile != "" {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		go func() { errc <- srv.ServeTLS(ln, s.cfg.TLSCertFile, s.cfg.TLSKeyFile) }()
	} else {
		go func() { errc <- srv.Serve(ln) }()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.stopping.Store(true)
	s.log.Info("shutting down", "grace", s.cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
