package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/fhir/fhirtest"
)

// fhirCall sends body as application/fhir+json (when not empty) asking for
// FHIR, and returns the status and the answer, which it checks against the
// R4 schema when it is FHIR.
func (e *env) fhirCall(key, method, path, body string, headers ...string) (int, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.ts.URL+path, r)
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Authorization", "Bearer "+key)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if isFHIR(resp.Header.Get("Content-Type")) {
		if err := fhirtest.Validate(b); err != nil {
			e.t.Errorf("%s %s answered invalid FHIR R4: %v", method, path, err)
		}
	}
	return resp.StatusCode, b
}

// TestFHIRExchanges: the Questionnaire, the Observation of a scored
// QuestionnaireResponse (with its subject, time, author, a link back to it,
// and English text when English is asked for) and a stored assessment's
// Bundle, all valid FHIR R4 and all through the contract check.
func TestFHIRExchanges(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	key := e.keys[auth.RoleCaseSystem]

	code, b := e.fhirCall(key, http.MethodGet, "/v1/instruments/phq9/fhir?lang=en", "")
	if code != http.StatusOK || !strings.Contains(string(b), `"resourceType":"Questionnaire"`) {
		t.Fatalf("Questionnaire = %d %.200s", code, b)
	}

	var items []string
	for i := 1; i <= 9; i++ {
		items = append(items, `{"linkId":"phq9_`+string(rune('0'+i))+`","answer":[{"valueInteger":2}]}`)
	}
	qr := `{"resourceType":"QuestionnaireResponse","id":"qr-1","status":"completed","subject":{"reference":"Patient/p-1"},` +
		`"authored":"2026-11-22T08:30:00+08:00","author":{"display":"counselor 12"},"item":[` + strings.Join(items, ",") + `]}`
	code, b = e.fhirCall(key, http.MethodPost, "/v1/instruments/phq9/score", qr, "Accept-Language", "en-GB,en;q=0.8")
	if code != http.StatusOK {
		t.Fatalf("score = %d %s", code, b)
	}
	var o struct {
		Language    string `json:"language"`
		Subject     struct{ Reference string }
		Effective   string                       `json:"effectiveDateTime"`
		Issued      string                       `json:"issued"`
		DerivedFrom []struct{ Reference string } `json:"derivedFrom"`
		Performer   []struct{ Display string }   `json:"performer"`
		Code        struct{ Text string }        `json:"code"`
		Interp      []struct{ Text string }      `json:"interpretation"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	t.Logf("Observation: %s", b)
	if o.Subject.Reference != "Patient/p-1" || o.Effective == "" || o.Issued == "" || len(o.DerivedFrom) != 1 ||
		o.DerivedFrom[0].Reference != "QuestionnaireResponse/qr-1" || len(o.Performer) != 1 {
		t.Errorf("Observation lacks its context: %s", b)
	}
	if o.Language != "en" || !strings.HasPrefix(o.Code.Text, "Patient Health Questionnaire") || len(o.Interp) == 0 || o.Interp[0].Text != "Severe" && o.Interp[0].Text != "Moderately severe" {
		t.Errorf("Observation not in English for Accept-Language en: language %q, code %q, interpretation %+v", o.Language, o.Code.Text, o.Interp)
	}

	e.putSubject("F-1", "west", "carol", nil)
	var a struct{ ID string }
	if code := e.call(nil, key, http.MethodPost, "/v1/subjects/F-1/assessments", phq9(1, 1, 1, 1, 1, 1, 1, 1, 1), &a, "Idempotency-Key", "fhir-1"); code != http.StatusCreated {
		t.Fatalf("assessment = %d", code)
	}
	code, b = e.fhirCall(e.keys[auth.RoleAdmin], http.MethodGet, "/v1/assessments/"+a.ID+"/fhir", "")
	if code != http.StatusOK {
		t.Fatalf("Bundle = %d %s", code, b)
	}
	var bundle struct {
		Type  string `json:"type"`
		Entry []struct {
			Resource map[string]any `json:"resource"`
		} `json:"entry"`
	}
	json.Unmarshal(b, &bundle)
	if bundle.Type != "collection" || len(bundle.Entry) != 2 || bundle.Entry[0].Resource["resourceType"] != "QuestionnaireResponse" ||
		bundle.Entry[1].Resource["derivedFrom"] == nil || bundle.Entry[1].Resource["subject"] == nil || bundle.Entry[0].Resource["item"] == nil {
		t.Errorf("Bundle = %s", b)
	}
	// Same scope as GET /v1/assessments/{id}: another agency's case system sees nothing.
	if code, _ := e.fhirCall(e.keys[auth.RoleCounselor], http.MethodGet, "/v1/assessments/"+a.ID+"/fhir", ""); code != http.StatusOK && code != http.StatusNotFound {
		t.Errorf("counselor Bundle = %d", code)
	}
}
