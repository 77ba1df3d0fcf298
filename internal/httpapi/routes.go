package httpapi

import (
	"net/http"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sunpath/sunpath/internal/auth"
)

// route is one operation of the API: the single table from which the router,
// the OpenAPI document and the access policy are all built.
type route struct {
	Method  string
	Path    string // gin syntax: /v1/instruments/:id
	Summary string
	Tag     string
	// Roles admitted; nil means public (no credentials needed).
	Roles   []auth.Role
	Handler gin.HandlerFunc
	// For the OpenAPI document: the request (path params, query, body) and
	// the success response with its status.
	Request  any
	Response any
	Status   int
}

var (
	allRoles   = auth.Roles
	staffRoles = []auth.Role{auth.RoleAdmin, auth.RoleSupervisor, auth.RoleCounselor}
)

// table lists every /v1 operation.
func (s *Server) table() []route {
	return []route{
		{Method: http.MethodPost, Path: "/v1/auth/login", Tag: "auth", Summary: "Sign in with a username and password; sets a session cookie",
			Handler: s.login, Request: loginRequest{}, Response: sessionResponse{}, Status: http.StatusOK},
		{Method: http.MethodPost, Path: "/v1/auth/logout", Tag: "auth", Summary: "End the current session",
			Roles: allRoles, Handler: s.logout, Status: http.StatusNoContent},
		{Method: http.MethodGet, Path: "/v1/auth/me", Tag: "auth", Summary: "Who the caller is",
			Roles: allRoles, Handler: s.me, Response: principalResponse{}, Status: http.StatusOK},
		{Method: http.MethodGet, Path: "/v1/users", Tag: "admin", Summary: "List user accounts",
			Roles: []auth.Role{auth.RoleAdmin}, Handler: s.listUsers, Response: usersResponse{}, Status: http.StatusOK},
	}
}

func (s *Server) buildRouter() error {
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	if err := e.SetTrustedProxies(s.cfg.TrustedProxies); err != nil {
		return err
	}
	e.Use(requestIDs, s.accessLog, s.instrument, s.recoverer, s.deadline)

	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{})))
	e.GET("/openapi.json", s.openapi)

	s.routes = s.table()
	v1 := e.Group("", s.limitBody, s.authenticate)
	for _, r := range s.routes {
		hs := []gin.HandlerFunc{}
		if r.Roles != nil {
			hs = append(hs, s.requireRoles(r.Roles))
		}
		v1.Handle(r.Method, r.Path, append(hs, r.Handler)...)
	}

	allowed := map[string][]string{}
	for _, ri := range e.Routes() {
		allowed[ri.Path] = append(allowed[ri.Path], ri.Method)
	}
	e.NoRoute(func(c *gin.Context) {
		writeProblem(c.Writer, c.Request, http.StatusNotFound, "", "no such resource", nil)
	})
	e.NoMethod(func(c *gin.Context) {
		if ms := allowedMethods(e, c.Request.URL.Path); ms != "" {
			c.Header("Allow", ms)
		}
		writeProblem(c.Writer, c.Request, http.StatusMethodNotAllowed, "", "this resource does not support "+c.Request.Method, nil)
	})
	s.engine = e
	return nil
}

// allowedMethods lists the methods that do match path, for the Allow header.
func allowedMethods(e *gin.Engine, path string) string {
	var ms []string
	for _, ri := range e.Routes() {
		if matchPattern(ri.Path, path) {
			ms = append(ms, ri.Method)
		}
	}
	sort.Strings(ms)
	return strings.Join(ms, ", ")
}

// matchPattern reports whether a concrete path matches a gin pattern.
func matchPattern(pattern, path string) bool {
	ps := strings.Split(strings.Trim(pattern, "/"), "/")
	xs := strings.Split(strings.Trim(path, "/"), "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if !strings.HasPrefix(ps[i], ":") && ps[i] != xs[i] {
			return false
		}
	}
	return true
}

// RouteInfo describes one registered operation, for tests and tools.
type RouteInfo struct {
	Method, Path string
	Roles        []auth.Role
}

// Routes lists the operations of the route table.
func (s *Server) Routes() []RouteInfo {
	out := make([]RouteInfo, 0, len(s.routes))
	for _, r := range s.routes {
		out = append(out, RouteInfo{Method: r.Method, Path: r.Path, Roles: r.Roles})
	}
	return out
}

// EngineRoutes lists what gin actually registered.
func (s *Server) EngineRoutes() []RouteInfo {
	var out []RouteInfo
	for _, r := range s.engine.Routes() {
		out = append(out, RouteInfo{Method: r.Method, Path: r.Path})
	}
	return out
}
