package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/problem"
)

type usersData struct {
	Users    []auth.User
	Units    []casework.Unit
	Roles    []auth.Role
	Done     string
	Error    string
	Password string // a generated password, shown once
	For      string
	Names    map[string]string // staff names by username
}

var userNotices = []string{"created", "disabled", "enabled", "unlocked", "password", "role", "name"}
var userErrors = []string{"invalid", "conflict", "notfound", "password_short", "self", "name"}

func (s *server) usersPage(rq *request) { s.renderUsers(rq, http.StatusOK, usersData{}) }

func (s *server) renderUsers(rq *request, status int, d usersData) {
	q := rq.r.URL.Query()
	if d.Done == "" && d.Error == "" {
		d.Done, d.Error = pick(q.Get("done"), userNotices), pick(q.Get("error"), userErrors)
	}
	us, err := s.d.Auth.Users(rq.ctx)
	if err != nil {
		rq.fail(err)
		return
	}
	d.Users, d.Roles = us, auth.Roles
	if d.Names, err = s.d.Casework.StaffNames(rq.ctx); err != nil {
		rq.fail(err)
		return
	}
	if d.Units, err = s.d.Casework.Units(rq.ctx, rq.call()); err != nil {
		rq.fail(err)
		return
	}
	rq.render(status, "users", d)
}

// adminError maps an auth error to a notice code.
func adminError(err error) string {
	switch {
	case errors.Is(err, auth.ErrConflict):
		return "conflict"
	case errors.Is(err, auth.ErrNotFound):
		return "notfound"
	case errors.Is(err, auth.ErrInvalid):
		return "invalid"
	}
	return ""
}

// recordAdmin writes the audit event of an account change; the change and
// its event are not one transaction (auth.Service owns the change), as for
// the API's own account routes.
func (s *server) recordAdmin(rq *request, action, typ, id string, err error) {
	out := audit.Success
	if err != nil {
		out = audit.Rejected
	}
	s.record(rq, audit.Event{Action: action, ResourceType: typ, ResourceID: id, Outcome: out})
}

// createUser creates an account through auth.Service, with a password the
// admin typed or one generated and shown once.
func (s *server) createUser(rq *request) {
	name := strings.ToLower(strings.TrimSpace(rq.r.PostFormValue("username")))
	role, unit, pw := auth.Role(rq.r.PostFormValue("role")), strings.TrimSpace(rq.r.PostFormValue("unit")), rq.r.PostFormValue("password")
	generated := pw == ""
	if generated {
		pw = auth.RandomPassword()
	}
	_, err := s.d.Auth.CreateUser(rq.ctx, name, pw, role, unit)
	s.recordAdmin(rq, "user.create", "user", name, err)
	if code := adminError(err); code != "" {
		if errors.Is(err, auth.ErrInvalid) && strings.Contains(err.Error(), "password") {
			code = "password_short"
		}
		s.renderUsers(rq, http.StatusUnprocessableEntity, usersData{Error: code})
		return
	}
	if err != nil {
		rq.fail(err)
		return
	}
	if generated {
		s.renderUsers(rq, http.StatusCreated, usersData{Done: "created", Password: pw, For: name})
		return
	}
	rq.redirect("/admin/users?done=created")
}

// changeUser disables, enables, unlocks, resets the password of, sets the
// role of or names an account.
func (s *server) changeUser(rq *request) {
	name, action := rq.r.PathValue("name"), rq.r.PathValue("action")
	if !auth.ValidUsername(name) {
		rq.notFound()
		return
	}
	if name == rq.p.Name && (action == "disable" || action == "role") {
		rq.redirect("/admin/users?error=self") // an admin cannot lock themselves out
		return
	}
	if action == "name" { // audited by the use case
		err := s.d.Casework.SetStaffName(rq.ctx, rq.call(), name, rq.r.PostFormValue("display_name"))
		var inv *problem.Invalid
		switch {
		case errors.As(err, &inv):
			rq.redirect("/admin/users?error=name")
		case errors.Is(err, casework.ErrNotFound):
			rq.redirect("/admin/users?error=notfound")
		case err != nil:
			rq.fail(err)
		default:
			s.staff.forget()
			rq.redirect("/admin/users?done=name")
		}
		return
	}
	var err error
	var done, pw string
	switch action {
	case "disable":
		err, done = s.d.Auth.SetDisabled(rq.ctx, name, true), "disabled"
	case "enable":
		err, done = s.d.Auth.SetDisabled(rq.ctx, name, false), "enabled"
	case "unlock":
		err, done = s.d.Auth.Unlock(rq.ctx, name), "unlocked"
	case "password":
		pw = rq.r.PostFormValue("password")
		if pw == "" {
			pw = auth.RandomPassword()
		}
		err, done = s.d.Auth.ResetPassword(rq.ctx, name, pw), "password"
	case "role":
		err, done = s.d.Auth.SetRole(rq.ctx, name, auth.Role(rq.r.PostFormValue("role"))), "role"
	default:
		rq.notFound()
		return
	}
	s.recordAdmin(rq, "user."+action, "user", name, err)
	if code := adminError(err); code != "" {
		if action == "password" && errors.Is(err, auth.ErrInvalid) {
			code = "password_short"
		}
		rq.redirect("/admin/users?error=" + code)
		return
	}
	if err != nil {
		rq.fail(err)
		return
	}
	if action == "password" && rq.r.PostFormValue("password") == "" {
		s.renderUsers(rq, http.StatusOK, usersData{Done: done, Password: pw, For: name})
		return
	}
	rq.redirect("/admin/users?done=" + done)
}

type keysData struct {
	Keys  []auth.APIKey
	Roles []auth.Role
	Units []casework.Unit
	Done  string
	Error string
	Key   string // a new key, shown once
	Name  string
}

var keyNotices = []string{"revoked"}
var keyErrors = []string{"invalid", "notfound", "expiry"}

func (s *server) keysPage(rq *request) { s.renderKeys(rq, http.StatusOK, keysData{}) }

func (s *server) renderKeys(rq *request, status int, d keysData) {
	q := rq.r.URL.Query()
	if d.Done == "" && d.Error == "" {
		d.Done, d.Error = pick(q.Get("done"), keyNotices), pick(q.Get("error"), keyErrors)
	}
	ks, err := s.d.Auth.APIKeys(rq.ctx)
	if err != nil {
		rq.fail(err)
		return
	}
	d.Keys, d.Roles = ks, auth.Roles
	if d.Units, err = s.d.Casework.Units(rq.ctx, rq.call()); err != nil {
		rq.fail(err)
		return
	}
	rq.render(status, "keys", d)
}

// createKey creates an API key and shows its secret on this answer only.
func (s *server) createKey(rq *request) {
	name, role, unit := strings.TrimSpace(rq.r.PostFormValue("name")), auth.Role(rq.r.PostFormValue("role")), strings.TrimSpace(rq.r.PostFormValue("unit"))
	var expires *time.Time
	if days := rq.r.PostFormValue("expires_days"); days != "" {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 || n > 3650 {
			s.renderKeys(rq, http.StatusUnprocessableEntity, keysData{Error: "expiry"})
			return
		}
		t := time.Now().Add(time.Duration(n) * 24 * time.Hour)
		expires = &t
	}
	key, id, err := s.d.Auth.CreateAPIKey(rq.ctx, name, role, unit, expires)
	s.recordAdmin(rq, "apikey.create", "api_key", strconv.FormatInt(id, 10), err)
	if code := adminError(err); code != "" {
		s.renderKeys(rq, http.StatusUnprocessableEntity, keysData{Error: code})
		return
	}
	if err != nil {
		rq.fail(err)
		return
	}
	s.renderKeys(rq, http.StatusCreated, keysData{Key: key, Name: name})
}

func (s *server) revokeKey(rq *request) {
	id, err := strconv.ParseInt(rq.r.PathValue("id"), 10, 64)
	if err != nil {
		rq.notFound()
		return
	}
	err = s.d.Auth.RevokeAPIKey(rq.ctx, id)
	s.recordAdmin(rq, "apikey.revoke", "api_key", strconv.FormatInt(id, 10), err)
	if code := adminError(err); code != "" {
		rq.redirect("/admin/keys?error=" + code)
		return
	}
	if err != nil {
		rq.fail(err)
		return
	}
	rq.redirect("/admin/keys?done=revoked")
}

type unitsData struct {
	Units []casework.Unit
	Done  string
	Error string
}

func (s *server) unitsPage(rq *request) {
	d := unitsData{Done: pick(rq.r.URL.Query().Get("done"), []string{"saved"}), Error: pick(rq.r.URL.Query().Get("error"), []string{"invalid"})}
	var err error
	if d.Units, err = s.d.Casework.Units(rq.ctx, rq.call()); err != nil {
		rq.fail(err)
		return
	}
	rq.render(http.StatusOK, "units", d)
}

// putUnit creates or renames a unit through the same use case as PUT
// /v1/units/{code}: an empty agency keeps the unit's.
func (s *server) putUnit(rq *request) {
	in := casework.UnitInput{Code: strings.TrimSpace(rq.r.PostFormValue("code")), Name: rq.r.PostFormValue("name"),
		Agency: strings.TrimSpace(rq.r.PostFormValue("agency"))}
	_, _, err := s.d.Casework.PutUnit(rq.ctx, rq.call(), in)
	var inv *problem.Invalid
	if errors.As(err, &inv) {
		rq.redirect("/admin/units?error=invalid")
		return
	}
	if err != nil {
		rq.fail(err)
		return
	}
	rq.redirect("/admin/units?done=saved")
}
