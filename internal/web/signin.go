package web

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/ratelimit"
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
		var rl *ratelimit.Error
		if errors.As(err, &rl) {
			// Too many attempts (or password hashing at capacity): 429,
			// audited as a per-minute count like the API's refusals.
			s.log.Info("sign-in refused", "request_id", rq.requestID(), "limited", true)
			if s.d.Refusals != nil {
				s.d.Refusals.Add(actor, "anonymous", clientAddr(rq.r), "auth.login", http.StatusTooManyRequests)
			} else {
				s.record(rq, audit.Event{Actor: actor, Role: "anonymous", Action: "auth.login", ResourceType: "session",
					Outcome: audit.Rejected, Detail: `{"status":429}`})
			}
			rq.w.Header().Set("Retry-After", rl.RetryAfter())
			rq.render(http.StatusTooManyRequests, "signin", signinData{Next: next, Username: username, Error: "signin.limited"})
			return
		}
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

// clientAddr is the client's address for sign-in limits and audit: the one
// the API resolved (trusted proxies' X-Forwarded-For), else the connection's
// peer.
func clientAddr(r *http.Request) string {
	if a := auth.ClientAddr(r.Context()); a != "" {
		return a
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
