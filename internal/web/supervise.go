package web

import (
	"errors"
	"html/template"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/riskmodel"
	"github.com/sunpath/sunpath/internal/screening"
)

type flagsData struct {
	Flags         []flagView
	Resolutions   []string
	Interventions []string
	Level         string
	Done          string
	Error         string
	Now           time.Time
	Since, State  string // what the live region's poll starts from
	Policy        casework.FlagPolicy
}

var flagNotices = []string{"acknowledged", "resolved"}
var flagErrors = []string{"resolve_invalid", "not_open", "not_acknowledged"}

// flagsPage is the queue of unresolved flags in the caller's scope, most
// pressing level first, then by deadline.
func (s *server) flagsPage(rq *request) {
	q := rq.r.URL.Query()
	d := flagsData{Resolutions: casework.ResolutionCodes, Interventions: casework.Interventions, Level: q.Get("level"), Done: pick(q.Get("done"), flagNotices),
		Error: pick(q.Get("error"), flagErrors), Now: time.Now(), Policy: s.d.Casework.Policy().Flags}
	if d.Level != "critical" && d.Level != "urgent" && d.Level != "review" {
		d.Level = ""
	}
	// Flags raised from now on reach the page through its poll (liveFlags).
	d.Since = d.Now.UTC().Format(time.RFC3339Nano)
	fq, err := s.d.Casework.FlagQueue(rq.ctx, rq.call(), casework.FlagQuery{Lang: rq.lang, FlagFilter: casework.FlagFilter{Level: screening.Level(d.Level), Limit: 500}})
	if err != nil {
		rq.fail(err)
		return
	}
	d.Flags = s.flagViews(rq, fq.Flags, rq.lang)
	for i := range d.Flags {
		d.Flags[i].Name = fq.Names[d.Flags[i].SubjectID]
	}
	if a, ok := s.alerts(rq); ok {
		d.State = a.State()
	}
	rq.render(http.StatusOK, "flags", d)
}

// flagBack returns to the page the action came from: the queue or a
// subject's page.
func flagBack(rq *request, code string) string {
	if subj := rq.r.PostFormValue("subject"); casework.IDPattern.MatchString(subj) {
		return "/subjects/" + subj + "?" + code + "#flags"
	}
	return "/flags?" + code
}

func (s *server) acknowledgeFlag(rq *request) {
	_, err := s.d.Casework.AcknowledgeFlag(rq.ctx, rq.call(), rq.r.PathValue("id"), rq.lang)
	switch err := rq.check("flag.acknowledge", err); {
	case errors.Is(err, casework.ErrConflict):
		rq.redirect(flagBack(rq, "error=not_open"))
	case err != nil:
		rq.fail(err)
	default:
		rq.redirect(flagBack(rq, "done=acknowledged"))
	}
}

// resolveFlag closes an acknowledged flag with a resolution code and a
// required note, checked by casework's rules as the API checks them.
func (s *server) resolveFlag(rq *request) {
	if err := rq.r.ParseForm(); err != nil {
		rq.errorPage(http.StatusBadRequest, "error.badrequest")
		return
	}
	in := casework.ResolveInput{ResolutionCode: rq.r.PostFormValue("resolution_code"), Note: rq.r.PostFormValue("note"),
		Interventions: rq.r.PostForm["intervention"]}
	if v := rq.r.PostFormValue("follow_up"); v != "" {
		t, err := time.ParseInLocation("2006-01-02", v, rq.s.loc)
		if err != nil {
			rq.redirect(flagBack(rq, "error=resolve_invalid"))
			return
		}
		t = t.Add(9 * time.Hour) // the morning of that day
		in.FollowUpDue = &t
	}
	_, err := s.d.Casework.ResolveFlag(rq.ctx, rq.call(), rq.r.PathValue("id"), in)
	var inv *problem.Invalid
	switch err := rq.check("flag.resolve", err); {
	case errors.As(err, &inv):
		rq.redirect(flagBack(rq, "error=resolve_invalid"))
	case errors.Is(err, casework.ErrConflict):
		rq.redirect(flagBack(rq, "error=not_acknowledged"))
	case err != nil:
		rq.fail(err)
	default:
		rq.redirect(flagBack(rq, "done=resolved"))
	}
}

type overrideView struct {
	O         casework.Override
	Rec       *recView
	CanDecide bool
	Own       bool // requested by the caller: the store refuses self-approval
}

type overridesData struct {
	Pending []overrideView
	Decided []overrideView
	Done    string
	Error   string
}

var overrideNotices = []string{"approved", "rejected"}
var overrideErrors = []string{"self_approval", "already_decided", "note_too_long"}

// overridesPage lists override requests in scope, pending first, each with
// the recommendation it departs from and its explanation.
func (s *server) overridesPage(rq *request) {
	q := rq.r.URL.Query()
	d := overridesData{Done: pick(q.Get("done"), overrideNotices), Error: pick(q.Get("error"), overrideErrors)}
	q2, err := s.d.Casework.ReviewOverrides(rq.ctx, rq.call())
	if err != nil {
		rq.fail(err)
		return
	}
	for _, o := range q2.Overrides {
		v := overrideView{O: o, Own: o.RequestedBy == rq.p.Actor(), CanDecide: rq.p.Role == auth.RoleSupervisor && rq.p.IsPerson() && o.Status == "pending"}
		if o.Status == "pending" {
			if r, ok := q2.Recommendations[o.RecommendationID]; ok {
				v.Rec = s.recView(rq, r)
				v.Rec.CanAsk = false
			}
			d.Pending = append(d.Pending, v)
		} else {
			d.Decided = append(d.Decided, v)
		}
	}
	rq.render(http.StatusOK, "overrides", d)
}

// decideOverride approves or rejects an override. The store refuses a
// decision by the requester (casework.ErrForbidden); the page says so.
func (s *server) decideOverride(approve bool) func(*request) {
	action, done := "override.reject", "rejected"
	if approve {
		action, done = "override.approve", "approved"
	}
	return func(rq *request) {
		note := rq.r.PostFormValue("note")
		_, err := s.d.Casework.DecideOverride(rq.ctx, rq.call(), rq.r.PathValue("id"), approve, note)
		var inv *problem.Invalid
		switch err := rq.check(action, err); {
		case errors.As(err, &inv):
			rq.redirect("/overrides?error=note_too_long")
		case errors.Is(err, casework.ErrForbidden):
			rq.redirect("/overrides?error=self_approval")
		case errors.Is(err, casework.ErrConflict):
			rq.redirect("/overrides?error=already_decided")
		case err != nil:
			rq.fail(err)
		default:
			rq.redirect("/overrides?done=" + done)
		}
	}
}

type dashboardData struct {
	D          casework.Dashboard
	Tiers      []tierCount
	Responses  []casework.FlagResponse
	ByUnit     []casework.OverrideStat
	ByReason   []casework.OverrideStat
	Overdue    []casework.Due
	WindowDays int
	Month      month
	MonthEnd   time.Time
}

type tierCount struct {
	Tier  string
	Count int
	Share float64
}

const dashboardWindowDays = casework.DefaultWindowDays

// dashboardPage is the caller's overview (the same use case as GET
// /v1/dashboard): tiers, flag response against deadlines, override rates
// and direction, overdue screenings, new-entrant coverage and, per unit,
// the period's screening and intervention figures.
func (s *server) dashboardPage(rq *request) {
	m := s.reportMonth(rq)
	o, err := s.d.Casework.Dashboard(rq.ctx, rq.call(), casework.DashboardQuery{WindowDays: dashboardWindowDays, From: m.From, To: m.To})
	if err != nil {
		rq.fail(err)
		return
	}
	d := dashboardData{D: o.Dashboard, Responses: o.Responses, ByUnit: o.ByUnit, ByReason: o.ByReason, Overdue: o.Overdue, WindowDays: dashboardWindowDays,
		Month: m, MonthEnd: m.To.AddDate(0, 0, -1)}
	if m.To.Before(m.From.AddDate(0, 1, 0)) {
		d.MonthEnd = m.To
	}
	// Units by name, not code, wherever the page names one.
	names := map[string]string{}
	for _, u := range o.Units {
		names[u.Unit] = unitLabel(u)
	}
	for i, g := range d.ByUnit {
		if n := names[g.Group]; n != "" {
			d.ByUnit[i].Group = n
		}
	}
	for _, t := range []string{"strict", "ordinary", "lenient", "unassigned"} {
		tc := tierCount{Tier: t, Count: d.D.Tiers[t]}
		if d.D.Subjects > 0 {
			tc.Share = float64(tc.Count) / float64(d.D.Subjects)
		}
		d.Tiers = append(d.Tiers, tc)
	}
	rq.render(http.StatusOK, "dashboard", d)
}

type modelsData struct {
	Models  []modelEntry
	Default string
}

type modelEntry struct {
	Name, Version string
	Default       bool
}

func (s *server) modelsPage(rq *request) {
	d := modelsData{Default: s.cfg.DefaultModel}
	for name, m := range s.d.Models {
		d.Models = append(d.Models, modelEntry{Name: name, Version: m.Ref().Version, Default: name == s.cfg.DefaultModel})
	}
	slices.SortFunc(d.Models, func(a, b modelEntry) int {
		if a.Default != b.Default {
			if a.Default {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	rq.render(http.StatusOK, "models", d)
}

// modelPage renders a model's MODEL_CARD.md; the card's calibration.svg is
// served beside it, so its relative image link works.
func (s *server) modelPage(rq *request) {
	name := rq.r.PathValue("name")
	card, err := s.modelCard(name)
	if errors.Is(err, os.ErrNotExist) {
		rq.notFound()
		return
	}
	if err != nil {
		rq.fail(err)
		return
	}
	m := s.d.Models[name]
	data := map[string]any{"Name": name, "Version": m.Ref().Version, "SHA256": m.Ref().SHA256, "Card": card, "Rest": template.HTML(""), "Default": name == s.cfg.DefaultModel}
	if zh, ok := riskmodel.CardTextZH(name); ok && rq.lang == "zh-CN" {
		// A working translation under the card's title, above the
		// authoritative English text.
		head, rest := string(card), ""
		if i := strings.Index(head, "</h1>"); i >= 0 {
			head, rest = head[:i+len("</h1>")], head[i+len("</h1>"):]
		}
		data["ZH"], data["Card"], data["Rest"] = zh, template.HTML(head), template.HTML(rest)
	}
	rq.render(http.StatusOK, "model", data)
}

func (s *server) calibrationSVG(rq *request) {
	name := rq.r.PathValue("name")
	if _, ok := s.d.Models[name]; !ok {
		rq.notFound()
		return
	}
	b, err := os.ReadFile(filepath.Join(s.cfg.ModelsDir, name, "calibration.svg"))
	if err != nil {
		rq.notFound()
		return
	}
	rq.w.Header().Set("Content-Type", "image/svg+xml")
	rq.w.Header().Set("Cache-Control", "private, max-age=3600")
	rq.w.WriteHeader(http.StatusOK) // explicit: the API's router presets 404 for what it passes on
	_, _ = rq.w.Write(b)
}
