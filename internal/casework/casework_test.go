package casework

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sunpath/sunpath/internal/problem"
)

func TestSubjectInputValidate(t *testing.T) {
	year := 1990
	future := 3000
	ok := SubjectInput{DisplayName: "张三", Sex: "male", BirthYear: &year, SupervisionType: "probation", Unit: "west",
		SupervisionStart: "2026-01-01", SupervisionEnd: "2027-01-01", Profile: map[string]any{"a": "x", "b": 1.0, "c": nil}}
	if err := ok.Validate(time.Now()); err != nil {
		t.Fatalf("valid input: %v", err)
	}
	bad := SubjectInput{Sex: "x", BirthYear: &future, SupervisionType: "y", Unit: "no spaces allowed",
		SupervisionStart: "2026-13-01", SupervisionEnd: "soon", Profile: map[string]any{"nested": map[string]any{}}}
	err := bad.Validate(time.Now())
	var inv *problem.Invalid
	if !errors.As(err, &inv) {
		t.Fatalf("invalid input: %v", err)
	}
	got := map[string]bool{}
	for _, fe := range inv.Errors {
		got[fe.Field] = true
	}
	for _, f := range []string{"display_name", "sex", "birth_year", "supervision_type", "unit", "supervision_start", "supervision_end", "profile.nested"} {
		if !got[f] {
			t.Errorf("no error names %s: %+v", f, inv.Errors)
		}
	}
	backwards := ok
	backwards.SupervisionEnd = "2025-01-01"
	if err := backwards.Validate(time.Now()); err == nil {
		t.Error("an end before the start was accepted")
	}
}

func TestSchedule(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := DefaultSchedule.Due(Strict, start, nil); !got.Equal(start.Add(7 * 24 * time.Hour)) {
		t.Errorf("new entrant due %s", got)
	}
	last := start.Add(10 * 24 * time.Hour)
	if got := DefaultSchedule.Due(Lenient, start, &last); !got.Equal(last.Add(90 * 24 * time.Hour)) {
		t.Errorf("lenient due %s", got)
	}
	if Direction(Lenient, Strict) != "stricter" || Direction(Strict, Ordinary) != "more_lenient" || Direction(Ordinary, Ordinary) != "same" {
		t.Error("Direction")
	}
	if d := DefaultFlagPolicy.Deadline("critical", start); d.Sub(start) != 15*time.Minute {
		t.Errorf("critical deadline %s", d.Sub(start))
	}
}

// FuzzSubjectInput: any JSON body decodes and validates without panicking,
// and a failure is always a list of named fields.
func FuzzSubjectInput(f *testing.F) {
	for _, s := range []string{
		`{"display_name":"张三","sex":"male","supervision_type":"parole","unit":"west"}`,
		`{"display_name":"","sex":"?","birth_year":-1,"profile":{"a":[1]}}`,
		`{"supervision_start":"2026-02-30","supervision_end":"2026-01-01"}`,
		`{}`, `{"profile":{"":null}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var in struct {
			DisplayName      string         `json:"display_name"`
			Sex              string         `json:"sex"`
			BirthYear        *int           `json:"birth_year"`
			SupervisionType  string         `json:"supervision_type"`
			Unit             string         `json:"unit"`
			Counselor        string         `json:"counselor"`
			SupervisionStart string         `json:"supervision_start"`
			SupervisionEnd   string         `json:"supervision_end"`
			Profile          map[string]any `json:"profile"`
		}
		if json.Unmarshal(b, &in) != nil {
			return
		}
		err := SubjectInput{DisplayName: in.DisplayName, Sex: in.Sex, BirthYear: in.BirthYear, SupervisionType: in.SupervisionType, Unit: in.Unit,
			Counselor: in.Counselor, SupervisionStart: in.SupervisionStart, SupervisionEnd: in.SupervisionEnd, Profile: in.Profile}.Validate(time.Now())
		var inv *problem.Invalid
		if err != nil && (!errors.As(err, &inv) || len(inv.Errors) == 0) {
			t.Fatalf("Validate error %v is not a list of named fields", err)
		}
	})
}
