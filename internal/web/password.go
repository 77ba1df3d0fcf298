package web

import (
	"errors"
	"net/http"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/ratelimit"
)

// passwordData is the change-password form. Errors are message ids by
// field; the form never echoes a password.
type passwordData struct {
	Done                  bool
	Current, New, Confirm string // message ids of field errors
	MinLength, MaxLength  int
}

func (s *server) passwordPage(rq *request) {
	rq.render(http.StatusOK, "password", passwordData{Done: rq.r.URL.Query().Get("done") == "1",
		MinLength: auth.MinPasswordLength, MaxLength: auth.MaxPasswordLength})
}

// changePassword replaces the signed-in person's password with
// auth.Service.ChangePassword, as POST /v1/auth/password does, and ends
// their other sessions. The form's CSRF protection is the server's
// cross-origin check (httpapi.Server.Handler), as for every form.
func (s *server) changePassword(rq *request) {
	current, next, confirm := rq.r.PostFormValue("current_password"), rq.r.PostFormValue("new_password"), rq.r.PostFormValue("confirm_password")
	d := passwordData{MinLength: auth.MinPasswordLength, MaxLength: auth.MaxPasswordLength}
	switch {
	case current == "":
		d.Current = "password.error.required"
	case next == "":
		d.New = "password.error.required"
	case next != confirm:
		d.Confirm = "password.error.mismatch"
	}
	if d.Current != "" || d.New != "" || d.Confirm != "" {
		rq.render(http.StatusUnprocessableEntity, "password", d)
		return
	}
	token := ""
	if c, err := rq.r.Cookie(sessionCookie); err == nil {
		token = c.Value
	}
	err := s.d.Auth.ChangePassword(rq.ctx, rq.p, token, current, next)
	ev := audit.Event{Action: "auth.password", ResourceType: "user", ResourceID: rq.p.Name, Outcome: audit.Success}
	var rl *ratelimit.Error
	switch {
	case err == nil:
		s.record(rq, ev)
		rq.redirect("/account/password?done=1")
		return
	case errors.Is(err, auth.ErrWrongPassword):
		d.Current = "password.error.wrong"
	case errors.Is(err, auth.ErrPasswordLength):
		d.New = "password.error.length"
	case errors.Is(err, auth.ErrPasswordUnchanged):
		d.New = "password.error.unchanged"
	case errors.As(err, &rl):
		rq.w.Header().Set("Retry-After", rl.RetryAfter())
		d.Current = "password.error.limited"
		ev.Outcome = audit.Rejected
		s.record(rq, ev)
		rq.render(http.StatusTooManyRequests, "password", d)
		return
	default:
		rq.fail(err)
		return
	}
	ev.Outcome = audit.Rejected
	s.record(rq, ev)
	rq.render(http.StatusUnprocessableEntity, "password", d)
}
