package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/riskmodel"
	"github.com/sunpath/sunpath/internal/testfix"
)

// TestModelVersions uploads a version of a shipped model, checks that a
// bad upload is refused naming the file, that another replica loads the
// version without a restart, that the shadow version scores recommendations
// without showing, and that promotion and rollback take two admins.
// Broken once each: LoadFiles without the sha256 check (the tampered upload
// was stored); Sync that never reloads (the other replica never saw the
// version); scoreShadows skipped (no shadow score); DecideModelChange
// without the requester check (the asking admin's approval went through).
func TestModelVersions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.auth.CreateUser(ctx, "ada", e.pass, auth.RoleAdmin, ""); err != nil {
		t.Fatal(err)
	}
	admin, ada, adminKey := e.login("admin"), e.login("ada"), e.keys[auth.RoleAdmin]
	shipped := testfix.ModelDirFiles(t, "../../models/nij-review")
	next := testfix.Relabel(t, shipped, "1.2.0")
	upload := func(client *http.Client, key string, files map[string][]byte, out any) int {
		return e.call(client, key, http.MethodPost, "/v1/models/nij-review/versions", map[string]any{"files": files}, out)
	}

	// Refused uploads name the file and store nothing.
	// A changed weight, still a valid model file, under the old digest.
	tampered := testfix.Relabel(t, shipped, "1.2.0")
	var scorer map[string]any
	json.Unmarshal(tampered[riskmodel.ModelFileName], &scorer)
	scorer["intercept"] = scorer["intercept"].(float64) + 0.5
	tampered[riskmodel.ModelFileName], _ = json.Marshal(scorer)
	var pb problemBody
	if code := upload(nil, adminKey, tampered, &pb); code != http.StatusUnprocessableEntity || !pb.names("files.scorer.json") {
		t.Errorf("tampered upload = %d %+v, want 422 naming files.scorer.json", code, pb)
	}
	noSpec := testfix.Relabel(t, shipped, "1.2.0")
	delete(noSpec, riskmodel.SpecFileName)
	pb = problemBody{}
	if code := upload(nil, adminKey, noSpec, &pb); code != http.StatusUnprocessableEntity || !pb.names("files.spec.yaml") {
		t.Errorf("upload without spec.yaml = %d %+v, want 422 naming files.spec.yaml", code, pb)
	}
	if code := upload(nil, e.keys[auth.RoleCaseSystem], next, nil); code != http.StatusForbidden {
		t.Errorf("upload by a case system = %d, want 403", code)
	}
	if code := upload(nil, adminKey, shipped, nil); code != http.StatusConflict {
		t.Errorf("upload of the shipped version = %d, want 409", code)
	}

	// Another replica: same database, its own registry, polling.
	other, err := casework.New(casework.Deps{Store: e.cases, Audit: e.audit, Catalog: testfix.Catalog(t), Models: testfix.Models(t),
		ModelSource: e.cases, DefaultModel: "nij-review"})
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go other.Registry().Poll(pctx, 20*time.Millisecond, func(err error) { t.Errorf("poll: %v", err) })
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the other replica never saw %s", what)
			}
		}
	}

	var v casework.ModelVersion
	if code := upload(nil, adminKey, next, &v); code != http.StatusCreated || v.State != casework.ModelShadow || v.Version != "1.2.0" {
		t.Fatalf("upload = %d %+v, want 201 in shadow", code, v)
	}
	if code := upload(nil, adminKey, next, nil); code != http.StatusConflict {
		t.Errorf("second upload of 1.2.0 = %d, want 409", code)
	}
	waitFor("the shadow version", func() bool { return len(other.Registry().Shadows("nij-review")) == 1 })

	// The shadow version scores every recommendation, unseen.
	e.putSubject("MV-1", "west", "carol", testfix.NIJProfile(t))
	carol := e.login("carol")
	recommend := func() casework.Recommendation {
		t.Helper()
		e.clock.Advance(time.Minute) // recommendations list newest first
		var raw json.RawMessage
		if code := e.call(carol, "", http.MethodPost, "/v1/subjects/MV-1/recommendations", map[string]string{}, &raw); code != http.StatusCreated {
			t.Fatalf("recommend = %d %s", code, raw)
		}
		if strings.Contains(string(raw), "shadow") || strings.Contains(string(raw), `"1.2.0"`) && strings.Contains(string(raw), `"1.1.0"`) {
			t.Errorf("a recommendation shows the shadow version: %s", raw)
		}
		var r casework.Recommendation
		json.Unmarshal(raw, &r)
		return r
	}
	r1 := recommend()
	if r1.Model.Version != "1.1.0" {
		t.Errorf("recommendation from %s, want the active 1.1.0", r1.Model.Version)
	}
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var shadows int
	conn.QueryRow(ctx, `SELECT count(*) FROM shadow_scores WHERE recommendation_id = $1`, r1.ID).Scan(&shadows)
	if shadows != 1 {
		t.Errorf("%d shadow scores of the recommendation, want 1", shadows)
	}
	var cmp casework.Comparison
	if code := e.call(e.login("sam"), "", http.MethodGet, "/v1/models/nij-review/comparison?outcomes=revocation&within_days=365", nil, &cmp); code != http.StatusOK ||
		len(cmp.Shadows) != 1 || cmp.Shadows[0].N != 1 || cmp.Shadows[0].Enough || !strings.Contains(cmp.Shadows[0].Message, "not enough outcomes yet") {
		t.Errorf("comparison = %d %+v, want one shadow, one scored, not enough outcomes yet", code, cmp)
	}

	// Promotion: asked by a person, approved by another.
	change := func(client *http.Client, key string, body map[string]string, out any) int {
		return e.call(client, key, http.MethodPost, "/v1/models/nij-review/changes", body, out)
	}
	promote := map[string]string{"kind": "promote", "version": "1.2.0", "reason": "validated on our own people"}
	if code := change(nil, adminKey, promote, nil); code != http.StatusForbidden {
		t.Errorf("promotion asked with an API key = %d, want 403", code)
	}
	var ch casework.ModelChange
	if code := change(admin, "", promote, &ch); code != http.StatusCreated || ch.Status != "pending" || ch.FromVersion != "1.1.0" {
		t.Fatalf("promotion request = %d %+v", code, ch)
	}
	if code := change(ada, "", promote, nil); code != http.StatusConflict {
		t.Errorf("a second pending change = %d, want 409", code)
	}
	if code := e.call(admin, "", http.MethodPost, "/v1/model-changes/"+ch.ID+"/approve", map[string]string{}, nil); code != http.StatusForbidden {
		t.Errorf("approval by the admin who asked = %d, want 403", code)
	}
	if code := e.call(nil, adminKey, http.MethodPost, "/v1/model-changes/"+ch.ID+"/approve", map[string]string{}, nil); code != http.StatusForbidden {
		t.Errorf("approval with an API key = %d, want 403", code)
	}
	if r := recommend(); r.Model.Version != "1.1.0" {
		t.Errorf("before approval a recommendation came from %s", r.Model.Version)
	}
	if code := e.call(ada, "", http.MethodPost, "/v1/model-changes/"+ch.ID+"/approve", map[string]string{"note": "checked"}, &ch); code != http.StatusOK || ch.Status != "approved" {
		t.Fatalf("approval by another admin = %d %+v", code, ch)
	}
	r2 := recommend()
	if r2.Model.Version != "1.2.0" || r2.Model.SHA256 != riskmodel.SHA256(next[riskmodel.ModelFileName]) {
		t.Errorf("after promotion a recommendation came from %+v, want 1.2.0", r2.Model)
	}
	waitFor("the promotion", func() bool { m, _ := other.Models(); return m["nij-review"].Ref().Version == "1.2.0" })
	var list struct {
		Recommendations []casework.Recommendation `json:"recommendations"`
	}
	e.call(carol, "", http.MethodGet, "/v1/subjects/MV-1/recommendations", nil, &list)
	if n := len(list.Recommendations); n < 3 || list.Recommendations[n-1].Model.Version != "1.1.0" || list.Recommendations[0].Model.Version != "1.2.0" {
		var got []string
		for _, r := range list.Recommendations {
			got = append(got, r.Model.Version)
		}
		t.Errorf("recommendations keep the version they came from, newest first: %v", got)
	}

	// Rollback to the shipped version, by two people.
	var rb casework.ModelChange
	if code := change(ada, "", map[string]string{"kind": "rollback", "reason": "tier shares moved"}, &rb); code != http.StatusCreated || rb.Version != "1.1.0" {
		t.Fatalf("rollback request = %d %+v", code, rb)
	}
	if code := e.call(ada, "", http.MethodPost, "/v1/model-changes/"+rb.ID+"/approve", nil, nil); code != http.StatusForbidden {
		t.Errorf("rollback approved by its requester = %d, want 403", code)
	}
	if code := e.call(admin, "", http.MethodPost, "/v1/model-changes/"+rb.ID+"/approve", nil, nil); code != http.StatusOK {
		t.Fatalf("rollback approval = %d", code)
	}
	if r := recommend(); r.Model.Version != "1.1.0" {
		t.Errorf("after rollback a recommendation came from %s", r.Model.Version)
	}
	var vs casework.ModelVersions
	e.call(admin, "", http.MethodGet, "/v1/models/nij-review/versions", nil, &vs)
	states := map[string]string{}
	for _, v := range vs.Versions {
		states[v.Version] = v.State
	}
	if vs.Active != "1.1.0" || states["1.1.0"] != casework.ModelActive || states["1.2.0"] != casework.ModelShadow || len(vs.Changes) != 2 {
		t.Errorf("versions after rollback = %+v", vs)
	}
	waitFor("the rollback", func() bool { m, _ := other.Models(); return m["nij-review"].Ref().Version == "1.1.0" })
}

// TestStoredModelTampered: a stored version whose file was changed in the
// database after upload does not load; the error names the file (serve
// refuses to start on it). Broken once: Sync without LoadFiles' digest
// check and the recorded-sha256 check (the changed model loaded).
func TestStoredModelTampered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	files := testfix.Relabel(t, testfix.ModelDirFiles(t, "../../models/nij-review"), "1.3.0")
	if code := e.call(nil, e.keys[auth.RoleAdmin], http.MethodPost, "/v1/models/nij-review/versions", map[string]any{"files": files}, nil); code != http.StatusCreated {
		t.Fatalf("upload = %d", code)
	}
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var scorer map[string]any
	json.Unmarshal(files[riskmodel.ModelFileName], &scorer)
	scorer["intercept"] = scorer["intercept"].(float64) - 1
	changed, _ := json.Marshal(scorer)
	if _, err := conn.Exec(ctx, `ALTER TABLE model_files DISABLE TRIGGER model_files_immutable`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE model_files SET content = $1 WHERE path = 'scorer.json'`, changed); err != nil {
		t.Fatal(err)
	}
	svc, err := casework.New(casework.Deps{Store: e.cases, Audit: e.audit, Catalog: testfix.Catalog(t), Models: testfix.Models(t), ModelSource: e.cases})
	if err != nil {
		t.Fatal(err)
	}
	err = svc.SyncModels(ctx)
	if !errors.Is(err, riskmodel.ErrTampered) || !strings.Contains(err.Error(), "scorer.json") {
		t.Errorf("SyncModels with a changed stored file = %v, want ErrTampered naming scorer.json", err)
	}
	if len(svc.Registry().Shadows("nij-review")) != 0 {
		t.Error("the changed version was loaded")
	}
}
