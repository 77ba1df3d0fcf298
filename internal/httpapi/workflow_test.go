package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/postgres"
	"github.com/sunpath/sunpath/internal/testfix"
)

// call sends a request as client (a cookie client) or with key, and decodes
// the JSON answer into out when it is not nil.
func (e *env) call(client *http.Client, key, method, path string, body any, out any, headers ...string) int {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.ts.URL+path, r)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

func (e *env) putSubject(id, unit, counselor string, profile map[string]any) {
	e.t.Helper()
	body := map[string]any{"display_name": "测试对象 " + id, "sex": "female", "birth_year": 1988, "supervision_type": "probation",
		"unit": unit, "counselor": counselor, "supervision_start": time.Now().AddDate(0, 0, -3).Format("2006-01-02"), "profile": profile}
	if code := e.call(nil, e.keys[auth.RoleAdmin], http.MethodPut, "/v1/subjects/"+id, body, nil); code != http.StatusCreated && code != http.StatusOK {
		e.t.Fatalf("PUT subject %s = %d", id, code)
	}
}

func phq9(scores ...int) map[string]any {
	a := map[string]any{}
	for i, v := range scores {
		a[fmt.Sprintf("phq9_%d", i+1)] = v
	}
	return map[string]any{"instrument": "phq9", "language": "zh-CN", "answers": a}
}

func asqAcute() map[string]any {
	return map[string]any{"instrument": "asq", "language": "en", "answers": map[string]any{"asq_1": "yes", "asq_2": "no", "asq_3": "no", "asq_4": "no", "asq_5": "yes"}}
}

func TestWorkflowEndToEnd(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cms := e.keys[auth.RoleCaseSystem]
	counselor, supervisor, other, auditor := e.login("carol"), e.login("sam"), e.login("dave"), e.login("audrey")

	// The case system registers a person in a unit of its agency, and may
	// not place anyone in another agency's unit.
	body := map[string]any{"display_name": "李四", "sex": "male", "birth_year": 1991, "supervision_type": "parole", "unit": "west",
		"counselor": "carol", "supervision_start": time.Now().AddDate(0, 0, -2).Format("2006-01-02"), "profile": testfix.NIJProfile(t)}
	var subj casework.Subject
	if code := e.call(nil, cms, http.MethodPut, "/v1/subjects/P-100", body, &subj); code != http.StatusCreated {
		t.Fatalf("PUT subject = %d", code)
	}
	if subj.ID != "P-100" || subj.DisplayName != "李四" || subj.Counselor != "carol" {
		t.Errorf("subject = %+v", subj)
	}
	body["unit"] = "east"
	var p problemBody
	if code := e.call(nil, cms, http.MethodPut, "/v1/subjects/P-101", body, &p); code != http.StatusUnprocessableEntity || !p.names("unit") {
		t.Errorf("PUT into another agency's unit = %d %+v, want 422 naming unit", code, p)
	}

	// The counselor screens: PHQ-9 with item 9 positive raises an urgent flag.
	var a casework.Assessment
	if code := e.call(counselor, "", http.MethodPost, "/v1/subjects/P-100/assessments", phq9(2, 2, 2, 2, 2, 2, 2, 2, 1), &a); code != http.StatusCreated {
		t.Fatalf("POST assessment = %d", code)
	}
	var res struct {
		Total    int
		Severity string
	}
	json.Unmarshal(a.Result, &res)
	if res.Total != 17 || res.Severity != "moderately_severe" || len(a.Flags) != 1 || a.Flags[0].Code != "suicidal_ideation" || a.Flags[0].Level != "urgent" {
		t.Fatalf("assessment result %+v flags %+v", res, a.Flags)
	}
	if a.ContentHash == "" || a.EngineVersion == "" || a.InstrumentVersion == "" {
		t.Errorf("assessment lacks provenance: %+v", a)
	}

	// A critical ASQ raises a critical flag with the crisis protocol, seen at
	// once by the counselor and the supervisor, most urgent first.
	var asq casework.Assessment
	if code := e.call(counselor, "", http.MethodPost, "/v1/subjects/P-100/assessments", asqAcute(), &asq); code != http.StatusCreated {
		t.Fatalf("POST ASQ = %d", code)
	}
	if len(asq.Flags) != 1 || asq.Flags[0].Code != "suicide_risk_acute" || asq.Flags[0].Level != "critical" || asq.Flags[0].CrisisProtocol == "" {
		t.Fatalf("ASQ flags = %+v", asq.Flags)
	}
	if d := asq.Flags[0].Deadline.Sub(asq.Flags[0].RaisedAt); d != 15*time.Minute {
		t.Errorf("critical deadline = %s, want 15m", d)
	}
	for name, c := range map[string]*http.Client{"counselor": counselor, "supervisor": supervisor} {
		var fl flagList
		if code := e.call(c, "", http.MethodGet, "/v1/flags?status=open", nil, &fl); code != http.StatusOK || len(fl.Flags) != 2 || fl.Flags[0].Level != "critical" {
			t.Fatalf("%s sees flags %d %+v", name, code, fl.Flags)
		}
	}
	var none flagList
	if e.call(other, "", http.MethodGet, "/v1/flags", nil, &none); len(none.Flags) != 0 {
		t.Errorf("another unit's counselor sees %d flags", len(none.Flags))
	}

	// Another unit's counselor gets 404 for the person and its assessments.
	for _, path := range []string{"/v1/subjects/P-100", "/v1/subjects/P-100/assessments", "/v1/subjects/P-100/recommendations"} {
		var p problemBody
		if code := e.call(other, "", http.MethodGet, path, nil, &p); code != http.StatusNotFound {
			t.Errorf("other unit GET %s = %d, want 404", path, code)
		}
	}
	if code := e.call(other, "", http.MethodPost, "/v1/subjects/P-100/assessments", phq9(0, 0, 0, 0, 0, 0, 0, 0, 0), nil); code != http.StatusNotFound {
		t.Errorf("other unit POST assessment = %d, want 404", code)
	}

	// Flag lifecycle: resolve needs acknowledgement first, then code and note.
	fid := asq.Flags[0].ID
	if code := e.call(supervisor, "", http.MethodPost, "/v1/flags/"+fid+"/resolve", map[string]any{"resolution_code": "safety_plan_made", "interventions": []string{"crisis_intervention"}, "note": "plan"}, nil); code != http.StatusConflict {
		t.Errorf("resolve an open flag = %d, want 409", code)
	}
	var fl casework.Flag
	if code := e.call(counselor, "", http.MethodPost, "/v1/flags/"+fid+"/acknowledge", nil, &fl); code != http.StatusOK || fl.Status != "acknowledged" || fl.AcknowledgedBy != "user:carol" {
		t.Fatalf("acknowledge = %d %+v", code, fl)
	}
	if code := e.call(counselor, "", http.MethodPost, "/v1/flags/"+fid+"/resolve", map[string]string{"resolution_code": "safety_plan_made"}, &p); code != http.StatusUnprocessableEntity || !p.names("note") || !p.names("interventions") {
		t.Errorf("resolve without note = %d %+v", code, p)
	}
	if code := e.call(counselor, "", http.MethodPost, "/v1/flags/"+fid+"/resolve", map[string]any{"resolution_code": "safety_plan_made", "interventions": []string{"crisis_intervention", "family_contacted"}, "note": "安全计划已制定"}, &fl); code != http.StatusOK || fl.Status != "resolved" || fl.ResolutionNote != "安全计划已制定" || fl.FollowUpDue == nil || len(fl.Interventions) != 2 {
		t.Fatalf("resolve = %d %+v", code, fl)
	}
	// The follow-up screening the resolution set is on the person's schedule.
	var sched dueList
	e.call(counselor, "", http.MethodGet, "/v1/subjects/P-100/schedule", nil, &sched)
	followUp := false
	for _, d := range sched.Due {
		followUp = followUp || d.Reason == casework.DueFollowUp && d.FlagID == fid && d.Instrument == "asq" && d.Due.Equal(*fl.FollowUpDue)
	}
	if !followUp {
		t.Errorf("schedule after resolving %s has no follow-up: %+v", fid, sched.Due)
	}

	// Reads of the person's assessments are listed, with answers only on request.
	var list assessmentList
	if code := e.call(counselor, "", http.MethodGet, "/v1/subjects/P-100/assessments?include_answers=true", nil, &list); code != http.StatusOK || len(list.Assessments) != 2 || len(list.Assessments[1].Answers) == 0 {
		t.Fatalf("list assessments = %d %d", code, len(list.Assessments))
	}
	var cmsList assessmentList
	if e.call(nil, cms, http.MethodGet, "/v1/subjects/P-100/assessments?include_answers=true", nil, &cmsList); len(cmsList.Assessments[0].Answers) != 0 {
		t.Error("the case system received answers")
	}

	// A recommendation from the stored profile, explained; missing inputs are named.
	var rec casework.Recommendation
	if code := e.call(nil, cms, http.MethodPost, "/v1/subjects/P-100/recommendations", map[string]string{"model": "nij-review"}, &rec); code != http.StatusCreated {
		t.Fatalf("POST recommendation = %d", code)
	}
	if rec.Probability <= 0 || rec.Probability >= 1 || !rec.Tier.Valid() || len(rec.Explanation) < 10 || rec.Model.SHA256 == "" || rec.InputsDigest == "" {
		t.Errorf("recommendation = %+v", rec)
	}
	e.putSubject("P-102", "west", "carol", map[string]any{"Age_at_Release": "23-27"})
	if code := e.call(nil, cms, http.MethodPost, "/v1/subjects/P-102/recommendations", map[string]string{"model": "nij-review"}, &p); code != http.StatusUnprocessableEntity || !p.names("profile.Prior_Arrest_Episodes_Felony") {
		t.Errorf("recommendation with missing inputs = %d, errors %+v", code, p.Errors)
	}

	// Override: requested with a coded reason, self-approval refused, a
	// supervisor of the unit approves, and only then does the tier change.
	want := casework.Strict
	if rec.Tier == casework.Strict {
		want = casework.Ordinary
	}
	var ov casework.Override
	if code := e.call(supervisor, "", http.MethodPost, "/v1/recommendations/"+rec.ID+"/overrides", map[string]string{"tier": string(want), "reason_code": "new_information", "note": "新情况"}, &ov); code != http.StatusCreated || ov.Status != "pending" {
		t.Fatalf("override = %d %+v", code, ov)
	}
	subj = casework.Subject{}
	e.call(counselor, "", http.MethodGet, "/v1/subjects/P-100", nil, &subj)
	if subj.Tier != nil {
		t.Errorf("tier before approval = %v, want none: a recommendation is advice, never a level", *subj.Tier)
	}
	if code := e.call(supervisor, "", http.MethodPost, "/v1/overrides/"+ov.ID+"/approve", nil, nil); code != http.StatusForbidden {
		t.Errorf("self-approval = %d, want 403", code)
	}
	if code := e.call(e.login("eve"), "", http.MethodPost, "/v1/overrides/"+ov.ID+"/approve", nil, nil); code != http.StatusNotFound {
		t.Errorf("approval by another unit's supervisor = %d, want 404", code)
	}
	if code := e.call(e.login("sue"), "", http.MethodPost, "/v1/overrides/"+ov.ID+"/approve", map[string]string{"note": "同意"}, &ov); code != http.StatusOK || ov.Status != "approved" || ov.DecidedBy != "user:sue" {
		t.Fatalf("approval = %d %+v", code, ov)
	}
	e.call(counselor, "", http.MethodGet, "/v1/subjects/P-100", nil, &subj)
	if subj.Tier == nil || *subj.Tier != want || subj.TierSource != "override" {
		t.Errorf("tier after approval = %v (%s), want %s", subj.Tier, subj.TierSource, want)
	}
	// A later recommendation does not undo the approved override.
	var rec2 casework.Recommendation
	if code := e.call(nil, cms, http.MethodPost, "/v1/subjects/P-100/recommendations", map[string]string{"model": "nij-review"}, &rec2); code != http.StatusCreated || rec2.Review != (rec2.Tier != want) {
		t.Fatalf("second recommendation = %d %+v", code, rec2)
	}
	e.call(counselor, "", http.MethodGet, "/v1/subjects/P-100", nil, &subj)
	if subj.Tier == nil || *subj.Tier != want || subj.TierSource != "override" {
		t.Errorf("tier after a later recommendation = %v (%s), want the approved %s", subj.Tier, subj.TierSource, want)
	}
	var an analyticsResponse
	if code := e.call(supervisor, "", http.MethodGet, "/v1/analytics/overrides?by=reason", nil, &an); code != http.StatusOK || len(an.Groups) != 1 || an.Groups[0].Approved != 1 {
		t.Errorf("analytics = %d %+v", code, an)
	}

	// Dashboard and trends.
	var dash casework.Dashboard
	if code := e.call(supervisor, "", http.MethodGet, "/v1/dashboard", nil, &dash); code != http.StatusOK || dash.Subjects != 2 || dash.NewEntrants != 2 || dash.NewEntrantsScreened != 1 {
		t.Errorf("dashboard = %d %+v", code, dash)
	}
	e.call(counselor, "", http.MethodPost, "/v1/subjects/P-100/assessments", phq9(3, 3, 3, 3, 3, 3, 3, 3, 0), nil)
	var tr casework.Trend
	if code := e.call(counselor, "", http.MethodGet, "/v1/subjects/P-100/trends/phq9", nil, &tr); code != http.StatusOK || len(tr.Points) != 2 || tr.Points[1].ReliableChange != "deteriorated" {
		t.Errorf("trend = %d %+v", code, tr)
	}
	// Two severe PHQ-9 results in a row raise the cross-instrument flag.
	var open flagList
	e.call(counselor, "", http.MethodGet, "/v1/flags?status=open", nil, &open)
	if !hasFlag(open.Flags, "persistent_severe_depression") {
		t.Errorf("no persistent_severe_depression flag after two severe PHQ-9: %+v", open.Flags)
	}

	// The auditor sees who did what; denials are in the trail.
	var al auditList
	if code := e.call(auditor, "", http.MethodGet, "/v1/audit?subject_id=P-100&limit=1000", nil, &al); code != http.StatusOK {
		t.Fatalf("GET audit = %d", code)
	}
	actions := map[string]int{}
	for _, ev := range al.Events {
		actions[ev.Action+"/"+ev.Outcome]++
	}
	for _, want := range []string{"subject.put/success", "assessment.create/success", "assessment.list/success", "flag.acknowledge/success",
		"flag.resolve/success", "recommendation.create/success", "override.request/success", "override.approve/success"} {
		if actions[want] == 0 {
			t.Errorf("audit trail lacks %s: %v", want, actions)
		}
	}
	// The other unit's three reads and one write of P-100, each denied.
	for _, want := range []string{"GET subjects/denied", "GET subjects.assessments/denied", "GET subjects.recommendations/denied", "POST subjects.assessments/denied"} {
		if actions[want] != 1 {
			t.Errorf("audit trail has %d %s, want 1: %v", actions[want], want, actions)
		}
	}
	if code := e.call(counselor, "", http.MethodGet, "/v1/audit", nil, nil); code != http.StatusForbidden {
		t.Errorf("counselor GET /v1/audit = %d, want 403", code)
	}

	// The whole trail seals and verifies.
	for {
		n, err := e.audit.Seal(context.Background(), nil, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	tr2, err := e.audit.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := audit.Verify(tr2); err != nil || rep.Events < 20 {
		t.Errorf("verify = %+v, %v", rep, err)
	}
}

func hasFlag(fs []casework.Flag, code string) bool {
	for _, f := range fs {
		if f.Code == code {
			return true
		}
	}
	return false
}

type problemBody struct {
	Status int
	Errors []struct{ Field, Item, Detail string }
}

func (p problemBody) names(field string) bool {
	for _, e := range p.Errors {
		if e.Field == field || e.Item == field {
			return true
		}
	}
	return false
}

func TestAssessmentValidationStoresNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("V-1", "west", "carol", nil)
	counselor := e.login("carol")
	tests := []struct {
		name      string
		body      map[string]any
		wantItems []string
	}{
		{"out of range", phq9(0, 0, 0, 0, 0, 0, 0, 0, 7), []string{"phq9_9"}},
		{"unknown item", map[string]any{"instrument": "phq9", "language": "zh-CN", "answers": map[string]any{"phq9_1": 0, "phq9_2": 0, "phq9_3": 0, "phq9_4": 0, "phq9_5": 0, "phq9_6": 0, "phq9_7": 0, "phq9_8": 0, "phq9_9": 0, "phq9_99": 1}}, []string{"phq9_99"}},
		{"item 9 missing", phq9(0, 0, 0, 0, 0, 0, 0, 0), []string{"phq9_9"}},
		{"wrong type", map[string]any{"instrument": "phq9", "language": "zh-CN", "answers": map[string]any{"phq9_1": []int{1}}}, []string{"phq9_1"}},
		{"unknown instrument", map[string]any{"instrument": "nope", "language": "zh-CN", "answers": map[string]any{"a": 1}}, []string{"instrument"}},
	}
	for _, tt := range tests {
		var p problemBody
		if code := e.call(counselor, "", http.MethodPost, "/v1/subjects/V-1/assessments", tt.body, &p); code != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d, want 422", tt.name, code)
		}
		for _, it := range tt.wantItems {
			if !p.names(it) {
				t.Errorf("%s: errors %+v do not name %s", tt.name, p.Errors, it)
			}
		}
	}
	var list assessmentList
	e.call(counselor, "", http.MethodGet, "/v1/subjects/V-1/assessments", nil, &list)
	if len(list.Assessments) != 0 {
		t.Fatalf("%d assessments stored after invalid submissions", len(list.Assessments))
	}
}

// TestIdempotencyConcurrent sends one key and body 50 times at once: one
// assessment, and every answer is the original response.
func TestIdempotencyConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("I-1", "west", "carol", nil)
	key := e.keys[auth.RoleCaseSystem]
	body, _ := json.Marshal(phq9(1, 1, 1, 1, 1, 1, 1, 1, 0))
	const n = 50
	var wg sync.WaitGroup
	bodies := make([]string, n)
	codes := make([]int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v1/subjects/I-1/assessments", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Idempotency-Key", "same-key-1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			codes[i], bodies[i] = resp.StatusCode, string(b)
		}(i)
	}
	wg.Wait()
	for i := range codes {
		if codes[i] != http.StatusCreated || bodies[i] != bodies[0] {
			t.Fatalf("request %d: %d %s; first: %s", i, codes[i], bodies[i], bodies[0])
		}
	}
	var list assessmentList
	e.call(nil, key, http.MethodGet, "/v1/subjects/I-1/assessments", nil, &list)
	if len(list.Assessments) != 1 {
		t.Fatalf("%d assessments after 50 duplicates, want 1", len(list.Assessments))
	}
	other, _ := json.Marshal(phq9(2, 1, 1, 1, 1, 1, 1, 1, 0))
	var p problemBody
	if code := e.call(nil, key, http.MethodPost, "/v1/subjects/I-1/assessments", json.RawMessage(other), &p, "Idempotency-Key", "same-key-1"); code != http.StatusUnprocessableEntity {
		t.Errorf("same key, other body = %d, want 422", code)
	}
	// Keys are scoped per client: another client's same key is a new request.
	if code := e.call(nil, e.keys[auth.RoleAdmin], http.MethodPost, "/v1/subjects/I-1/assessments", json.RawMessage(body), nil, "Idempotency-Key", "same-key-1"); code != http.StatusCreated {
		t.Errorf("another client with the same key = %d, want 201", code)
	}
}

// TestEscalation uses an injectable clock: an unacknowledged critical flag
// escalates to the supervisors at its deadline and to admins one deadline
// later, and never more.
func TestEscalation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("E-1", "west", "carol", nil)
	var a casework.Assessment
	e.call(e.login("carol"), "", http.MethodPost, "/v1/subjects/E-1/assessments", asqAcute(), &a)
	ctx := context.Background()
	if fs, _ := e.cases.Escalate(ctx); len(fs) != 0 {
		t.Fatalf("escalated before the deadline: %+v", fs)
	}
	e.clock.Advance(16 * time.Minute)
	fs, err := e.cases.Escalate(ctx)
	if err != nil || len(fs) != 1 || fs[0].EscalationLevel != 1 {
		t.Fatalf("at deadline: %+v %v", fs, err)
	}
	if fs, _ := e.cases.Escalate(ctx); len(fs) != 0 {
		t.Fatalf("escalated twice at one level: %+v", fs)
	}
	e.clock.Advance(15 * time.Minute)
	if fs, _ := e.cases.Escalate(ctx); len(fs) != 1 || fs[0].EscalationLevel != 2 {
		t.Fatalf("second escalation: %+v", fs)
	}
	e.clock.Advance(24 * time.Hour)
	if fs, _ := e.cases.Escalate(ctx); len(fs) != 0 {
		t.Fatalf("escalated past admins: %+v", fs)
	}
	var fl flagList
	e.call(e.login("sam"), "", http.MethodGet, "/v1/flags?overdue=true", nil, &fl)
	if len(fl.Flags) != 1 || !fl.Flags[0].Overdue || fl.Flags[0].EscalationLevel != 2 {
		t.Errorf("supervisor's overdue flags: %+v", fl.Flags)
	}
	out, _ := e.cases.Outbox(ctx, "", 100)
	topics := map[string]int{}
	for _, o := range out {
		topics[o.Topic]++
	}
	if topics["flag.raised"] != 1 || topics["flag.escalated"] != 2 {
		t.Errorf("notifications: %v", topics)
	}
}

// TestEscalationTwoReplicas: two stores on separate pools escalate many
// overdue flags at the same time; each flag escalates exactly once.
func TestEscalationTwoReplicas(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	cfg := postgres.DefaultConfig()
	cfg.URL = url
	ctx := context.Background()
	keys := testfix.Keyring(t)
	clk := &clock{t: time.Now()}
	var replicas []*postgres.Cases
	for i := 0; i < 2; i++ {
		db, err := postgres.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		replicas = append(replicas, postgres.NewCases(db, postgres.CasesConfig{Keys: keys, Flags: casework.DefaultFlagPolicy, Now: clk.Now}))
	}
	e := newEnvOn(t, mustOpen(t, url))
	e.putSubject("R-1", "west", "carol", nil)
	counselor := e.login("carol")
	const flags = 60
	for i := 0; i < flags; i++ {
		if code := e.call(counselor, "", http.MethodPost, "/v1/subjects/R-1/assessments", asqAcute(), nil); code != http.StatusCreated {
			t.Fatalf("assessment %d = %d", i, code)
		}
	}
	clk.Advance(16 * time.Minute)
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for _, r := range replicas {
		for k := 0; k < 3; k++ {
			wg.Add(1)
			go func(r *postgres.Cases) {
				defer wg.Done()
				fs, err := r.Escalate(ctx)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				for _, f := range fs {
					count[f.ID]++
				}
				mu.Unlock()
			}(r)
		}
	}
	wg.Wait()
	if len(count) != flags {
		t.Fatalf("%d flags escalated, want %d", len(count), flags)
	}
	for id, n := range count {
		if n != 1 {
			t.Fatalf("flag %s escalated %d times", id, n)
		}
	}
}

func mustOpen(t *testing.T, url string) *postgres.DB {
	cfg := postgres.DefaultConfig()
	cfg.URL = url
	db, err := postgres.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// TestAuditFailureRollsBack: when the audit event cannot be written, the
// assessment is not stored either.
func TestAuditFailureRollsBack(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	e := newEnvOn(t, mustOpen(t, url))
	e.putSubject("A-1", "west", "carol", nil)
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), `CREATE FUNCTION fail_audit() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.action = 'assessment.create' THEN RAISE EXCEPTION 'audit store broken'; END IF; RETURN NEW; END; $$;
		CREATE TRIGGER fail_audit BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION fail_audit();`); err != nil {
		t.Fatal(err)
	}
	counselor := e.login("carol")
	if code := e.call(counselor, "", http.MethodPost, "/v1/subjects/A-1/assessments", asqAcute(), nil); code != http.StatusInternalServerError {
		t.Fatalf("assessment with a failing audit insert = %d, want 500", code)
	}
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM assessments) + (SELECT count(*) FROM flags) + (SELECT count(*) FROM outbox)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d assessment, flag or outbox rows stored without their audit event", n)
	}
}

// TestWebhookRetries: a receiver that fails four times gets the
// notification once it recovers, with the same delivery id every time.
func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("W-1", "west", "carol", nil)
	e.call(e.login("carol"), "", http.MethodPost, "/v1/subjects/W-1/assessments", asqAcute(), nil)
	ctx := context.Background()
	attempts := 0
	seen := map[string]int{}
	send := func(_ context.Context, d postgres.Delivery) error {
		attempts++
		seen[d.DeliveryID]++
		if attempts <= 4 {
			return fmt.Errorf("receiver down")
		}
		if bytes.Contains(d.Payload, []byte("测试对象")) {
			t.Error("payload carries the person's name")
		}
		return nil
	}
	delivered := 0
	for round := 0; round < 10 && delivered == 0; round++ {
		ok, failed, err := e.cases.DeliverOutbox(ctx, 10, 12, send)
		if err != nil || failed != 0 {
			t.Fatalf("deliver: %v failed=%d", err, failed)
		}
		delivered += ok
		e.clock.Advance(2 * time.Hour) // past any backoff
	}
	if delivered != 1 || attempts != 5 || len(seen) != 1 {
		t.Fatalf("delivered %d after %d attempts with %d delivery ids", delivered, attempts, len(seen))
	}
	if ok, _, _ := e.cases.DeliverOutbox(ctx, 10, 12, send); ok != 0 {
		t.Fatal("delivered again after success")
	}
	out, _ := e.cases.Outbox(ctx, "delivered", 10)
	if len(out) != 1 || out[0].Attempts != 5 {
		t.Errorf("outbox status = %+v", out)
	}
}

// TestKioskSession: a kiosk token reaches only its session, survives an
// interruption (answers saved item by item), submits once, then stops working.
func TestKioskSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("K-1", "west", "carol", nil)
	counselor := e.login("carol")
	var sc casework.OpenedSession
	if code := e.call(counselor, "", http.MethodPost, "/v1/subjects/K-1/sessions", map[string]any{"instruments": []string{"phq9", "asq"}, "language": "zh-CN", "kiosk": true}, &sc); code != http.StatusCreated || sc.KioskToken == "" {
		t.Fatalf("create session = %d %+v", code, sc)
	}
	tok := sc.KioskToken
	if code := e.call(nil, auth.KioskPrefix+strings.Repeat("x", 43), http.MethodGet, "/v1/kiosk/session", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("wrong kiosk token = %d, want 401", code)
	}
	for _, path := range []string{"/v1/subjects/K-1", "/v1/flags", "/v1/instruments/phq9/score"} {
		if code := e.call(nil, tok, http.MethodGet, path, nil, nil); code != http.StatusForbidden && code != http.StatusMethodNotAllowed {
			t.Errorf("kiosk token on %s = %d, want 403", path, code)
		}
	}
	for i := 1; i <= 5; i++ {
		if code := e.call(nil, tok, http.MethodPut, "/v1/kiosk/session/answers", map[string]any{"instrument": "phq9", "answers": map[string]any{fmt.Sprintf("phq9_%d", i): 1}}, nil); code != http.StatusOK {
			t.Fatalf("autosave item %d = %d", i, code)
		}
	}
	var p problemBody
	if code := e.call(nil, tok, http.MethodPut, "/v1/kiosk/session/answers", map[string]any{"instrument": "phq9", "answers": map[string]any{"phq9_6": 9}}, &p); code != http.StatusUnprocessableEntity || !p.names("phq9_6") {
		t.Errorf("invalid autosave = %d %+v", code, p)
	}
	// The tablet is closed and reopened: the saved answers come back.
	var kv casework.SessionView
	if code := e.call(nil, tok, http.MethodGet, "/v1/kiosk/session", nil, &kv); code != http.StatusOK || len(kv.Answers["phq9"]) != 5 || len(kv.Items["phq9"]) != 10 {
		t.Fatalf("resume = %d answers %v items %d", code, kv.Answers, len(kv.Items["phq9"]))
	}
	if code := e.call(nil, tok, http.MethodPost, "/v1/kiosk/session/submit", nil, &p); code != http.StatusUnprocessableEntity {
		t.Errorf("submit incomplete = %d, want 422", code)
	}
	rest := map[string]any{"phq9_6": 0, "phq9_7": 0, "phq9_8": 0, "phq9_9": 1}
	e.call(nil, tok, http.MethodPut, "/v1/kiosk/session/answers", map[string]any{"instrument": "phq9", "answers": rest}, nil)
	e.call(nil, tok, http.MethodPut, "/v1/kiosk/session/answers", map[string]any{"instrument": "asq", "answers": map[string]any{"asq_1": "no", "asq_2": "no", "asq_3": "no", "asq_4": "no"}}, nil)
	var sr casework.Submitted
	if code := e.call(nil, tok, http.MethodPost, "/v1/kiosk/session/submit", nil, &sr); code != http.StatusCreated || sr.Status != "submitted" || len(sr.Assessments) != 0 {
		t.Fatalf("submit = %d %+v (a kiosk must not see results)", code, sr)
	}
	if code := e.call(nil, tok, http.MethodGet, "/v1/kiosk/session", nil, nil); code != http.StatusUnauthorized {
		t.Errorf("kiosk token after submit = %d, want 401", code)
	}
	var list assessmentList
	e.call(counselor, "", http.MethodGet, "/v1/subjects/K-1/assessments", nil, &list)
	if len(list.Assessments) != 2 {
		t.Fatalf("%d assessments from the kiosk session, want 2", len(list.Assessments))
	}
	var fl flagList
	e.call(counselor, "", http.MethodGet, "/v1/flags?subject_id=K-1", nil, &fl)
	if !hasFlag(fl.Flags, "suicidal_ideation") {
		t.Errorf("the kiosk's PHQ-9 item 9 did not flag: %+v", fl.Flags)
	}
}

// TestIdempotentOverrideRace: duplicates of an override request that lose
// the race fail on the first's effect (one pending override per
// recommendation) and must still be answered by the first's reply.
func TestIdempotentOverrideRace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.putSubject("O-1", "west", "carol", testfix.NIJProfile(t))
	var rec casework.Recommendation
	if code := e.call(nil, e.keys[auth.RoleCaseSystem], http.MethodPost, "/v1/subjects/O-1/recommendations", map[string]string{}, &rec); code != http.StatusCreated {
		t.Fatalf("recommendation = %d", code)
	}
	sam := e.login("sam")
	body, _ := json.Marshal(map[string]string{"tier": "strict", "reason_code": "new_information", "note": "n"})
	var wg sync.WaitGroup
	codes := make([]int, 10)
	bodies := make([]string, 10)
	for i := range codes {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/v1/recommendations/"+rec.ID+"/overrides", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Idempotency-Key", "override-once")
			resp, err := sam.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			codes[i], bodies[i] = resp.StatusCode, string(b)
		}(i)
	}
	wg.Wait()
	for i := range codes {
		if codes[i] != http.StatusCreated || bodies[i] != bodies[0] {
			t.Fatalf("request %d = %d %s; first %s", i, codes[i], bodies[i], bodies[0])
		}
	}
	var list overrideList
	e.call(sam, "", http.MethodGet, "/v1/overrides", nil, &list)
	if len(list.Overrides) != 1 {
		t.Fatalf("%d overrides, want 1", len(list.Overrides))
	}
}

// TestSubjectDueDates: a person who entered supervision a month ago and was
// never screened is overdue (first screening within a week); one who
// entered yesterday is not. Reads and the overdue filter agree.
func TestSubjectDueDates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.keys[auth.RoleAdmin]
	for id, daysAgo := range map[string]int{"D-OLD": 30, "D-NEW": 1} {
		body := map[string]any{"display_name": id, "sex": "male", "supervision_type": "parole", "unit": "west", "counselor": "carol",
			"supervision_start": time.Now().AddDate(0, 0, -daysAgo).Format("2006-01-02")}
		if code := e.call(nil, admin, http.MethodPut, "/v1/subjects/"+id, body, nil); code != http.StatusCreated {
			t.Fatalf("PUT %s = %d", id, code)
		}
	}
	var old, fresh casework.Subject
	e.call(nil, admin, http.MethodGet, "/v1/subjects/D-OLD", nil, &old)
	e.call(nil, admin, http.MethodGet, "/v1/subjects/D-NEW", nil, &fresh)
	if old.NextDue == nil || !old.Overdue || fresh.NextDue == nil || fresh.Overdue {
		t.Fatalf("due dates: old %v overdue=%v, new %v overdue=%v", old.NextDue, old.Overdue, fresh.NextDue, fresh.Overdue)
	}
	if d := time.Until(*fresh.NextDue); d < 5*24*time.Hour || d > 7*24*time.Hour {
		t.Errorf("new entrant due in %s, want about 6 days", d)
	}
	var all, overdue subjectList
	e.call(nil, admin, http.MethodGet, "/v1/subjects", nil, &all)
	e.call(nil, admin, http.MethodGet, "/v1/subjects?overdue=true", nil, &overdue)
	if len(all.Subjects) != 2 || all.Subjects[1].NextDue == nil {
		t.Fatalf("list = %+v", all.Subjects)
	}
	if len(overdue.Subjects) != 1 || overdue.Subjects[0].ID != "D-OLD" {
		t.Fatalf("overdue list = %+v", overdue.Subjects)
	}
}

// A case system sees the subjects of its agency's units: when a unit moves
// to another agency, or a subject to a unit of another agency, visibility
// follows at once (the subject's agency is kept by the database).
func TestCaseSystemScopeFollowsAgency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin, hz := e.keys[auth.RoleAdmin], e.keys[auth.RoleCaseSystem]
	nb, _, err := e.auth.CreateAPIKey(context.Background(), "case system nb", auth.RoleCaseSystem, "nb", nil)
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"display_name": "A", "sex": "male", "supervision_type": "parole", "unit": "west"}
	if code := e.call(nil, admin, http.MethodPut, "/v1/subjects/AG-1", body, nil); code != http.StatusCreated {
		t.Fatalf("PUT subject = %d", code)
	}
	sees := func(key string) bool {
		t.Helper()
		code := e.call(nil, key, http.MethodGet, "/v1/subjects/AG-1", nil, nil)
		if code != http.StatusOK && code != http.StatusNotFound {
			t.Fatalf("GET = %d", code)
		}
		var list subjectList
		e.call(nil, key, http.MethodGet, "/v1/subjects", nil, &list)
		if listed := len(list.Subjects) == 1; listed != (code == http.StatusOK) {
			t.Fatalf("GET = %d but listed = %v", code, listed)
		}
		return code == http.StatusOK
	}
	if !sees(hz) || sees(nb) {
		t.Fatal("west (agency hz): want hz to see the subject and nb not")
	}
	if code := e.call(nil, admin, http.MethodPut, "/v1/units/west", map[string]string{"name": "west", "agency": "nb"}, nil); code != http.StatusOK {
		t.Fatalf("PUT unit = %d", code)
	}
	if sees(hz) || !sees(nb) {
		t.Fatal("west moved to agency nb: want nb to see the subject and hz not")
	}
	body["unit"] = "east" // agency nb
	if code := e.call(nil, admin, http.MethodPut, "/v1/subjects/AG-1", body, nil); code != http.StatusOK {
		t.Fatalf("PUT subject = %d", code)
	}
	if code := e.call(nil, admin, http.MethodPut, "/v1/units/east", map[string]string{"name": "east", "agency": "hz"}, nil); code != http.StatusOK {
		t.Fatalf("PUT unit = %d", code)
	}
	if !sees(hz) || sees(nb) {
		t.Fatal("subject moved to east, east moved to hz: want hz to see the subject and nb not")
	}
}
