package httpapi

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/risk"
	"github.com/sunpath/sunpath/internal/riskmodel"
	"github.com/sunpath/sunpath/internal/testfix"
)

const cnTemplate = "../../models/templates/community-corrections-cn/spec.yaml"

// cnPopulation generates people with the Chinese template's columns
// (GENERATED DATA for the pipeline test only, never shipped as a model):
// every level uniform, the outcome logistic in violations during
// supervision, prior offences, unemployment and unstable residence.
type cnPopulation struct {
	spec *riskmodel.Spec
	rng  *rand.Rand
}

func (g *cnPopulation) person() (profile map[string]any, p float64) {
	profile = map[string]any{}
	z := -1.6
	for _, f := range g.spec.Features {
		k := g.rng.IntN(len(f.Levels))
		v := f.Levels[k]
		profile[f.Name] = v
		switch {
		case f.Name == "violations_during_supervision", f.Name == "prior_offences":
			z += 0.7 * float64(k)
		case f.Name == "employment" && v == "unemployed", f.Name == "residence_stable" && v == "no":
			z += 0.5
		}
	}
	return profile, 1 / (1 + math.Exp(-z))
}

func (g *cnPopulation) writeCSV(t *testing.T, path string, n int) {
	t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	head := []string{g.spec.Data.ID, g.spec.Data.Label, "sex", "ethnicity", "hukou"}
	for _, f := range g.spec.Features {
		head = append(head, f.Name)
	}
	w.Write(head)
	for i := range n {
		prof, p := g.person()
		row := []string{strconv.Itoa(i + 1), "0", []string{"female", "male"}[g.rng.IntN(2)], []string{"han", "other"}[g.rng.IntN(2)],
			[]string{"local", "nonlocal"}[g.rng.IntN(2)]}
		if g.rng.Float64() < p {
			row[1] = "1"
		}
		for _, f := range g.spec.Features {
			row = append(row, prof[f.Name].(string))
		}
		w.Write(row)
	}
	w.Flush()
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// trainDir trains spec on data into a model directory and returns its files.
func trainDir(t *testing.T, data, spec, out string) (map[string][]byte, *riskmodel.Manifest) {
	t.Helper()
	man, err := risk.Train(context.Background(), risk.Options{DataPath: data, SpecPath: spec, OutDir: out})
	if err != nil {
		t.Fatalf("train %s on %s: %v", spec, data, err)
	}
	return testfix.ModelDirFiles(t, out), man
}

// TestModelLifecycle is the agency's own model, end to end through the
// API on a real database: a first model trained on a generated file is
// uploaded and made active by two admins; a population of people gets
// recommendations from it and outcomes recorded over a year; the training
// file is exported; a model trained from the Chinese template on it is
// uploaded in shadow, scores the next recommendations unseen, is compared
// on the outcomes of the following year, promoted by two admins (the one
// who asked may not approve), rolled back by two admins; every step is in
// the audit trail. golearn's liblinear needs GODEBUG=cgocheck=0, so the
// test runs itself in a child process with it.
func TestModelLifecycle(t *testing.T) {
	t.Parallel()
	if !risk.CgoCheckOff() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestModelLifecycle$", "-test.count=1", "-test.v")
		cmd.Env = risk.WithCgoCheckOff(os.Environ())
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestModelLifecycle")) {
			t.Fatalf("with GODEBUG=cgocheck=0: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "lifecycle_test.go") {
				t.Log(strings.TrimSpace(line))
			}
		}
		return
	}
	ctx := context.Background()
	url := pgtest.NewURL(t)
	e := newEnvWith(t, mustOpen(t, url), func(c *Config) { c.CallerRate, c.CallerBurst = 1e6, 1000000 })
	e.dbURL = url
	if _, err := e.auth.CreateUser(ctx, "ada", e.pass, auth.RoleAdmin, ""); err != nil {
		t.Fatal(err)
	}
	admin, ada, adminKey, caseKey := e.login("admin"), e.login("ada"), e.keys[auth.RoleAdmin], e.keys[auth.RoleCaseSystem]
	spec, err := riskmodel.ReadSpec(cnTemplate)
	if err != nil {
		t.Fatal(err)
	}
	const name = "cc-cn-template"
	dir := t.TempDir()
	gen := &cnPopulation{spec: spec, rng: rand.New(rand.NewPCG(19, 2026))}
	mustCall := func(client *http.Client, key, method, path string, body, out any, want int) {
		t.Helper()
		if code := e.call(client, key, method, path, body, out); code != want {
			t.Fatalf("%s %s = %d, want %d", method, path, code, want)
		}
	}
	changeModel := func(asker, approver *http.Client, body map[string]string) casework.ModelChange {
		t.Helper()
		var ch casework.ModelChange
		mustCall(asker, "", http.MethodPost, "/v1/models/"+name+"/changes", body, &ch, http.StatusCreated)
		mustCall(asker, "", http.MethodPost, "/v1/model-changes/"+ch.ID+"/approve", map[string]string{}, nil, http.StatusForbidden)
		mustCall(approver, "", http.MethodPost, "/v1/model-changes/"+ch.ID+"/approve", map[string]string{"note": "read the comparison"}, &ch, http.StatusOK)
		return ch
	}

	// 1. The agency's first model: trained on a generated file, uploaded,
	// made active by two admins.
	firstData := filepath.Join(dir, "generated-first.csv")
	gen.writeCSV(t, firstData, 1500)
	firstFiles, _ := trainDir(t, firstData, cnTemplate, filepath.Join(dir, "first"))
	var v1 casework.ModelVersion
	mustCall(nil, adminKey, http.MethodPost, "/v1/models/"+name+"/versions", map[string]any{"files": firstFiles}, &v1, http.StatusCreated)
	changeModel(admin, ada, map[string]string{"kind": "promote", "version": v1.Version, "reason": "first model of the agency"})

	// 2. People under supervision get recommendations from it (the case system).
	const n = 300
	people := make([]string, n)
	risks := make([]float64, n)
	recommendAll := func(want string) []casework.Recommendation {
		t.Helper()
		recs := make([]casework.Recommendation, n)
		for i, id := range people {
			mustCall(nil, caseKey, http.MethodPost, "/v1/subjects/"+id+"/recommendations", map[string]string{"model": name}, &recs[i], http.StatusCreated)
			if recs[i].Model.Version != want {
				t.Fatalf("recommendation from %s %s, want %s", recs[i].Model.Name, recs[i].Model.Version, want)
			}
		}
		return recs
	}
	for i := range n {
		people[i] = fmt.Sprintf("CN-%03d", i)
		prof, p := gen.person()
		risks[i] = p
		body := map[string]any{"display_name": "生成对象 " + people[i], "sex": []string{"female", "male"}[i%2], "birth_year": 1980 + i%20,
			"supervision_type": prof["supervision_type"], "unit": "west", "counselor": "carol",
			"supervision_start": e.clock.Now().AddDate(0, 0, -30).Format("2006-01-02"), "profile": prof}
		mustCall(nil, caseKey, http.MethodPut, "/v1/subjects/"+people[i], body, nil, http.StatusCreated)
	}
	round1 := recommendAll(v1.Version)

	// 3. A year and more passes; outcomes are recorded as they happen.
	recordOutcomes := func(recs []casework.Recommendation) (positives int) {
		t.Helper()
		for i, r := range recs {
			if gen.rng.Float64() < risks[i] {
				positives++
				kind := []string{"revocation", "new_offence"}[gen.rng.IntN(2)]
				day := r.CreatedAt.AddDate(0, 0, 30+gen.rng.IntN(270)).Format("2006-01-02")
				mustCall(nil, caseKey, http.MethodPost, "/v1/subjects/"+people[i]+"/outcomes", map[string]string{"kind": kind, "occurred_on": day}, nil, http.StatusCreated)
			} else if gen.rng.IntN(3) == 0 {
				day := r.CreatedAt.AddDate(0, 0, 60).Format("2006-01-02")
				mustCall(nil, caseKey, http.MethodPost, "/v1/subjects/"+people[i]+"/outcomes", map[string]string{"kind": "warning", "occurred_on": day}, nil, http.StatusCreated)
			}
		}
		return positives
	}
	e.clock.Advance(400 * 24 * time.Hour)
	positives1 := recordOutcomes(round1)

	// 4. The training file, through the API.
	resp := e.do(http.MethodGet, "/v1/training-export?model="+name+"&outcomes=revocation,new_offence&within_days=365", adminKey, nil)
	export, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("training export = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(bytes.NewReader(export)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	labels := 0
	for _, r := range rows[1:] {
		if r[1] == "1" {
			labels++
		}
	}
	if len(rows) != n+1 || labels != positives1 || strings.Join(rows[0][:3], ",") != "id,label,sex" {
		t.Fatalf("training file: %d rows, %d positive, header %v; want %d rows, %d positive", len(rows)-1, labels, rows[0], n, positives1)
	}
	exportPath := filepath.Join(dir, "export.csv")
	if err := os.WriteFile(exportPath, export, 0o600); err != nil {
		t.Fatal(err)
	}

	// 5. The template, filled in for the export (its columns, version
	// 0.2.0, sex the group recorded), trained and uploaded in shadow.
	tmpl, err := os.ReadFile(cnTemplate)
	if err != nil {
		t.Fatal(err)
	}
	filled := strings.NewReplacer("version: 0.1.0", "version: 0.2.0", "label: outcome_12m", "label: label", "id: person_id", "id: id",
		"groups: [sex, ethnicity, hukou]", "groups: [sex]").Replace(string(tmpl))
	specPath := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(specPath, []byte(filled), 0o600); err != nil {
		t.Fatal(err)
	}
	secondFiles, man := trainDir(t, exportPath, specPath, filepath.Join(dir, "second"))
	t.Logf("trained on the export: %d rows, cross-validated AUC %.3f", man.TrainingData.Rows, float64(man.Metrics.AUC))
	var v2 casework.ModelVersion
	mustCall(nil, adminKey, http.MethodPost, "/v1/models/"+name+"/versions", map[string]any{"files": secondFiles}, &v2, http.StatusCreated)
	if v2.Version != "0.2.0" || v2.State != casework.ModelShadow {
		t.Fatalf("uploaded %+v, want 0.2.0 in shadow", v2)
	}

	// 6. The shadow version scores the next recommendations, unseen.
	round2 := recommendAll(v1.Version)
	var raw map[string]any
	mustCall(nil, caseKey, http.MethodGet, "/v1/subjects/"+people[0]+"/recommendations", nil, &raw, http.StatusOK)
	if b := fmt.Sprint(raw); strings.Contains(b, "0.2.0") || strings.Contains(b, "shadow") {
		t.Errorf("recommendations show the shadow version: %.300s", b)
	}
	comparison := func() casework.ShadowComparison {
		t.Helper()
		var cmp casework.Comparison
		mustCall(admin, "", http.MethodGet, "/v1/models/"+name+"/comparison?outcomes=revocation,new_offence&within_days=365", nil, &cmp, http.StatusOK)
		if cmp.Active.Version != v1.Version || len(cmp.Shadows) != 1 || cmp.Shadows[0].Version != "0.2.0" || cmp.Shadows[0].N != n {
			t.Fatalf("comparison %+v, want 0.2.0 against %s on %d", cmp, v1.Version, n)
		}
		return cmp.Shadows[0]
	}
	if sc := comparison(); sc.Enough || sc.Pending != n || !strings.Contains(sc.Message, "not enough outcomes yet") {
		t.Errorf("before any outcome is known: %+v, want not enough outcomes yet", sc.OutcomeComparison)
	}

	// 7. Another year: the comparison on the outcomes as they arrived.
	e.clock.Advance(400 * 24 * time.Hour)
	positives2 := recordOutcomes(round2)
	sc := comparison()
	total := 0
	for _, row := range sc.Matrix {
		for _, c := range row {
			total += c
		}
	}
	if !sc.Enough || sc.Labelled != n || sc.Positives != positives2 || total != n || sc.Active == nil || sc.Shadow == nil {
		t.Fatalf("comparison on outcomes: %+v", sc.OutcomeComparison)
	}
	for _, om := range []*casework.OutcomeMetrics{sc.Active, sc.Shadow} {
		auc := om.AUC
		if !(auc.Lo <= auc.Value && auc.Value <= auc.Hi) || auc.Value < 0.55 || len(om.Calibration) == 0 || len(om.Groups) != 2 || !om.Groups[0].Enough {
			t.Errorf("outcome metrics %+v, want an AUC above chance in its interval, calibration and error rates for both sexes", om)
		}
	}
	t.Logf("comparison on %d people (%d positive): agreement %.2f; AUC active %.3f [%.3f, %.3f], shadow %.3f [%.3f, %.3f]; Brier %.3f vs %.3f",
		sc.Labelled, sc.Positives, float64(sc.Agreement), float64(sc.Active.AUC.Value), float64(sc.Active.AUC.Lo), float64(sc.Active.AUC.Hi),
		float64(sc.Shadow.AUC.Value), float64(sc.Shadow.AUC.Lo), float64(sc.Shadow.AUC.Hi), float64(sc.Active.Brier), float64(sc.Shadow.Brier))

	// 8. Promotion by two people; new recommendations come from 0.2.0,
	// the old ones keep the version they came from.
	promo := changeModel(admin, ada, map[string]string{"kind": "promote", "version": "0.2.0", "reason": "better calibrated on our outcomes"})
	var r casework.Recommendation
	mustCall(nil, caseKey, http.MethodPost, "/v1/subjects/"+people[0]+"/recommendations", map[string]string{"model": name}, &r, http.StatusCreated)
	if r.Model.Version != "0.2.0" || r.Model.SHA256 != v2.SHA256 {
		t.Errorf("after promotion: recommendation from %+v, want 0.2.0 %s", r.Model, v2.SHA256)
	}
	var list struct {
		Recommendations []casework.Recommendation `json:"recommendations"`
	}
	mustCall(nil, caseKey, http.MethodGet, "/v1/subjects/"+people[0]+"/recommendations", nil, &list, http.StatusOK)
	for _, old := range list.Recommendations {
		if old.ID != r.ID && old.Model.Version != v1.Version {
			t.Errorf("recommendation %s now says %s, want %s", old.ID, old.Model.Version, v1.Version)
		}
	}

	// 9. Rollback by two people.
	rb := changeModel(ada, admin, map[string]string{"kind": "rollback", "reason": "tier shares moved more than expected"})
	if rb.Version != v1.Version {
		t.Errorf("rollback to %s, want %s", rb.Version, v1.Version)
	}
	mustCall(nil, caseKey, http.MethodPost, "/v1/subjects/"+people[1]+"/recommendations", map[string]string{"model": name}, &r, http.StatusCreated)
	if r.Model.Version != v1.Version {
		t.Errorf("after rollback: recommendation from %s, want %s", r.Model.Version, v1.Version)
	}

	// 10. Every step is in the audit trail.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	count := func(where string, args ...any) int {
		var c int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE `+where, args...).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, c := range []struct {
		where string
		args  []any
		want  int
	}{
		{"action = 'model.upload' AND outcome = 'success'", nil, 2},
		{"action = 'model.promotion.request' AND outcome = 'success'", nil, 2},
		{"action = 'model.rollback.request' AND outcome = 'success' AND actor = 'user:ada'", nil, 1},
		{"action = 'model.change.approve' AND outcome = 'success'", nil, 3},
		{"resource_id = $1 AND outcome = 'denied' AND actor = 'user:admin'", []any{promo.ID}, 1},
		{"resource_id = $1 AND outcome = 'denied' AND actor = 'user:ada'", []any{rb.ID}, 1},
		{"action = 'model.export_training' AND outcome = 'success'", nil, 1},
		{"action = 'model.comparison' AND outcome = 'success'", nil, 2},
		{"action = 'outcome.record' AND outcome = 'success'", nil, count("action = 'outcome.record'")},
		{"action = 'recommendation.create' AND outcome = 'success' AND detail->>'model_version' = '0.2.0'", nil, 1},
	} {
		if got := count(c.where, c.args...); got != c.want || got == 0 {
			t.Errorf("audit events where %s: %d, want %d", c.where, got, c.want)
		}
	}
	var shadows int
	conn.QueryRow(ctx, `SELECT count(*) FROM shadow_scores`).Scan(&shadows)
	if shadows != n+1 {
		t.Errorf("%d shadow scores, want %d (round two, and 0.2.0 back in shadow after the rollback)", shadows, n+1)
	}
}
