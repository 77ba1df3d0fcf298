package fhir_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sunpath/sunpath/instruments"
	"github.com/sunpath/sunpath/internal/fhir"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

func catalog(t testing.TB) *instrument.Catalog {
	t.Helper()
	cat, err := instrument.Load(instruments.FS, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func def(t testing.TB, id string) *screening.Definition {
	t.Helper()
	d, ok := catalog(t).Get(id)
	if !ok {
		t.Fatalf("no %s", id)
	}
	return d
}

func TestQuestionnairePHQ9(t *testing.T) {
	d := def(t, "phq9")
	raw, err := fhir.Questionnaire(d, "zh-CN")
	if err != nil {
		t.Fatal(err)
	}
	var q struct {
		ResourceType string `json:"resourceType"`
		URL          string `json:"url"`
		Version      string `json:"version"`
		Language     string `json:"language"`
		Code         []struct{ System, Code string }
		Item         []struct {
			LinkID       string `json:"linkId"`
			Text         string `json:"text"`
			Type         string `json:"type"`
			Required     bool   `json:"required"`
			Code         []struct{ System, Code string }
			AnswerOption []struct {
				Extension []struct {
					URL          string  `json:"url"`
					ValueDecimal float64 `json:"valueDecimal"`
				} `json:"extension"`
				ValueCoding struct{ System, Code, Display string } `json:"valueCoding"`
			} `json:"answerOption"`
		} `json:"item"`
	}
	if err := json.Unmarshal(raw, &q); err != nil {
		t.Fatal(err)
	}
	if q.ResourceType != "Questionnaire" || q.Version != "1.0.0" || q.Language != "zh-CN" || q.URL != fhir.QuestionnaireNS+"phq9" {
		t.Errorf("header: %+v", q)
	}
	if len(q.Code) != 1 || q.Code[0].Code != "44249-1" {
		t.Errorf("code = %+v, want LOINC 44249-1", q.Code)
	}
	items := q.Item[1:] // after the instructions
	if q.Item[0].Type != "display" || len(items) != 10 {
		t.Fatalf("items: %d", len(q.Item))
	}
	nine := items[8]
	if nine.LinkID != "phq9_9" || nine.Code[0].Code != "44260-8" || !nine.Required || !strings.Contains(nine.Text, "伤害自己") {
		t.Errorf("item 9 = %+v", nine)
	}
	for v, o := range nine.AnswerOption {
		if o.ValueCoding.System != "http://loinc.org" || o.Extension[0].ValueDecimal != float64(v) {
			t.Errorf("option %d = %+v", v, o)
		}
	}
	if nine.AnswerOption[0].ValueCoding.Code != "LA6568-5" || nine.AnswerOption[3].ValueCoding.Code != "LA6571-9" {
		t.Errorf("answer codes %+v", nine.AnswerOption)
	}
	if !strings.Contains(string(raw), "Thoughts that you would be better off dead") {
		t.Error("the English text is not carried as a translation")
	}
	if _, err := fhir.Questionnaire(d, "fr"); err == nil {
		t.Error("unknown language accepted")
	}
}

func TestQuestionnaireASQEnableWhen(t *testing.T) {
	raw, err := fhir.Questionnaire(def(t, "asq"), "en")
	if err != nil {
		t.Fatal(err)
	}
	var q struct {
		Item []struct {
			LinkID     string `json:"linkId"`
			EnableBeh  string `json:"enableBehavior"`
			EnableWhen []struct {
				Question      string `json:"question"`
				Operator      string `json:"operator"`
				AnswerBoolean *bool  `json:"answerBoolean"`
				AnswerCoding  *struct{ Code string }
			} `json:"enableWhen"`
		} `json:"item"`
	}
	json.Unmarshal(raw, &q)
	last := q.Item[len(q.Item)-1]
	// Q5 is enabled by a yes, a declined answer or no answer (a refusal is
	// positive) to any of Q1-4: 4 × (yes, declined, not answered).
	if last.LinkID != "asq_5" || last.EnableBeh != "any" || len(last.EnableWhen) != 12 {
		t.Fatalf("asq_5 = %+v", last)
	}
	if w := last.EnableWhen[0]; w.Question != "asq_1" || w.Operator != "=" || w.AnswerCoding.Code != "1" {
		t.Errorf("first enableWhen = %+v", w)
	}
	if w := last.EnableWhen[1]; w.Question != "asq_1" || w.Operator != "=" || w.AnswerCoding.Code != "2" {
		t.Errorf("second enableWhen = %+v", w)
	}
	if w := last.EnableWhen[2]; w.Operator != "exists" || w.AnswerBoolean == nil || *w.AnswerBoolean {
		t.Errorf("third enableWhen = %+v", w)
	}
}

// response builds a QuestionnaireResponse answering each item with a
// valueCoding taken from the Questionnaire, nested in a group.
func response(linkIDs []string, values []string) string {
	var items []string
	for i, id := range linkIDs {
		items = append(items, fmt.Sprintf(`{"linkId": %q, "answer": [%s]}`, id, values[i]))
	}
	return `{"resourceType": "QuestionnaireResponse", "status": "completed",
		"questionnaire": "` + fhir.QuestionnaireNS + `phq9|1.0.0",
		"item": [{"linkId": "group", "item": [` + strings.Join(items, ",") + `]}]}`
}

func TestDecodeResponseRoundTrip(t *testing.T) {
	d := def(t, "phq9")
	var ids, vals []string
	for i := 1; i <= 9; i++ {
		ids = append(ids, fmt.Sprintf("phq9_%d", i))
		codes := []string{"LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"}
		vals = append(vals, fmt.Sprintf(`{"valueCoding": {"system": "http://loinc.org", "code": %q}}`, codes[i%4]))
	}
	ids = append(ids, "phq9_difficulty")
	vals = append(vals, `{"valueInteger": 2}`)
	a, err := fhir.DecodeResponse(d, []byte(response(ids, vals)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := d.Score(a, screening.ScoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// values i%4 for i = 1..9: 1,2,3,0,1,2,3,0,1 = 13 → moderate.
	if *res.Total != 13 || res.Severity != "moderate" {
		t.Errorf("total %d %s, want 13 moderate", *res.Total, res.Severity)
	}

	obs, err := fhir.Observation(d, res)
	if err != nil {
		t.Fatal(err)
	}
	var o struct {
		ResourceType string `json:"resourceType"`
		Status       string `json:"status"`
		Code         struct {
			Coding []struct{ System, Code string }
		} `json:"code"`
		ValueInteger   int `json:"valueInteger"`
		Interpretation []struct {
			Coding []struct{ Code string }
		} `json:"interpretation"`
		Component []struct {
			Code struct {
				Coding []struct{ System, Code string }
			}
			ValueCodeableConcept struct {
				Coding []struct{ Code string }
			}
		} `json:"component"`
		Extension []struct {
			URL         string `json:"url"`
			ValueString string `json:"valueString"`
		} `json:"extension"`
	}
	if err := json.Unmarshal(obs, &o); err != nil {
		t.Fatal(err)
	}
	if o.ResourceType != "Observation" || o.Status != "final" || o.Code.Coding[0].Code != "44261-6" || o.ValueInteger != 13 {
		t.Errorf("observation: %s", obs)
	}
	if o.Interpretation[0].Coding[0].Code != "moderate" {
		t.Errorf("interpretation: %+v", o.Interpretation)
	}
	if len(o.Component) != 1 || o.Component[0].Code.Coding[0].Code != "suicidal_ideation" || o.Component[0].ValueCodeableConcept.Coding[0].Code != "urgent" {
		t.Errorf("flag components: %+v", o.Component)
	}
	if o.Extension[0].URL != fhir.ContentHashExt || o.Extension[0].ValueString != d.ContentHash {
		t.Errorf("content hash extension: %+v", o.Extension)
	}
}

func TestObservationGAD7AndASQ(t *testing.T) {
	gad := def(t, "gad7")
	res, err := gad.Score(screening.Answers{"gad7_1": screening.Int(3), "gad7_2": screening.Int(3), "gad7_3": screening.Int(3),
		"gad7_4": screening.Int(3), "gad7_5": screening.Int(3), "gad7_6": screening.Int(0), "gad7_7": screening.Int(0)}, screening.ScoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obs, _ := fhir.Observation(gad, res)
	if !strings.Contains(string(obs), `"code":"70274-6"`) || !strings.Contains(string(obs), `"valueInteger":15`) {
		t.Errorf("GAD-7 observation: %s", obs)
	}
	asq := def(t, "asq")
	res, err = asq.Score(screening.Answers{"asq_1": screening.Int(1), "asq_2": screening.Int(0), "asq_3": screening.Int(0),
		"asq_4": screening.Int(0), "asq_5": screening.Int(1)}, screening.ScoreOptions{Language: "en"})
	if err != nil {
		t.Fatal(err)
	}
	obs, _ = fhir.Observation(asq, res)
	for _, want := range []string{`"valueCodeableConcept":{"coding":[{"system":"` + fhir.ResultSystem + `","code":"acute_positive"`, `"code":"suicide_risk_acute"`, `"code":"critical"`} {
		if !strings.Contains(string(obs), want) {
			t.Errorf("ASQ observation lacks %s:\n%s", want, obs)
		}
	}
	if _, err := fhir.Observation(gad, res); err == nil {
		t.Error("a result of another instrument was accepted")
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	d := def(t, "phq9")
	tests := []struct {
		name string
		in   string
		want []problem.FieldError
	}{
		{"wrong resource", `{"resourceType": "Patient", "status": "completed"}`,
			[]problem.FieldError{{Field: "resourceType", Detail: "must be QuestionnaireResponse"}}},
		{"in progress", `{"resourceType": "QuestionnaireResponse", "status": "in-progress"}`,
			[]problem.FieldError{{Field: "status", Detail: "must be completed or amended: only a finished response is scored"}}},
		{"other questionnaire", `{"resourceType": "QuestionnaireResponse", "status": "completed", "questionnaire": "` + fhir.QuestionnaireNS + `gad7"}`,
			[]problem.FieldError{{Field: "questionnaire", Detail: "must be " + fhir.QuestionnaireNS + "phq9 (optionally |1.0.0), the instrument being scored"}}},
		{"item errors", `{"resourceType": "QuestionnaireResponse", "status": "completed", "item": [
			{"linkId": "phq9_1", "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA9999-9"}}]},
			{"linkId": "phq9_2", "answer": [{"valueInteger": 1}, {"valueInteger": 2}]},
			{"linkId": "phq9_3", "answer": [{"valueDate": "2020-01-01"}]},
			{"linkId": "phq9_4", "answer": [{"valueInteger": "CANARY"}]},
			{"linkId": "nope", "answer": [{"valueInteger": 1}]},
			{"linkId": "display-only"}]}`,
			[]problem.FieldError{
				{Item: "phq9_1", Detail: "valueCoding must be one of the item's answer options"},
				{Item: "phq9_2", Detail: "answered more than once"},
				{Item: "phq9_3", Detail: "must have exactly one value: valueCoding, valueInteger, valueDecimal, valueBoolean or valueString"},
				{Item: "phq9_4", Detail: "valueInteger and valueDecimal must be numbers"},
				{Item: "nope", Detail: "unknown item"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := fhir.DecodeResponse(d, []byte(tt.in))
			var inv *problem.Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("error = %v, want *problem.Invalid", err)
			}
			if diff := cmp.Diff(tt.want, inv.Errors); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := fhir.DecodeResponse(d, []byte(`{"resourceType":`)); !errors.Is(err, screening.ErrMalformed) {
		t.Errorf("broken JSON: %v", err)
	}
}

// FuzzDecodeResponse: no input panics, errors are ErrMalformed or a
// non-empty *problem.Invalid that never echoes a value, and decoded answers
// score or fail cleanly. Seeds live in testdata/fuzz/FuzzDecodeResponse.
func FuzzDecodeResponse(f *testing.F) {
	cat := catalog(f)
	f.Add([]byte(`{"resourceType": "QuestionnaireResponse", "status": "completed", "item": [{"linkId": "asq_1", "answer": [{"valueBoolean": true}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, id := range []string{"phq9", "asq"} {
			d, _ := cat.Get(id)
			a, err := fhir.DecodeResponse(d, data)
			if err != nil {
				var inv *problem.Invalid
				if !errors.Is(err, screening.ErrMalformed) && (!errors.As(err, &inv) || len(inv.Errors) == 0) {
					t.Fatalf("error %v", err)
				}
				continue
			}
			res, err := d.Score(a, screening.ScoreOptions{})
			if err == nil {
				if _, err := fhir.Observation(d, res); err != nil {
					t.Fatalf("Observation: %v", err)
				}
			}
		}
	})
}
