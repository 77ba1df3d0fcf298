package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/testfix"
)

// The rules of the case work, each driven through both front ends (the JSON
// API and the web pages), which reach it through the same use case of
// casework.Service and must have the same effect.

// frontEnd performs a use case as a person would through one front end.
type frontEnd struct {
	name string
	// recommend asks for a recommendation for subject; accept accepts rec.
	recommend func(e *env, c *http.Client, subject string) (status int)
	accept    func(e *env, c *http.Client, subject, rec string) (status int)
}

// call calls the API as c (a signed-in person: the session cookie is the
// API's too) or, with c nil, with the API key; out receives the answer.
func call(e *env, c *http.Client, key, method, path string, body, out any) int {
	e.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req, _ := http.NewRequest(method, e.ts.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if c == nil {
		c = http.DefaultClient
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// person is a signed-in client of username.
func person(e *env, username string) *http.Client {
	c := e.client()
	e.signin(c, username)
	return c
}

var frontEnds = []frontEnd{
	{
		name: "api",
		recommend: func(e *env, c *http.Client, subject string) int {
			return call(e, c, "", http.MethodPost, "/v1/subjects/"+subject+"/recommendations", nil, nil)
		},
		accept: func(e *env, c *http.Client, _, rec string) int {
			return call(e, c, "", http.MethodPost, "/v1/recommendations/"+rec+"/accept", nil, nil)
		},
	},
	{
		name: "web",
		recommend: func(e *env, c *http.Client, subject string) int {
			resp := e.post(c, "/subjects/"+subject+"/recommendations", url.Values{})
			if loc := resp.Header.Get("Location"); strings.Contains(loc, "error=insufficient_information") {
				return http.StatusUnprocessableEntity
			} else if strings.Contains(loc, "done=recommended") {
				return http.StatusCreated
			}
			return resp.StatusCode
		},
		accept: func(e *env, c *http.Client, subject, rec string) int {
			resp := e.post(c, "/recommendations/"+rec+"/accept", url.Values{"subject": {subject}})
			if strings.Contains(resp.Header.Get("Location"), "done=level_decided") {
				return http.StatusCreated
			}
			return resp.StatusCode
		},
	},
}

func (e *env) subject(id string) casework.Subject {
	e.t.Helper()
	var s casework.Subject
	e.api(http.MethodGet, "/v1/subjects/"+id, e.admin, nil, http.StatusOK, &s)
	return s
}

func (e *env) latestRecommendation(id string) casework.Recommendation {
	e.t.Helper()
	var l struct{ Recommendations []casework.Recommendation }
	e.api(http.MethodGet, "/v1/subjects/"+id+"/recommendations", e.admin, nil, http.StatusOK, &l)
	if len(l.Recommendations) == 0 {
		e.t.Fatalf("%s has no recommendation", id)
	}
	return l.Recommendations[0]
}

// TestPeopleDecideTheLevel: asking for a recommendation leaves the level
// unchanged; accepting it sets it (as the accepting person's decision); an
// approved override survives later recommendations; a profile with every
// input unknown gets no tier. Broken once each: AddRecommendation setting the
// tier (fails "level after a recommendation"), Features ignoring the share
// of known inputs (fails "unknown profile"), AcceptRecommendation not
// recording the decision (fails "level after accepting").
func TestPeopleDecideTheLevel(t *testing.T) {
	for _, fe := range frontEnds {
		t.Run(fe.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			carol := person(e, "carol")
			e.putSubject("R-1", "west", "carol", "王五", testfix.NIJProfile(t))

			if got := fe.recommend(e, carol, "R-1"); got != http.StatusCreated {
				t.Fatalf("recommend = %d", got)
			}
			if s := e.subject("R-1"); s.Tier != nil {
				t.Fatalf("level after a recommendation = %s, want none: advice never sets a level", *s.Tier)
			}
			rec := e.latestRecommendation("R-1")
			if !rec.Review || !rec.Tier.Valid() {
				t.Errorf("recommendation %+v: want a valid suggestion marked for review", rec)
			}
			if got := fe.accept(e, carol, "R-1", rec.ID); got != http.StatusCreated {
				t.Fatalf("accept = %d", got)
			}
			s := e.subject("R-1")
			if s.Tier == nil || *s.Tier != rec.Tier || s.TierSource != casework.DecisionAccepted {
				t.Fatalf("level after accepting = %v (%s), want %s accepted", s.Tier, s.TierSource, rec.Tier)
			}
			var hist struct{ Decisions []casework.Decision }
			e.api(http.MethodGet, "/v1/subjects/R-1/level-history", e.admin, nil, http.StatusOK, &hist)
			if len(hist.Decisions) != 1 || hist.Decisions[0].DecidedBy != "user:carol" || hist.Decisions[0].RecommendationID != rec.ID ||
				hist.Decisions[0].PreviousTier != nil {
				t.Errorf("level history = %+v", hist.Decisions)
			}

			// An override approved by another supervisor of the unit stands
			// through later recommendations.
			want := casework.Strict
			if rec.Tier == casework.Strict {
				want = casework.Lenient
			}
			var ov casework.Override
			if got := call(e, person(e, "sam"), "", http.MethodPost, "/v1/recommendations/"+rec.ID+"/overrides",
				map[string]string{"tier": string(want), "reason_code": "new_information", "note": "新情况"}, &ov); got != http.StatusCreated {
				t.Fatalf("override request = %d", got)
			}
			if got := call(e, person(e, "sue"), "", http.MethodPost, "/v1/overrides/"+ov.ID+"/approve", nil, nil); got != http.StatusOK {
				t.Fatalf("approve = %d", got)
			}
			for range 2 {
				if got := fe.recommend(e, carol, "R-1"); got != http.StatusCreated {
					t.Fatalf("recommend = %d", got)
				}
			}
			if s := e.subject("R-1"); s.Tier == nil || *s.Tier != want || s.TierSource != casework.DecisionOverride {
				t.Errorf("level after later recommendations = %v (%s), want the approved %s", s.Tier, s.TierSource, want)
			}
			// Accepting an older recommendation is refused: a newer one exists.
			if got := fe.accept(e, carol, "R-1", rec.ID); got == http.StatusCreated {
				t.Errorf("accepting a superseded recommendation = %d, want a refusal", got)
			}

			// Nothing recorded: no tier, and nothing stored.
			e.putSubject("R-2", "west", "carol", "赵六", nil)
			if got := fe.recommend(e, carol, "R-2"); got != http.StatusUnprocessableEntity {
				t.Errorf("recommend on an unknown profile = %d, want 422", got)
			}
			var l struct{ Recommendations []casework.Recommendation }
			e.api(http.MethodGet, "/v1/subjects/R-2/recommendations", e.admin, nil, http.StatusOK, &l)
			if s := e.subject("R-2"); s.Tier != nil || len(l.Recommendations) != 0 {
				t.Errorf("unknown profile: level %v, %d recommendations stored; want none", s.Tier, len(l.Recommendations))
			}
		})
	}
}

// TestOnlyPeopleDecide: API keys never decide a level, even with a
// supervisor's role; a case system records a decision only with the name of
// the person who took it, and it is recorded as theirs. Broken once:
// DecideOverride without the IsPerson check (fails "supervisor key approves").
func TestOnlyPeopleDecide(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	supKey, _, err := e.auth.CreateAPIKey(ctx, "key-sup", auth.RoleSupervisor, "west", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.putSubject("D-1", "west", "carol", "钱七", testfix.NIJProfile(t))
	var rec casework.Recommendation
	e.api(http.MethodPost, "/v1/subjects/D-1/recommendations", e.cms, nil, http.StatusCreated, &rec)
	var ov casework.Override
	carol := person(e, "carol")
	if got := call(e, carol, "", http.MethodPost, "/v1/recommendations/"+rec.ID+"/overrides",
		map[string]string{"tier": "strict", "reason_code": "new_information", "note": "n"}, &ov); got != http.StatusCreated {
		t.Fatalf("override request = %d", got)
	}
	for _, tt := range []struct {
		name   string
		c      *http.Client
		key    string
		method string
		path   string
		body   any
		want   int
	}{
		{"supervisor key approves", nil, supKey, http.MethodPost, "/v1/overrides/" + ov.ID + "/approve", nil, http.StatusForbidden},
		{"supervisor key adjusts", nil, supKey, http.MethodPost, "/v1/subjects/D-1/level",
			map[string]string{"tier": "strict", "reason_code": "violation", "note": "n"}, http.StatusForbidden},
		{"case system without a name", nil, e.cms, http.MethodPost, "/v1/subjects/D-1/level",
			map[string]string{"tier": "strict", "reason_code": "case_system_decision", "note": "n"}, http.StatusUnprocessableEntity},
		{"counselor adjusts", carol, "", http.MethodPost, "/v1/subjects/D-1/level",
			map[string]string{"tier": "strict", "reason_code": "violation", "note": "n"}, http.StatusForbidden},
	} {
		if got := call(e, tt.c, tt.key, tt.method, tt.path, tt.body, nil); got != tt.want {
			t.Errorf("%s = %d, want %d", tt.name, got, tt.want)
		}
	}
	if s := e.subject("D-1"); s.Tier != nil {
		t.Fatalf("level after refused decisions = %s", *s.Tier)
	}
	var d casework.Decision
	e.api(http.MethodPost, "/v1/subjects/D-1/level", e.cms, map[string]string{"tier": "ordinary", "reason_code": "case_system_decision",
		"note": "矫正小组评议", "decided_by": "李科长"}, http.StatusCreated, &d)
	if d.DecidedBy != "person:李科长" || d.RecordedBy != "api_key:key-cms" || d.Kind != casework.DecisionCaseSystem {
		t.Errorf("case-system decision = %+v", d)
	}
	// A supervisor of the unit adjusts it (a sanction).
	if got := call(e, person(e, "sam"), "", http.MethodPost, "/v1/subjects/D-1/level", map[string]string{"tier": "strict", "reason_code": "violation",
		"note": "违反报到规定"}, &d); got != http.StatusCreated {
		t.Fatalf("adjust = %d", got)
	}
	if s := e.subject("D-1"); s.Tier == nil || *s.Tier != casework.Strict || s.TierSource != casework.DecisionAdjustment || d.PreviousTier == nil || *d.PreviousTier != casework.Ordinary {
		t.Errorf("after adjustment: %v %s %+v", s.Tier, s.TierSource, d)
	}
}

// TestDueAcrossManyPeople lists due screenings across a caseload: people
// never screened are due (entry), the limit applies in the database, and
// the dashboard's overdue count equals the overdue caseload filter in the API
// and on the caseload page. Broken once: the NULL cardinality in dueCTE
// (fails "never screened"), the dashboard counting overdue rows of another
// query (fails "overdue count").
func TestDueAcrossManyPeople(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const n = 40
	for i := range n {
		body := map[string]any{"display_name": fmt.Sprintf("人%d", i), "sex": "male", "supervision_type": "probation", "unit": "west",
			"counselor": "carol", "profile": map[string]any{}}
		// Half entered a month ago (their first screening is overdue), half today.
		if i%2 == 0 {
			body["supervision_start"] = time.Now().AddDate(0, -1, 0).Format("2006-01-02")
		}
		e.api(http.MethodPut, fmt.Sprintf("/v1/subjects/M-%02d", i), e.admin, body, http.StatusCreated, nil)
	}
	e.phq9At("M-00", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) // screened today: phq9 not overdue for M-00

	var due struct{ Due []casework.Due }
	e.api(http.MethodGet, "/v1/reassessments?overdue=false&limit=1000", e.admin, nil, http.StatusOK, &due)
	if want := n*3 - 1 + 1; len(due.Due) != want { // one entry row became a reassessment row
		t.Errorf("never screened: %d due screenings, want %d", len(due.Due), want)
	}
	entries := 0
	for _, d := range due.Due {
		if d.Reason == casework.DueEntry {
			entries++
		}
	}
	if entries != n*3-1 {
		t.Errorf("%d entry screenings due, want %d", entries, n*3-1)
	}
	e.api(http.MethodGet, "/v1/reassessments?overdue=false&limit=7", e.admin, nil, http.StatusOK, &due)
	if len(due.Due) != 7 {
		t.Errorf("limit 7: %d rows", len(due.Due))
	}

	var dash casework.Dashboard
	e.api(http.MethodGet, "/v1/dashboard", e.admin, nil, http.StatusOK, &dash)
	var page struct {
		Subjects []casework.Subject
		Next     string
	}
	e.api(http.MethodGet, "/v1/subjects?overdue=true&limit=500", e.admin, nil, http.StatusOK, &page)
	if dash.OverdueSubjects != n/2 || len(page.Subjects) != dash.OverdueSubjects {
		t.Errorf("overdue count: dashboard %d, overdue filter %d, want %d", dash.OverdueSubjects, len(page.Subjects), n/2)
	}
	for _, s := range page.Subjects {
		if !s.Overdue || s.NextDue == nil {
			t.Errorf("%s in the overdue filter: overdue %v, next %v", s.ID, s.Overdue, s.NextDue)
		}
	}
	// The caseload page shows the same people and their next due date.
	carol := e.client()
	e.signin(carol, "carol")
	_, body := e.get(carol, "/?overdue=1")
	if got := strings.Count(body, `href="/subjects/M-`); got != n/2 {
		t.Errorf("caseload page, overdue filter: %d people, want %d", got, n/2)
	}
}

// TestDashboardOutcomes: per unit and period, people screened, flagged,
// helped and re-screened by reliable change, as a 司法所 reports upward.
func TestDashboardOutcomes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, id := range []string{"O-1", "O-2", "O-3"} {
		e.putSubject(id, "west", "carol", "x", nil)
	}
	e.putSubject("O-9", "east", "dave", "y", nil)
	e.phq9At("O-1", 2, 3, 3, 3, 3, 3, 3, 3, 2, 1) // severe with item 9: flagged
	e.phq9At("O-1", 0, 1, 1, 1, 1, 1, 0, 0, 0, 0) // re-screened: 22 → 5, reliably improved
	e.phq9At("O-2", 2, 1, 1, 1, 1, 1, 1, 1, 1, 0) // 8
	e.phq9At("O-2", 0, 1, 1, 1, 1, 1, 1, 1, 2, 0) // 9: no reliable change
	var fl struct{ Flags []casework.Flag }
	e.api(http.MethodGet, "/v1/flags?subject_id=O-1", e.admin, nil, http.StatusOK, &fl)
	sam := person(e, "sam")
	for _, f := range fl.Flags {
		call(e, sam, "", http.MethodPost, "/v1/flags/"+f.ID+"/acknowledge", nil, nil)
		if got := call(e, sam, "", http.MethodPost, "/v1/flags/"+f.ID+"/resolve", map[string]any{"resolution_code": "referred_to_services",
			"interventions": []string{"individual_counselling"}, "note": "已转介"}, nil); got != http.StatusOK {
			t.Fatalf("resolve = %d", got)
		}
	}
	if len(fl.Flags) == 0 {
		t.Fatal("no flag raised by a PHQ-9 with item 9 positive")
	}
	var dash casework.Dashboard
	call(e, sam, "", http.MethodGet, "/v1/dashboard", nil, &dash)
	if len(dash.Units) != 1 {
		t.Fatalf("supervisor of west sees units %+v", dash.Units)
	}
	u := dash.Units[0]
	if u.Unit != "west" || u.Supervised != 3 || u.Screened != 2 || u.Flagged != 1 || u.Intervened != 1 || u.Rescreened != 2 ||
		u.Improved != 1 || u.NoChange != 1 || u.Deteriorated != 0 || u.ScreenedRate == nil {
		t.Errorf("west outcomes = %+v", u)
	}
}
