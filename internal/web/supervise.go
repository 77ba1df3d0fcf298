package web

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/postgres"
)

type flagsData struct {
	Flags       []flagView
	Resolutions []string
	Level       string
	Done        string
	Error       string
	Now         time.Time
}

var flagNotices = []string{"acknowledged", "resolved"}
var flagErrors = []string{"resolve_invalid", "not_open", "not_acknowledged"}

// flagsPage is the queue of unresolved flags in the caller's scope, most
// pressing level first, then by deadline.
func (s *server) flagsPage(rq *request) {
	q := rq.r.URL.Query()
	d := flagsData{Resolutions: casework.ResolutionCodes, Level: q.Get("level"), Done: pick(q.Get("done"), flagNotices),
		Error: pick(q.Get("error"), flagErrors), Now: time.Now()}
	if d.Level != "critical" && d.Level != "urgent" && d.Level != "review" {
		d.Level = ""
	}
	err := rq.write("flag.list", func(tx *postgres.Tx) error {
		fs, err := tx.Flags(rq.ctx, postgres.FlagFilter{Level: d.Level, Limit: 500})
		d.Flags = s.flagViews(rq, fs, rq.lang)
		return err
	})
	if err != nil {
		rq.fail(err)
		return
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
	err := rq.write("flag.acknowledge", func(tx *postgres.Tx) error {
		_, err := tx.AcknowledgeFlag(rq.ctx, rq.r.PathValue("id"))
		return err
	})
	switch {
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
	code, note := rq.r.PostFormValue("resolution_code"), rq.r.PostFormValue("note")
	if !casework.ValidResolution(code) || !casework.ValidNote(note) {
		rq.redirect(flagBack(rq, "error=resolve_invalid"))
		return
	}
	err := rq.write("flag.resolve", func(tx *postgres.Tx) error {
		_, err := tx.ResolveFlag(rq.ctx, rq.r.PathValue("id"), code, note)
		return err
	})
	switch {
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
	err := rq.write("override.list", func(tx *postgres.Tx) error {
		os, err := tx.Overrides(rq.ctx, "", 200)
		if err != nil {
			return err
		}
		recs := map[string]casework.Recommendation{}
		for _, o := range os {
			v := overrideView{O: o, Own: o.RequestedBy == rq.p.Actor(), CanDecide: rq.p.Role == auth.RoleSupervisor && o.Status == "pending"}
			if o.Status == "pending" {
				if _, ok := recs[o.RecommendationID]; !ok {
					subj, err := tx.Subject(rq.ctx, o.SubjectID)
					if err != nil {
						return err
					}
					rs, err := tx.Recommendations(rq.ctx, subj, 100)
					if err != nil {
						return err
					}
					for _, r := range rs {
						recs[r.ID] = r
					}
				}
				if r, ok := recs[o.RecommendationID]; ok {
					v.Rec = s.recView(rq, r)
					v.Rec.CanAsk = false
				}
				d.Pending = append(d.Pending, v)
			} else {
				d.Decided = append(d.Decided, v)
			}
		}
		tx.Resource("overrides", "", "")
		return nil
	})
	if err != nil {
		rq.fail(err)
		return
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
		if len([]rune(note)) > casework.MaxNoteRunes {
			rq.redirect("/overrides?error=note_too_long")
			return
		}
		err := rq.write(action, func(tx *postgres.Tx) error {
			_, err := tx.DecideOverride(rq.ctx, rq.r.PathValue("id"), approve, note)
			return err
		})
		switch {
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

// response is how flags of one level were answered against their deadline.
type response struct {
	Level    string
	Answered int
	OnTime   int
	Late     int
	Open     int
	Overdue  int
	Median   time.Duration
	Deadline time.Duration
}

type dashboardData struct {
	D          postgres.Dashboard
	Tiers      []tierCount
	Responses  []response
	ByUnit     []postgres.OverrideStat
	ByReason   []postgres.OverrideStat
	Overdue    []postgres.Due
	WindowDays int
}

type tierCount struct {
	Tier  string
	Count int
	Share float64
}

const dashboardWindowDays = 90

// dashboardPage is the unit's overview: tiers, flag response against
// deadlines, override rates and direction, overdue reassessments and
// new-entrant screening coverage.
func (s *server) dashboardPage(rq *request) {
	d := dashboardData{WindowDays: dashboardWindowDays}
	since := time.Now().UTC().AddDate(0, 0, -dashboardWindowDays)
	var flags []casework.Flag
	err := rq.write("dashboard.read", func(tx *postgres.Tx) error {
		var err error
		if d.D, err = tx.Dashboard(rq.ctx, s.cfg.Workflow.Schedule, dashboardWindowDays); err != nil {
			return err
		}
		for _, st := range []string{"", "resolved"} {
			fs, err := tx.Flags(rq.ctx, postgres.FlagFilter{Status: st, Limit: 500})
			if err != nil {
				return err
			}
			flags = append(flags, fs...)
		}
		if d.ByUnit, err = tx.OverrideAnalytics(rq.ctx, "unit", since); err != nil {
			return err
		}
		if d.ByReason, err = tx.OverrideAnalytics(rq.ctx, "reason", since); err != nil {
			return err
		}
		if d.Overdue, err = tx.Schedule(rq.ctx, s.cfg.Workflow.Schedule, true, nil, 50); err != nil {
			return err
		}
		tx.Resource("dashboard", "", "")
		return nil
	})
	if err != nil {
		rq.fail(err)
		return
	}
	for _, t := range []string{"strict", "ordinary", "lenient", "unassigned"} {
		tc := tierCount{Tier: t, Count: d.D.Tiers[t]}
		if d.D.Subjects > 0 {
			tc.Share = float64(tc.Count) / float64(d.D.Subjects)
		}
		d.Tiers = append(d.Tiers, tc)
	}
	d.Responses = flagResponses(flags, time.Now(), s.cfg.Workflow)
	rq.render(http.StatusOK, "dashboard", d)
}

// flagResponses measures, per level, how long acknowledgement took against
// the deadline, over the flags given.
func flagResponses(flags []casework.Flag, now time.Time, wf Workflow) []response {
	var out []response
	for _, lvl := range []string{"critical", "urgent", "review"} {
		r := response{Level: lvl}
		if wf.Flags != (casework.FlagPolicy{}) {
			r.Deadline = wf.Flags.Deadline(lvl, now).Sub(now)
		}
		var times []time.Duration
		for _, f := range flags {
			if f.Level != lvl {
				continue
			}
			if r.Deadline == 0 {
				r.Deadline = f.Deadline.Sub(f.RaisedAt)
			}
			if f.AcknowledgedAt == nil {
				r.Open++
				if now.After(f.Deadline) {
					r.Overdue++
				}
				continue
			}
			r.Answered++
			times = append(times, f.AcknowledgedAt.Sub(f.RaisedAt))
			if f.AcknowledgedAt.After(f.Deadline) {
				r.Late++
			} else {
				r.OnTime++
			}
		}
		if len(times) > 0 {
			sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
			r.Median = times[len(times)/2]
		}
		out = append(out, r)
	}
	return out
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
	rq.render(http.StatusOK, "model", map[string]any{"Name": name, "Version": m.Ref().Version, "SHA256": m.Ref().SHA256, "Card": card, "Default": name == s.cfg.DefaultModel})
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
