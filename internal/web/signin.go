package web

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
)

type signinData struct {
	Next     string
	Username string
	Error    string
}

func (s *server) signinPage(rq *request) {
	if rq.user {
		rq.redirect(safeNext(rq.r.URL.Query().Get("next")))
		return
	}
	rq.render(http.StatusOK, "signin", signinData{Next: safeNext(rq.r.URL.Query().Get("next"))})
}

// signin checks the password with auth.Service.Login and sets the same
// session cookie as POST /v1/auth/login. Every failure shows one message,
// so that the page does not reveal whether an account exists or is locked.
func (s *server) signin(rq *request) {
	username := strings.TrimSpace(rq.r.PostFormValue("username"))
	password := rq.r.PostFormValue("password")
	next := safeNext(rq.r.PostFormValue("next"))
	if username == "" || password == "" {
		rq.render(http.StatusUnprocessableEntity, "signin", signinData{Next: next, Username: username, Error: "signin.required"})
		return
	}
	actor := "user:(invalid name)"
	if auth.ValidUsername(strings.ToLower(username)) {
		actor = "user:" + strings.ToLower(username)
	}
	token, p, err := s.d.Auth.Login(rq.ctx, username, password, clientAddr(rq.r))
	if err != nil {
		if !errors.Is(err, auth.ErrUnauthorized) {
			rq.fail(err)
			return
		}
		s.log.Info("sign-in refused", "request_id", rq.requestID(), "locked", errors.Is(err, auth.ErrLocked))
		s.record(rq, audit.Event{Actor: actor, Role: "anonymous", Action: "auth.login", ResourceType: "session", Outcome: audit.Denied})
		rq.render(http.StatusUnauthorized, "signin", signinData{Next: next, Username: username, Error: "signin.failed"})
		return
	}
	rq.p, rq.user = p, true
	s.record(rq, audit.Event{Action: "auth.login", ResourceType: "session", Outcome: audit.Success})
	rq.cookie(sessionCookie, token, "/", int(s.d.Auth.Policy().Absolute.Seconds()))
	rq.redirect(next)
}

// signout revokes the session and clears the cookie.
func (s *server) signout(rq *request) {
	if c, err := rq.r.Cookie(sessionCookie); err == nil {
		if err := s.d.Auth.Logout(rq.ctx, c.Value); err != nil {
			rq.fail(err)
			return
		}
		if rq.user {
			s.record(rq, audit.Event{Action: "auth.logout", ResourceType: "session", Outcome: audit.Success})
		}
	}
	rq.cookie(sessionCookie, "", "/", -1)
	rq.redirect("/signin")
}

// home is the caseload for staff, account administration for admins.
func (s *server) home(rq *request) {
	switch rq.p.Role {
	case auth.RoleCounselor, auth.RoleSupervisor:
		s.caseloadPage(rq)
	case auth.RoleAdmin:
		rq.redirect("/admin/users")
	default:
		rq.render(http.StatusOK, "nopages", nil)
	}
}

// clientAddr is the client's address for sign-in limits: the connection's
// peer. Behind a proxy every client shares the proxy's address, which makes
// the per-address limit stricter, never looser.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
