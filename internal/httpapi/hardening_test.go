package httpapi

import (
	"context"
	"encoding/hex"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/testfix"
)

// TestUnitRenameKeepsAgency: renaming a unit without naming an agency keeps
// it, so its people stay with their agency's case system; an agency change
// must be asked for and is audited as one. Broken once: PutUnit defaulting
// the agency to "default" (the case system loses the person).
func TestUnitRenameKeepsAgency(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin, cms := e.keys[auth.RoleAdmin], e.keys[auth.RoleCaseSystem]
	e.putSubject("U-1", "west", "carol", nil)
	var u casework.Unit
	if code := e.call(nil, admin, http.MethodPut, "/v1/units/west", map[string]string{"name": "西区司法所"}, &u); code != http.StatusOK || u.Agency != "hz" {
		t.Fatalf("rename = %d %+v, want agency hz kept", code, u)
	}
	if code := e.call(nil, cms, http.MethodGet, "/v1/subjects/U-1", nil, nil); code != http.StatusOK {
		t.Errorf("the agency's case system after a rename = %d, want 200", code)
	}
	if code := e.call(nil, admin, http.MethodPut, "/v1/units/west", map[string]string{"name": "西区司法所", "agency": "nb"}, &u); code != http.StatusOK || u.Agency != "nb" {
		t.Fatalf("agency change = %d %+v", code, u)
	}
	if code := e.call(nil, cms, http.MethodGet, "/v1/subjects/U-1", nil, nil); code != http.StatusNotFound {
		t.Errorf("the old agency's case system after the move = %d, want 404", code)
	}
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	conn.QueryRow(context.Background(), `SELECT count(*) FROM audit_events WHERE action = 'unit.put' AND resource_id = 'west'
		AND detail::jsonb ->> 'agency_from' = 'hz' AND detail::jsonb ->> 'agency_to' = 'nb'`).Scan(&n)
	if n != 1 {
		t.Errorf("%d audit events of the agency change, want 1", n)
	}
}

// TestNothingPersonalInTheDump: a pg_dump of a database that has been used
// holds no name, note, model input or kiosk token in the clear: idempotency
// records and explanations are sealed, kiosk tokens are never stored. Broken
// once each: the reply stored unsealed (the token and name appear), the
// explanation stored in its plaintext column (its contributions appear).
func TestNothingPersonalInTheDump(t *testing.T) {
	t.Parallel()
	pgDump, err := exec.LookPath("pg_dump")
	if err != nil {
		t.Fatalf("pg_dump (installed with PostgreSQL by scripts/localpg.sh): %v", err)
	}
	e := newEnv(t)
	const canary = "CANARY-5f0d1a"
	carol, sam := e.login("carol"), e.login("sam")
	cms := e.keys[auth.RoleCaseSystem]
	profile := testfix.NIJProfile(t)
	e.call(nil, e.keys[auth.RoleAdmin], http.MethodPut, "/v1/subjects/K-1", map[string]any{"display_name": "张三 " + canary, "sex": "male",
		"supervision_type": "parole", "unit": "west", "counselor": "carol", "profile": profile}, nil)
	var sess casework.OpenedSession
	if code := e.call(carol, "", http.MethodPost, "/v1/subjects/K-1/sessions", map[string]any{"instruments": []string{"phq9"}, "language": "zh-CN", "kiosk": true},
		&sess, "Idempotency-Key", "k-session"); code != http.StatusCreated || sess.KioskToken == "" {
		t.Fatalf("kiosk session = %d", code)
	}
	var rec casework.Recommendation
	if code := e.call(nil, cms, http.MethodPost, "/v1/subjects/K-1/recommendations", nil, &rec, "Idempotency-Key", "k-rec"); code != http.StatusCreated {
		t.Fatalf("recommendation = %d", code)
	}
	if code := e.call(carol, "", http.MethodPost, "/v1/recommendations/"+rec.ID+"/overrides", map[string]string{"tier": "strict",
		"reason_code": "new_information", "note": "备注 " + canary}, nil, "Idempotency-Key", "k-override"); code != http.StatusCreated {
		t.Fatalf("override = %d", code)
	}
	var a casework.Assessment
	e.call(carol, "", http.MethodPost, "/v1/subjects/K-1/assessments", phq9(1, 1, 1, 1, 1, 1, 1, 1, 2), &a, "Idempotency-Key", "k-phq9")
	for _, f := range a.Flags {
		e.call(sam, "", http.MethodPost, "/v1/flags/"+f.ID+"/acknowledge", nil, nil)
		e.call(sam, "", http.MethodPost, "/v1/flags/"+f.ID+"/resolve", map[string]any{"resolution_code": "safety_plan_made",
			"interventions": []string{"crisis_intervention"}, "note": "处置 " + canary}, nil)
	}
	// A replay of the kiosk session is answered without the token: it is
	// shown once and never stored.
	var again casework.OpenedSession
	if code := e.call(carol, "", http.MethodPost, "/v1/subjects/K-1/sessions", map[string]any{"instruments": []string{"phq9"}, "language": "zh-CN", "kiosk": true},
		&again, "Idempotency-Key", "k-session"); code != http.StatusCreated || again.ID != sess.ID || again.KioskToken != "" || !again.KioskTokenWithheld {
		t.Errorf("replayed kiosk session = %d %+v, want the same session without its token", code, again)
	}
	out, err := exec.Command(pgDump, "--data-only", e.dbURL).Output()
	if err != nil {
		t.Fatalf("pg_dump: %v", err)
	}
	// bytea columns are dumped in hex: read them decoded too.
	dump := string(out)
	for _, m := range regexp.MustCompile(`\\x([0-9a-f]+)`).FindAllStringSubmatch(dump, -1) {
		if b, err := hex.DecodeString(m[1]); err == nil {
			dump += "\n" + string(b)
		}
	}
	for what, s := range map[string]string{"a name or note": canary, "the kiosk token": sess.KioskToken, "a model explanation": `"contribution"`} {
		if strings.Contains(dump, s) {
			t.Errorf("the dump holds %s in the clear", what)
		}
	}
}

// TestReplayRechecksScope: a key replayed after the person moved to another
// counselor is answered as any request of the caller would be (404), never
// with the first reply. Broken once: Write replaying on a scope refusal.
func TestReplayRechecksScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if _, err := e.auth.CreateUser(context.Background(), "carl", e.pass, auth.RoleCounselor, "west"); err != nil {
		t.Fatal(err)
	}
	carol := e.login("carol")
	e.putSubject("V-1", "west", "carol", nil)
	body := map[string]any{"instruments": []string{"phq9"}, "language": "zh-CN", "kiosk": true}
	if code := e.call(carol, "", http.MethodPost, "/v1/subjects/V-1/sessions", body, nil, "Idempotency-Key", "v-1"); code != http.StatusCreated {
		t.Fatalf("session = %d", code)
	}
	e.putSubject("V-1", "west", "carl", nil)
	var p problemBody
	if code := e.call(carol, "", http.MethodPost, "/v1/subjects/V-1/sessions", body, &p, "Idempotency-Key", "v-1"); code != http.StatusNotFound {
		t.Errorf("replay after the person moved = %d, want 404", code)
	}
}

// TestCompletedAtBounds: a paper form's date is within a year before now and
// not in the future.
func TestCompletedAtBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	carol := e.login("carol")
	e.putSubject("W-1", "west", "carol", nil)
	for _, at := range []time.Time{time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Now().Add(time.Hour)} {
		b := phq9(0, 0, 0, 0, 0, 0, 0, 0, 0)
		b["completed_at"] = at
		var p problemBody
		if code := e.call(carol, "", http.MethodPost, "/v1/subjects/W-1/assessments", b, &p); code != http.StatusUnprocessableEntity || !p.names("completed_at") {
			t.Errorf("completed_at %s = %d %+v, want 422 naming completed_at", at, code, p.Errors)
		}
	}
	b := phq9(0, 0, 0, 0, 0, 0, 0, 0, 0)
	b["completed_at"] = time.Now().AddDate(0, -2, 0)
	if code := e.call(carol, "", http.MethodPost, "/v1/subjects/W-1/assessments", b, nil); code != http.StatusCreated {
		t.Errorf("a paper form of two months ago = %d, want 201", code)
	}
}

// TestSubjectUpdatesLoseNothing: an update without a profile keeps the
// recorded model inputs, and If-Match refuses an update based on a stale
// read (412) instead of silently overwriting another writer. Broken once
// each: the profile overwritten when absent, If-Match ignored.
func TestSubjectUpdatesLoseNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.keys[auth.RoleAdmin]
	profile := testfix.NIJProfile(t)
	e.putSubject("E-1", "west", "carol", profile)
	etag := func() string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/v1/subjects/E-1", nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("ETag")
	}
	first := etag()
	if first == "" {
		t.Fatal("GET subject has no ETag")
	}
	rename := map[string]any{"display_name": "改名", "sex": "female", "supervision_type": "probation", "unit": "west", "counselor": "carol"}
	var s casework.Subject
	if code := e.call(nil, admin, http.MethodPut, "/v1/subjects/E-1", rename, &s, "If-Match", first); code != http.StatusOK {
		t.Fatalf("PUT with the current ETag = %d", code)
	}
	if len(s.Profile) != len(profile) {
		t.Errorf("profile after an update without one: %d fields, want the %d recorded", len(s.Profile), len(profile))
	}
	var p problemBody
	if code := e.call(nil, admin, http.MethodPut, "/v1/subjects/E-1", rename, &p, "If-Match", first); code != http.StatusPreconditionFailed {
		t.Errorf("PUT with a stale ETag = %d, want 412", code)
	}
	if code := e.call(nil, admin, http.MethodPut, "/v1/subjects/E-1", rename, nil, "If-Match", etag()); code != http.StatusOK {
		t.Errorf("PUT with the fresh ETag = %d, want 200", code)
	}
}

// TestCounselorOfTheUnit: a person's counselor is an active counselor of the
// person's unit. Broken once: the unit comparison dropped (dave of east is
// accepted for a person of west).
func TestCounselorOfTheUnit(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, tt := range []struct{ counselor, want string }{{"dave", "counselor"}, {"sam", "counselor"}, {"nobody", "counselor"}, {"carol", ""}} {
		body := map[string]any{"display_name": "x", "sex": "male", "supervision_type": "parole", "unit": "west", "counselor": tt.counselor}
		var p problemBody
		code := e.call(nil, e.keys[auth.RoleAdmin], http.MethodPut, "/v1/subjects/X-"+tt.counselor, body, &p)
		switch {
		case tt.want == "" && code != http.StatusCreated:
			t.Errorf("counselor %s = %d, want 201", tt.counselor, code)
		case tt.want != "" && (code != http.StatusUnprocessableEntity || !p.names(tt.want)):
			t.Errorf("counselor %s = %d %+v, want 422 naming %s", tt.counselor, code, p.Errors, tt.want)
		}
	}
}
