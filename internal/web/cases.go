package web

import (
	"cmp"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/nicksnyder/go-i18n/v2/i18n"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/riskmodel"
	"github.com/sunpath/sunpath/internal/screening"
)

// caseRow is one person on the caseload.
type caseRow struct {
	S        casework.Subject
	NextDue  *time.Time
	Overdue  bool
	TopLevel string // most pressing open flag level, "" when none
}

type caseloadData struct {
	Rows      []caseRow
	Tier      string
	Overdue   bool
	Flagged   bool
	Query     string // search text: name or case number
	Type      string // supervision type
	Types     []string
	Searched  bool
	Total     int
	Truncated bool
	Sessions  []sessionRow // unfinished screenings, resumable
}

// sessionRow is an unfinished screening on the caseload.
type sessionRow struct {
	casework.Session
	Name string
}

const caseloadLimit = 500

// caseloadPage lists the people the caller may see, most pressing first:
// open flags by level, then overdue reassessments, then by id.
func (s *server) caseloadPage(rq *request) {
	q := rq.r.URL.Query()
	d := caseloadData{Tier: q.Get("tier"), Overdue: q.Get("overdue") == "1", Flagged: q.Get("flagged") == "1"}
	if d.Tier != "" && !casework.Tier(d.Tier).Valid() {
		d.Tier = ""
	}
	d.Query, d.Type, d.Types = strings.TrimSpace(q.Get("q")), q.Get("type"), casework.SupervisionTypes
	if !slices.Contains(d.Types, d.Type) {
		d.Type = ""
	}
	var subjects []casework.Subject
	if d.Query != "" || d.Type != "" {
		// Names are sealed: casework opens the visible caseload's names and
		// filters them (SearchSubjects).
		d.Searched = true
		res, err := s.d.Casework.SearchSubjects(rq.ctx, rq.call(), casework.SubjectSearch{Text: d.Query, SupervisionType: d.Type, Tier: d.Tier, Overdue: d.Overdue})
		var inv *problem.Invalid
		if errors.As(err, &inv) {
			d.Query = ""
		} else if err != nil {
			rq.fail(err)
			return
		}
		subjects, d.Truncated = res.Subjects, res.Truncated
	} else {
		page, err := s.d.Casework.Subjects(rq.ctx, rq.call(), casework.SubjectQuery{Tier: d.Tier, Overdue: d.Overdue, Limit: caseloadLimit})
		if err != nil {
			rq.fail(err)
			return
		}
		subjects, d.Truncated = page.Subjects, page.Next != ""
	}
	if !d.Searched && !d.Flagged && d.Tier == "" && !d.Overdue {
		open, err := s.d.Casework.OpenSessions(rq.ctx, rq.call(), "")
		if err != nil {
			rq.fail(err)
			return
		}
		names := map[string]string{}
		for _, subj := range subjects {
			names[subj.ID] = subj.DisplayName
		}
		for _, o := range open {
			d.Sessions = append(d.Sessions, sessionRow{Session: o, Name: names[o.SubjectID]})
		}
	}
	for _, subj := range subjects {
		if d.Flagged && subj.OpenFlags == 0 {
			continue
		}
		d.Rows = append(d.Rows, caseRow{S: subj, NextDue: subj.NextDue, Overdue: subj.Overdue, TopLevel: string(subj.TopFlagLevel)})
	}
	slices.SortStableFunc(d.Rows, func(a, b caseRow) int {
		if c := cmp.Compare(levelRank(a.TopLevel), levelRank(b.TopLevel)); c != 0 {
			return c
		}
		if a.Overdue != b.Overdue {
			if a.Overdue {
				return -1
			}
			return 1
		}
		return strings.Compare(a.S.ID, b.S.ID)
	})
	d.Total = len(d.Rows)
	rq.render(http.StatusOK, "caseload", d)
}

func levelRank(l string) int {
	switch l {
	case "critical":
		return 0
	case "urgent":
		return 1
	case "review":
		return 2
	}
	return 3
}

// flagView is a flag with its label and, for a critical flag, the crisis
// protocol.
type flagView struct {
	casework.Flag
	Label    string
	Protocol string
	Name     string // the person's name, where the page shows whose flag it is
	// Instrument names the instrument whose result raised the flag ("" for
	// a workflow rule), for the link to the source assessment.
	Instrument string
}

func (s *server) flagViews(rq *request, fs []casework.Flag, protocolLang string) []flagView {
	out := make([]flagView, 0, len(fs))
	for _, f := range fs {
		v := flagView{Flag: f, Label: s.flagLabel(rq, f.Code)}
		if f.Source == "instrument" {
			v.Instrument = s.flagInstrument(rq, f.Code)
		}
		if f.Level == screening.LevelCritical {
			v.Protocol = s.protocol(protocolLang)
		}
		out = append(out, v)
	}
	return out
}

// flagInstrument is the title of the instrument that defines a flag code.
func (s *server) flagInstrument(rq *request, code string) string {
	for _, d := range s.d.Catalog.List() {
		for _, f := range d.Scoring.Flags {
			if f.Code == code {
				return textIn(d.Title, rq.lang)
			}
		}
	}
	return ""
}

// protocol is the crisis protocol in lang, else in Chinese.
func (s *server) protocol(lang string) string { return s.d.Casework.Protocol(lang) }

// flagLabel names a flag code: the instrument's own label, else the UI's
// message for a workflow rule, else the code.
func (s *server) flagLabel(rq *request, code string) string {
	for _, d := range s.d.Catalog.List() {
		for _, f := range d.Scoring.Flags {
			if f.Code == code {
				if l := textIn(f.Label, rq.lang); l != "" {
					return l
				}
			}
		}
	}
	if t := rq.T("flag." + code); t != "flag."+code {
		return t
	}
	return code
}

// textIn is t in lang, else in any language the text has (Chinese first).
func textIn(t screening.Text, lang string) string {
	if v := t[lang]; v != "" {
		return v
	}
	if v := t["zh-CN"]; v != "" {
		return v
	}
	for _, v := range t {
		return v
	}
	return ""
}

// storedResult is the part of a stored screening.Result the pages show.
type storedResult struct {
	Total    *int     `json:"total"`
	Severity *string  `json:"severity"`
	Outcome  string   `json:"result"`
	Prorated bool     `json:"prorated"`
	Missing  []string `json:"missing"`
	Quality  []string `json:"quality"`
}

// assessmentView is one assessment as the timeline and result pages show it.
type assessmentView struct {
	A        casework.Assessment
	Title    string
	Total    *int
	Max      int
	Severity string
	Outcome  string
	Prorated bool
	Missing  int
	Quality  []string
	Flags    []flagView
}

func (s *server) assessmentView(rq *request, a casework.Assessment) assessmentView {
	v := assessmentView{A: a, Title: a.Instrument}
	var res storedResult
	_ = json.Unmarshal(a.Result, &res)
	v.Total, v.Prorated, v.Missing, v.Quality = res.Total, res.Prorated, len(res.Missing), res.Quality
	if def, ok := s.d.Catalog.Get(a.Instrument); ok {
		v.Title, v.Max = textIn(def.Title, rq.lang), def.TotalMax
		if res.Severity != nil {
			v.Severity = bandLabel(def, *res.Severity, rq.lang)
		}
		for _, o := range def.Scoring.Outcomes {
			if o.Code == res.Outcome {
				v.Outcome = textIn(o.Label, rq.lang)
			}
		}
	}
	v.Flags = s.flagViews(rq, a.Flags, rq.lang)
	return v
}

func bandLabel(def *screening.Definition, code, lang string) string {
	for _, set := range def.Scoring.Bands {
		for _, b := range set.Bands {
			if b.Code == code {
				return textIn(b.Label, lang)
			}
		}
	}
	return code
}

// recView is a recommendation explained in plain words.
type recView struct {
	R        casework.Recommendation
	Factors  []factor
	CanAsk   bool // the caller may request an override
	Tiers    []string
	Reasons  []string
	HasModel bool
}

type factor struct {
	Feature     string // the model's name for it, for people who check the model card
	Label       string // what it is, in the page's language
	Description string // the model's own description (English), on English pages
	Value       string
	Weight      float64
	Raises      bool
}

// topFactors is how many contributions the page explains.
const topFactors = 5

func (s *server) recView(rq *request, r casework.Recommendation) *recView {
	v := &recView{R: r, Reasons: casework.OverrideReasons}
	for _, t := range casework.Tiers {
		if t != r.Tier {
			v.Tiers = append(v.Tiers, string(t))
		}
	}
	v.CanAsk = rq.p.Role == auth.RoleCounselor || rq.p.Role == auth.RoleSupervisor
	var contribs []riskmodel.Contribution
	_ = json.Unmarshal(r.Explanation, &contribs)
	desc := map[string]string{}
	if m, ok := s.d.Models[r.Model.Name]; ok {
		v.HasModel = true
		for _, f := range m.InputFields() {
			desc[f.Name] = f.Description
		}
	}
	for _, c := range contribs {
		if len(v.Factors) == topFactors {
			break
		}
		if c.Contribution == 0 {
			continue
		}
		f := factor{Feature: c.Feature, Label: featureLabel(rq.loc, c.Feature), Value: c.Value, Weight: c.Contribution, Raises: c.Contribution > 0}
		if rq.lang == "en" {
			f.Description = strings.TrimSuffix(desc[c.Feature], ".")
		}
		if c.Value == "missing" {
			f.Value = rq.T("feature.value.missing")
		} else if rq.lang == "zh-CN" {
			f.Value = binZH(c.Value)
		}
		v.Factors = append(v.Factors, f)
	}
	return v
}

// featureLabel names a model feature, or an interaction "a × b" of two, in
// the page's language; a name without a label shows as it is.
func featureLabel(loc *i18n.Localizer, name string) string {
	parts := strings.Split(name, " × ")
	for i, p := range parts {
		if l := translate(loc, "feature."+p); l != "feature."+p {
			parts[i] = l
		}
	}
	return strings.Join(parts, " × ")
}

type instrumentChoice struct {
	ID      string
	Title   string
	Checked bool
}

type subjectData struct {
	S           casework.Subject
	Due         []casework.Due
	Decisions   []casework.Decision
	Sessions    []sessionRow
	CanAccept   bool
	Flags       []flagView
	Assessments []assessmentView
	Charts      []chart
	Rec         *recView
	Recs        int
	Choices     []instrumentChoice
	Error       string
	Done        string
	CanScreen   bool
	UnitName    string
	CanEdit     bool
}

// Codes a redirect may carry back to the subject page; anything else is
// ignored, so a URL cannot make the page say something it did not.
var subjectNotices = []string{"override_requested", "session_expired", "level_decided", "recommended", "registered", "saved"}
var subjectErrors = []string{"no_instruments", "bad_instrument", "bad_language", "bad_mode", "override_invalid", "override_pending", "text_missing",
	"recommendation_stale", "insufficient_information"}

func pick(v string, allowed []string) string {
	if slices.Contains(allowed, v) {
		return v
	}
	return ""
}

// subjectPage shows one person: record, flags, the latest recommendation
// explained, trend charts with severity bands, the timeline and the form
// that starts a screening. It is one audited read.
func (s *server) subjectPage(rq *request) {
	id := rq.r.PathValue("id")
	if !casework.IDPattern.MatchString(id) {
		rq.notFound()
		return
	}
	d := subjectData{Error: pick(rq.r.URL.Query().Get("error"), subjectErrors), Done: pick(rq.r.URL.Query().Get("done"), subjectNotices)}
	o, err := s.d.Casework.SubjectOverview(rq.ctx, rq.call(), id, rq.lang)
	if err := rq.check("subject.read", err); err != nil {
		rq.fail(err)
		return
	}
	d.S, d.Due, d.Decisions = o.Subject, o.Due, o.Decisions
	for _, x := range o.Sessions {
		d.Sessions = append(d.Sessions, sessionRow{Session: x, Name: o.Subject.DisplayName})
	}
	d.Flags = s.flagViews(rq, o.Flags, rq.lang)
	for _, a := range o.Assessments {
		d.Assessments = append(d.Assessments, s.assessmentView(rq, a))
	}
	d.Recs = len(o.Recommendations)
	if len(o.Recommendations) > 0 {
		d.Rec = s.recView(rq, o.Recommendations[0])
		d.CanAccept = d.Rec.R.Review && rq.p.IsPerson() && (rq.p.Role == auth.RoleCounselor || rq.p.Role == auth.RoleSupervisor)
	}
	trends := map[string][]casework.TrendPoint{}
	for inst, t := range o.Trends {
		trends[inst] = t.Points
	}
	for _, def := range s.d.Catalog.List() {
		if pts, ok := trends[def.ID]; ok {
			d.Charts = append(d.Charts, s.trendChart(rq, def, pts))
		}
	}
	d.CanScreen = true
	d.Choices = s.instrumentChoices(rq, d.Due)
	d.CanEdit = rq.p.Role == auth.RoleAdmin || rq.p.Role == auth.RoleSupervisor && d.S.Unit == rq.p.Unit ||
		rq.p.Role == auth.RoleCounselor && d.S.Counselor == rq.p.Name && d.S.Unit == rq.p.Unit
	if d.UnitName, err = s.d.Casework.UnitName(rq.ctx, rq.call(), d.S.Unit); err != nil {
		rq.fail(err)
		return
	}
	rq.render(http.StatusOK, "subject", d)
}

// instrumentChoices lists the instruments whose text the UI can show, with
// those overdue for the person checked.
func (s *server) instrumentChoices(rq *request, due []casework.Due) []instrumentChoice {
	overdue := map[string]bool{}
	for _, x := range due {
		if x.Overdue {
			overdue[x.Instrument] = true
		}
	}
	var out []instrumentChoice
	for _, def := range s.d.Catalog.List() {
		if !administrable(def) {
			continue
		}
		out = append(out, instrumentChoice{ID: def.ID, Title: textIn(def.Title, rq.lang), Checked: overdue[def.ID]})
	}
	return out
}

// administrable reports whether the UI can show every item of def in some
// language (licensed text may be missing until an operator supplies it).
func administrable(def *screening.Definition) bool {
	for _, l := range langNames {
		if def.TextComplete[l] {
			return true
		}
	}
	return false
}

// requestOverride asks for a different tier than a recommendation's, with
// the API's validation (casework's rules) and store call.
func (s *server) requestOverride(rq *request) {
	recID := rq.r.PathValue("id")
	subject := rq.r.PostFormValue("subject")
	if !casework.IDPattern.MatchString(subject) {
		rq.notFound()
		return
	}
	back := "/subjects/" + subject
	tier, reason, note := rq.r.PostFormValue("tier"), rq.r.PostFormValue("reason_code"), rq.r.PostFormValue("note")
	out, _, err := s.d.Casework.RequestOverride(rq.ctx, rq.call(), recID, casework.OverrideInput{Tier: casework.Tier(tier), ReasonCode: reason, Note: note})
	var inv *problem.Invalid
	switch err := rq.check("override.request", err); {
	case errors.As(err, &inv):
		rq.redirect(back + "?error=override_invalid#recommendation")
	case errors.Is(err, casework.ErrConflict):
		rq.redirect(back + "?error=override_pending#recommendation")
	case err != nil:
		rq.fail(err)
	default:
		rq.redirect("/subjects/" + out.SubjectID + "?done=override_requested#recommendation")
	}
}

// acceptRecommendation makes the newest recommendation's suggestion the
// person's level, as the decision of the signed-in person (the same use
// case as POST /v1/recommendations/{id}/accept).
func (s *server) acceptRecommendation(rq *request) {
	subject := rq.r.PostFormValue("subject")
	if !casework.IDPattern.MatchString(subject) {
		rq.notFound()
		return
	}
	back := "/subjects/" + subject
	_, _, err := s.d.Casework.AcceptRecommendation(rq.ctx, rq.call(), rq.r.PathValue("id"), casework.AcceptInput{Note: rq.r.PostFormValue("note")})
	switch err := rq.check("recommendation.accept", err); {
	case errors.Is(err, casework.ErrConflict):
		rq.redirect(back + "?error=recommendation_stale#recommendation")
	case err != nil:
		rq.fail(err)
	default:
		rq.redirect(back + "?done=level_decided#recommendation")
	}
}

// requestRecommendation asks the model for advice on the person (the same
// use case as POST /v1/subjects/{id}/recommendations); a profile with too
// little recorded gets no tier and the page says so.
func (s *server) requestRecommendation(rq *request) {
	id := rq.r.PathValue("id")
	if !casework.IDPattern.MatchString(id) {
		rq.notFound()
		return
	}
	back := "/subjects/" + id
	_, _, err := s.d.Casework.Recommend(rq.ctx, rq.call(), id, "")
	var inv *problem.Invalid
	switch err := rq.check("recommendation.create", err); {
	case errors.As(err, &inv):
		rq.redirect(back + "?error=insufficient_information#recommendation")
	case err != nil:
		rq.fail(err)
	default:
		rq.redirect(back + "?done=recommended#recommendation")
	}
}

// nl2br keeps the line breaks of a configured text without trusting it.
func nl2br(s string) template.HTML {
	return template.HTML(strings.ReplaceAll(template.HTMLEscapeString(s), "\n", "<br>"))
}
