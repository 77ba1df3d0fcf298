package instrument_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sunpath/sunpath/instruments"
	"github.com/sunpath/sunpath/internal/instrument"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

var update = flag.Bool("update", false, "rewrite golden files")

func loadShipped(t testing.TB) *instrument.Catalog {
	t.Helper()
	cat, err := instrument.Load(instruments.FS, nil)
	if err != nil {
		t.Fatalf("Load(instruments.FS) = %v", err)
	}
	return cat
}

// goldenCase is one testdata/golden/<instrument>/<case>.input.json. Expect
// holds the values a person computed by hand from the manual; the test
// asserts them independently of the golden file, so recording a wrong
// golden cannot make a wrong score pass.
type goldenCase struct {
	Note          string                     `json:"note"`
	Expect        map[string]json.RawMessage `json:"expect"`
	Fill          *int                       `json:"fill"`
	Submission    map[string]json.RawMessage `json:"submission"`
	SubmissionRaw *string                    `json:"submission_raw"`
}

// TestGolden scores every case of every shipped instrument, compares the
// full output with its .golden file, and checks the hand-computed
// expectations.
func TestGolden(t *testing.T) {
	cat := loadShipped(t)
	inputs, err := filepath.Glob("testdata/golden/*/*.input.json")
	if err != nil {
		t.Fatal(err)
	}
	perInstrument := map[string]int{}
	for _, in := range inputs {
		id := filepath.Base(filepath.Dir(in))
		name := strings.TrimSuffix(filepath.Base(in), ".input.json")
		perInstrument[id]++
		t.Run(id+"/"+name, func(t *testing.T) {
			d, ok := cat.Get(id)
			if !ok {
				t.Fatalf("no instrument %q", id)
			}
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var gc goldenCase
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&gc); err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			body := submission(t, d, gc)
			res, serr := d.ScoreJSON(body, screening.ScoreOptions{})
			got := goldenOutput(t, res, serr)

			golden := strings.TrimSuffix(in, ".input.json") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run go test -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", golden, diff)
			}
			checkExpect(t, gc, res, serr)
		})
	}
	for _, d := range cat.List() {
		if n := perInstrument[d.ID]; n < 10 {
			t.Errorf("instrument %s has %d golden cases, want at least 10", d.ID, n)
		}
	}
}

func submission(t *testing.T, d *screening.Definition, gc goldenCase) []byte {
	t.Helper()
	if gc.SubmissionRaw != nil {
		return []byte(*gc.SubmissionRaw)
	}
	sub := gc.Submission
	if gc.Fill != nil {
		var answers map[string]json.RawMessage
		if err := json.Unmarshal(sub["answers"], &answers); err != nil {
			t.Fatal(err)
		}
		for _, it := range d.Items {
			if _, given := answers[it.ID]; !given && it.Scored {
				answers[it.ID], _ = json.Marshal(*gc.Fill)
			}
		}
		sub["answers"], _ = json.Marshal(answers)
	}
	body, err := json.Marshal(sub)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func goldenOutput(t *testing.T, res screening.Result, err error) []byte {
	t.Helper()
	var v any = res
	var inv *problem.Invalid
	switch {
	case errors.As(err, &inv):
		v = map[string]any{"error": "invalid", "errors": inv.Errors}
	case errors.Is(err, screening.ErrMalformed):
		v = map[string]any{"error": "malformed"}
	case err != nil:
		t.Fatalf("unexpected error %v", err)
	}
	out, jerr := json.MarshalIndent(v, "", "  ")
	if jerr != nil {
		t.Fatal(jerr)
	}
	return append(out, '\n')
}

func checkExpect(t *testing.T, gc goldenCase, res screening.Result, err error) {
	t.Helper()
	exp := gc.Expect
	get := func(key string, into any) bool {
		raw, ok := exp[key]
		if !ok {
			return false
		}
		if err := json.Unmarshal(raw, into); err != nil {
			t.Fatalf("expect.%s: %v", key, err)
		}
		return true
	}
	for key := range exp {
		switch key {
		case "total", "severity", "result", "flags", "quality", "subscales", "prorated", "missing",
			"language", "band_set", "error_items", "error_fields", "malformed":
		default:
			t.Fatalf("expect.%s: unknown expectation", key)
		}
	}
	var malformed bool
	get("malformed", &malformed)
	var wantItems, wantFields []string
	hasItems, hasFields := get("error_items", &wantItems), get("error_fields", &wantFields)
	if malformed {
		if !errors.Is(err, screening.ErrMalformed) {
			t.Errorf("error = %v, want ErrMalformed", err)
		}
		return
	}
	if hasItems || hasFields {
		var inv *problem.Invalid
		if !errors.As(err, &inv) {
			t.Fatalf("error = %v, want *problem.Invalid", err)
		}
		var items, fields []string
		for _, fe := range inv.Errors {
			if fe.Item != "" {
				items = append(items, fe.Item)
			} else {
				fields = append(fields, fe.Field)
			}
			if strings.TrimSpace(fe.Detail) == "" {
				t.Errorf("error for %s%s has no detail", fe.Item, fe.Field)
			}
		}
		if diff := cmp.Diff(wantItems, items); diff != "" {
			t.Errorf("error items (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(wantFields, fields); diff != "" {
			t.Errorf("error fields (-want +got):\n%s", diff)
		}
		return
	}
	if err != nil {
		t.Fatalf("Score error = %v, want a result", err)
	}
	var total *int
	if get("total", &total) {
		if (total == nil) != (res.Total == nil) || (total != nil && *total != *res.Total) {
			t.Errorf("total = %v, want %v (hand-computed: %s)", show(res.Total), show(total), gc.Note)
		}
	}
	var severity *string
	if get("severity", &severity) {
		want := ""
		if severity != nil {
			want = *severity
		}
		if res.Severity != want {
			t.Errorf("severity = %q, want %q (hand-computed: %s)", res.Severity, want, gc.Note)
		}
	}
	var outcome string
	if get("result", &outcome) && res.Outcome != outcome {
		t.Errorf("result = %q, want %q", res.Outcome, outcome)
	}
	var flags []string
	if get("flags", &flags) {
		var got []string
		for _, f := range res.Flags {
			got = append(got, f.Code)
		}
		if diff := cmp.Diff(flags, got, cmpEmpty); diff != "" {
			t.Errorf("flags (-want +got):\n%s", diff)
		}
	}
	var quality []string
	get("quality", &quality)
	if diff := cmp.Diff(quality, res.Quality, cmpEmpty); diff != "" {
		t.Errorf("quality (-want +got):\n%s", diff)
	}
	var subs map[string]float64
	if get("subscales", &subs) {
		if diff := cmp.Diff(subs, res.Subscales); diff != "" {
			t.Errorf("subscales (-want +got):\n%s", diff)
		}
	}
	var prorated bool
	get("prorated", &prorated)
	if res.Prorated != prorated {
		t.Errorf("prorated = %v, want %v", res.Prorated, prorated)
	}
	var missing []string
	get("missing", &missing)
	if diff := cmp.Diff(missing, res.Missing, cmpEmpty); diff != "" {
		t.Errorf("missing (-want +got):\n%s", diff)
	}
	lang := "zh-CN"
	get("language", &lang)
	if res.Language != lang {
		t.Errorf("language = %q, want %q", res.Language, lang)
	}
	var set string
	if get("band_set", &set) && res.BandSet != set {
		t.Errorf("band_set = %q, want %q", res.BandSet, set)
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })

func show(p *int) any {
	if p == nil {
		return "null"
	}
	return *p
}
