package web

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/screening"
)

// alertPoll is how often an open page asks for new alerts (the header
// badge, the flag queue's new arrivals).
const alertPoll = "every 5s"

// staffRoles are the roles that see alerts and the flag queue.
var staffRoles = []auth.Role{auth.RoleAdmin, auth.RoleSupervisor, auth.RoleCounselor}

// poll serves a request a page makes on its own, every few seconds. It
// resolves the session without touching it (auth.PeekSession), so an open
// page never keeps a session alive past its idle timeout; once the session
// has ended, htmx is told to go to the sign-in page, which takes the
// person's data off the screen.
func (s *server) poll(h func(*request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rq := s.newRequest(w, r)
		var p auth.Principal
		err := errors.New("no session")
		if c, cerr := r.Cookie(sessionCookie); cerr == nil && c.Value != "" {
			p, err = s.d.Auth.PeekSession(r.Context(), c.Value)
			if err != nil && !errors.Is(err, auth.ErrUnauthorized) {
				s.log.Warn("session lookup failed", "err", err)
			}
		}
		if err != nil || !slices.Contains(staffRoles, p.Role) {
			w.Header().Set("HX-Redirect", "/signin")
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		rq.p, rq.user = p, true
		rq.setLang(s.language(r, &p))
		h(rq)
	})
}

// alerts returns the caller's alert counts; a failure shows no badge rather
// than failing the page (the queue itself still reports it).
func (s *server) alerts(rq *request) (casework.Alerts, bool) {
	a, err := s.d.Casework.Alerts(rq.ctx, rq.call())
	if err != nil {
		if !errors.Is(err, casework.ErrForbidden) {
			s.log.Warn("alert count failed", "err", err)
		}
		return a, false
	}
	return a, true
}

// alertsBadge answers the header's poll: 204 (nothing to swap) while the
// alerts are what the page shows, else the new badge.
func (s *server) alertsBadge(rq *request) {
	a, ok := s.alerts(rq)
	if !ok {
		rq.w.WriteHeader(http.StatusNoContent)
		return
	}
	if rq.r.URL.Query().Get("state") == a.State() {
		rq.w.WriteHeader(http.StatusNoContent)
		return
	}
	rq.renderAs(http.StatusOK, "flags", "alertpoll", a)
}

type liveData struct {
	Flags       []flagView
	State       string
	Since       string
	Level       string
	Resolutions []string
}

// liveFlags answers the flag queue's poll with the open flags raised since
// the page was loaded (one audited read, only when the alerts changed).
func (s *server) liveFlags(rq *request) {
	q := rq.r.URL.Query()
	since, err := time.Parse(time.RFC3339Nano, q.Get("since"))
	if err != nil {
		rq.w.WriteHeader(http.StatusBadRequest)
		return
	}
	a, ok := s.alerts(rq)
	if !ok || q.Get("state") == a.State() {
		rq.w.WriteHeader(http.StatusNoContent)
		return
	}
	level := q.Get("level")
	if level != "critical" && level != "urgent" && level != "review" {
		level = ""
	}
	fq, err := s.d.Casework.FlagQueue(rq.ctx, rq.call(), casework.FlagQuery{Lang: rq.lang,
		FlagFilter: casework.FlagFilter{Status: casework.FlagOpen, Level: screening.Level(level), Limit: 500}})
	if err != nil {
		rq.fail(err)
		return
	}
	var fresh []casework.Flag
	for _, f := range fq.Flags {
		if f.RaisedAt.After(since) {
			fresh = append(fresh, f)
		}
	}
	d := liveData{Flags: s.flagViews(rq, fresh, rq.lang), State: a.State(), Since: q.Get("since"), Level: level, Resolutions: casework.ResolutionCodes}
	for i := range d.Flags {
		d.Flags[i].Name = fq.Names[d.Flags[i].SubjectID]
	}
	rq.renderAs(http.StatusOK, "flags", "livepoll", d)
}
