package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/testfix"
)

// TestNULRefused: PostgreSQL text cannot hold a NUL character, so a NUL in
// any JSON string (at any depth), path parameter or query value is answered
// 422 problem+json naming the field, never 500 with an ERROR log, and the
// value is not echoed.
func TestNULRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	admin := e.keys[auth.RoleAdmin]
	e.putSubject("NUL-1", "west", "carol", testfix.NIJProfile(t))
	subject := func(field, value string) map[string]any {
		b := map[string]any{"display_name": "x", "sex": "female", "supervision_type": "probation", "unit": "west", "counselor": "carol"}
		b[field] = value
		return b
	}
	asq := asqAcute()
	asq["answers"].(map[string]any)["asq_3"] = "n\x00o"
	withBy := asqAcute()
	withBy["administered_by"] = "carol\x00"
	cases := []struct {
		method, path string
		body         any
		field        string
	}{
		{http.MethodPut, "/v1/units/west", map[string]string{"name": "west\x00district", "agency": "hz"}, "name"},
		{http.MethodPut, "/v1/subjects/NUL-2", subject("counselor", "car\x00ol"), "counselor"},
		{http.MethodPut, "/v1/subjects/NUL-2", subject("display_name", "\x00"), "display_name"},
		{http.MethodPost, "/v1/subjects/NUL-1/assessments", withBy, "administered_by"},
		{http.MethodPost, "/v1/subjects/NUL-1/assessments", asq, "answers.asq_3"},
		{http.MethodPost, "/v1/subjects/NUL-1/sessions", map[string]any{"instruments": []string{"phq9", "asq\x00"}, "language": "en"}, "instruments[1]"},
		{http.MethodGet, "/v1/subjects?unit=we%00st", nil, "unit"},
		{http.MethodGet, "/v1/subjects?counselor=%00", nil, "counselor"},
		{http.MethodGet, "/v1/subjects/NUL%001", nil, "subject_id"},
		{http.MethodGet, "/v1/subjects/NUL-1/assessments?instrument=phq9%00", nil, "instrument"},
	}
	for _, c := range cases {
		p := wantProblem(t, e.do(c.method, c.path, admin, c.body), http.StatusUnprocessableEntity)
		if len(p.Errors) != 1 || p.Errors[0].Field != c.field || !strings.Contains(p.Errors[0].Detail, "NUL") {
			t.Errorf("%s %s: errors %+v, want one naming %s", c.method, c.path, p.Errors, c.field)
		}
		if b, _ := json.Marshal(p); strings.Contains(string(b), `\u0000`) {
			t.Errorf("%s %s: the problem echoes the value: %s", c.method, c.path, b)
		}
	}
	// An escaped backslash before "u0000" is no NUL.
	resp := e.do(http.MethodPut, "/v1/units/west", admin, map[string]string{"name": `west \u0000 district`, "agency": "hz"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		t.Errorf(`PUT unit named with a literal "\u0000" = %d, want success`, resp.StatusCode)
	}
	if logs := e.logs.String(); strings.Contains(logs, `"level":"ERROR"`) {
		t.Errorf("a NUL was logged as a server error: %s", logs)
	}
}
