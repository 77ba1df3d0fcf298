package httpapi

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/problem"
)

type loginRequest struct {
	Username string `json:"username" required:"true"`
	Password string `json:"password" required:"true"`
}

type sessionResponse struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	Unit     string `json:"unit"`
	// IdleTimeoutSeconds is how long the session lives without requests.
	IdleTimeoutSeconds int `json:"idle_timeout_seconds"`
}

type principalResponse struct {
	Kind string `json:"kind" enum:"user,api_key"`
	Name string `json:"name"`
	Role string `json:"role"`
	Unit string `json:"unit"`
}

func (s *Server) login(c *gin.Context) {
	var req loginRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	inv := &problem.Invalid{}
	if req.Username == "" {
		inv.Add("username", "required")
	}
	if req.Password == "" {
		inv.Add("password", "required")
	}
	if err := inv.Err(); err != nil {
		s.fail(c, err)
		return
	}
	if auth.ValidUsername(req.Username) {
		c.Set(ctxActor, "user:"+req.Username)
	} else {
		c.Set(ctxActor, "user:(invalid name)")
	}
	token, p, err := s.deps.Auth.Login(c.Request.Context(), req.Username, req.Password, c.ClientIP())
	if err != nil {
		if errors.Is(err, auth.ErrUnauthorized) {
			s.log.Info("login refused", "request_id", requestID(c), "locked", errors.Is(err, auth.ErrLocked))
		}
		s.fail(c, err)
		return
	}
	c.Set(ctxPrincipal, p) // the login's audit event names who signed in
	pol := s.deps.Auth.Policy()
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     sessionCookie,
		Value:    token,
		Path:     "/",
		MaxAge:   int(pol.Absolute.Seconds()),
		HttpOnly: true,
		Secure:   s.cfg.CookieSecure || c.Request.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, sessionResponse{Username: p.Name, Role: string(p.Role), Unit: p.Unit, IdleTimeoutSeconds: int(pol.Idle.Seconds())})
}

func (s *Server) logout(c *gin.Context) {
	if ck, err := c.Cookie(sessionCookie); err == nil {
		if err := s.deps.Auth.Logout(c.Request.Context(), ck); err != nil {
			s.fail(c, err)
			return
		}
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	c.Status(http.StatusNoContent)
}

func (s *Server) me(c *gin.Context) {
	p, _ := principal(c)
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, principalResponse{Kind: string(p.Kind), Name: p.Name, Role: string(p.Role), Unit: p.Unit})
}

type userResponse struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	Unit     string `json:"unit"`
	Language string `json:"language"`
	Disabled bool   `json:"disabled"`
	Locked   bool   `json:"locked"`
}

type usersResponse struct {
	Users []userResponse `json:"users"`
}

func (s *Server) listUsers(c *gin.Context) {
	us, err := s.deps.Auth.Users(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	out := usersResponse{Users: make([]userResponse, 0, len(us))}
	for _, u := range us {
		out.Users = append(out.Users, userResponse{Username: u.Username, Role: string(u.Role), Unit: u.Unit, Language: u.Language, Disabled: u.Disabled, Locked: u.Locked})
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}
