package fhir_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sunpath/sunpath/internal/fhir"
	"github.com/sunpath/sunpath/internal/fhir/fhirtest"
	"github.com/sunpath/sunpath/internal/screening"
)

// TestResourcesValidR4: every Questionnaire (each instrument, each
// language), an Observation of each instrument's lowest and highest answers,
// with and without context, and a stored administration's Bundle are valid
// against HL7's R4 JSON Schema.
func TestResourcesValidR4(t *testing.T) {
	t.Parallel()
	n := 0
	check := func(what string, b []byte, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		n++
		if err := fhirtest.Validate(b); err != nil {
			t.Errorf("%s is not valid FHIR R4: %v\n%.600s", what, err, b)
		}
	}
	at := time.Date(2026, 11, 22, 8, 30, 0, 0, time.UTC)
	for _, d := range catalog(t).List() {
		for _, lang := range d.Languages {
			b, err := fhir.Questionnaire(d, lang)
			check(d.ID+" Questionnaire "+lang, b, err)
		}
		for _, pick := range []func([]screening.Option) screening.Option{
			func(os []screening.Option) screening.Option { return os[0] },
			func(os []screening.Option) screening.Option { return os[len(os)-1] },
		} {
			answers := map[string]int{}
			for _, it := range d.Items {
				if len(it.Options) > 0 {
					answers[it.ID] = pick(it.Options).Value
				}
			}
			raw, _ := json.Marshal(map[string]any{"answers": answers, "language": d.Languages[len(d.Languages)-1]})
			res, err := d.ScoreJSON(raw, screening.ScoreOptions{})
			if err != nil {
				continue // an instrument's rules may refuse an answer pattern (skip logic); others cover it
			}
			b, err := fhir.Observation(d, res)
			check(d.ID+" Observation", b, err)
			b, err = fhir.ObservationWith(d, res, fhir.Context{Subject: fhir.SubjectRef("S-1"), Effective: at, Issued: at.Add(time.Minute),
				Performer: &fhir.Reference{Display: "counselor 12"}, DerivedFrom: &fhir.Reference{Reference: "QuestionnaireResponse/qr-1"}})
			check(d.ID+" Observation with context", b, err)
			ans, _ := json.Marshal(answers)
			b, err = fhir.Bundle(d, fhir.Stored{ID: "a-1", Subject: "S-1", Answers: ans, Result: res, Authored: at, Issued: at.Add(time.Minute), Author: "user:carol"})
			check(d.ID+" Bundle", b, err)
		}
	}
	// The check can fail: an unknown element and a bad code are refused.
	if err := fhirtest.Validate([]byte(`{"resourceType":"Observation","status":"guessed","code":{"text":"x"},"subjectt":{}}`)); err == nil {
		t.Error("an invalid Observation passed the R4 schema")
	}
	t.Logf("%d FHIR resources valid against the R4 schema", n)
	if n < 20 {
		t.Errorf("only %d resources checked", n)
	}
}

// TestObservationContextAndLanguage: an Observation from an English
// QuestionnaireResponse with subject, author and time carries them, links
// back to the response and is in English.
func TestObservationContextAndLanguage(t *testing.T) {
	t.Parallel()
	d := def(t, "phq9")
	qr := `{"resourceType":"QuestionnaireResponse","id":"qr-7","language":"en","status":"completed",
		"subject":{"reference":"Patient/p-1"},"author":{"display":"counselor 12"},"authored":"2026-11-22T08:30:00+08:00",
		"item":[` + items(d) + `]}`
	answers, err := fhir.DecodeResponse(d, []byte(qr))
	if err != nil {
		t.Fatal(err)
	}
	meta := fhir.ResponseMeta([]byte(qr))
	lang := fhir.Language(d, "", meta.Language)
	res, err := d.Score(answers, screening.ScoreOptions{Language: lang})
	if err != nil {
		t.Fatal(err)
	}
	issued := time.Date(2026, 11, 22, 0, 31, 0, 0, time.UTC)
	b, err := fhir.ObservationWith(d, res, meta.Context(issued))
	if err != nil {
		t.Fatal(err)
	}
	if err := fhirtest.Validate(b); err != nil {
		t.Errorf("not valid R4: %v", err)
	}
	var o struct {
		Language    string                  `json:"language"`
		Subject     fhir.Reference          `json:"subject"`
		Effective   string                  `json:"effectiveDateTime"`
		Issued      string                  `json:"issued"`
		Performer   []fhir.Reference        `json:"performer"`
		DerivedFrom []fhir.Reference        `json:"derivedFrom"`
		Code        struct{ Text string }   `json:"code"`
		Interp      []struct{ Text string } `json:"interpretation"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatal(err)
	}
	if o.Subject.Reference != "Patient/p-1" || o.Effective != "2026-11-22T08:30:00+08:00" || o.Issued != "2026-11-22T00:31:00.000Z" {
		t.Errorf("subject %+v, effective %q, issued %q", o.Subject, o.Effective, o.Issued)
	}
	if len(o.DerivedFrom) != 1 || o.DerivedFrom[0].Reference != "QuestionnaireResponse/qr-7" || len(o.Performer) != 1 || o.Performer[0].Display != "counselor 12" {
		t.Errorf("derivedFrom %+v, performer %+v", o.DerivedFrom, o.Performer)
	}
	if o.Language != "en" || !strings.Contains(o.Code.Text, "Patient Health Questionnaire") || len(o.Interp) == 0 || containsHan(o.Interp[0].Text) {
		t.Errorf("language %q, code %q, interpretation %+v: want English", o.Language, o.Code.Text, o.Interp)
	}
}

// TestQuestionnaireRequiredAndNumbers: every scored PHQ-9 item is required
// and numbered 1-9; the difficulty question is neither.
func TestQuestionnaireRequiredAndNumbers(t *testing.T) {
	t.Parallel()
	b, err := fhir.Questionnaire(def(t, "phq9"), "en")
	if err != nil {
		t.Fatal(err)
	}
	var q struct {
		Item []struct {
			LinkID   string `json:"linkId"`
			Prefix   string `json:"prefix"`
			Required bool   `json:"required"`
		} `json:"item"`
	}
	json.Unmarshal(b, &q)
	got := map[string]string{}
	for _, it := range q.Item {
		got[it.LinkID] = it.Prefix + "/" + map[bool]string{true: "required", false: "optional"}[it.Required]
	}
	for i := 1; i <= 9; i++ {
		id := "phq9_" + string(rune('0'+i))
		if want := string(rune('0'+i)) + "/required"; got[id] != want {
			t.Errorf("%s = %q, want %q", id, got[id], want)
		}
	}
	if got["phq9_difficulty"] != "/optional" {
		t.Errorf("phq9_difficulty = %q, want unnumbered and optional", got["phq9_difficulty"])
	}
}

func items(d *screening.Definition) string {
	var parts []string
	for _, it := range d.Items {
		if it.Scored {
			parts = append(parts, `{"linkId":"`+it.ID+`","answer":[{"valueInteger":1}]}`)
		}
	}
	return strings.Join(parts, ",")
}

func containsHan(s string) bool {
	for _, r := range s {
		if r >= 0x4e00 && r <= 0x9fff {
			return true
		}
	}
	return false
}
