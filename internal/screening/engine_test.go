package screening_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/screening"
)

func ptr[T any](v T) *T { return &v }

func en(s string) screening.Text { return screening.Text{"en": s, "zh-CN": s} }

// testSpec is a small instrument that exercises what the shipped ones do
// not: a reverse-keyed item, a mean subscale with rounding, language- and
// population-specific bands.
func testSpec() screening.Spec {
	opts := []screening.OptionSpec{
		{Value: 0, Label: en("never")}, {Value: 1, Label: en("sometimes")},
		{Value: 2, Label: en("often")}, {Value: 3, Label: en("always")},
	}
	return screening.Spec{
		ID: "test", Version: "1.0.0", Name: "TEST", Languages: []string{"zh-CN", "en"}, TextSource: screening.TextOverlay,
		Title:      screening.Text{"en": "Test", "zh-CN": "测试"},
		Licence:    screening.Licence{Name: "test", Terms: "test"},
		Source:     screening.Source{Citation: "test"},
		OptionSets: map[string][]screening.OptionSpec{"freq": opts},
		Items: []screening.ItemSpec{
			{ID: "q1", OptionSet: "freq"},
			{ID: "q2", OptionSet: "freq"},
			{ID: "q3", OptionSet: "freq"},
			{ID: "q4", OptionSet: "freq", Reverse: true},
			{ID: "q5", Options: []screening.OptionSpec{{Value: 1, Code: "yes"}, {Value: 0, Code: "no"}},
				AskWhen:     &screening.Condition{Score: "q1", Gte: ptr(2.0)},
				WhenSkipped: &screening.SkipSpec{Score: ptr(0), IfAnswered: screening.IfAnsweredError}},
		},
		Scoring: screening.ScoringSpec{
			Total: screening.TotalSum,
			Subscales: []screening.SubscaleSpec{
				{Code: "first_two", Title: en("first two"), Items: []string{"q1", "q2"}, Method: screening.MethodSum},
				{Code: "mean", Title: en("mean"), Items: []string{"q1", "q2", "q3"}, Method: screening.MethodMean},
				{Code: "often", Title: en("often"), Items: []string{"q1", "q2", "q3", "q4"}, Method: screening.MethodCount, MinItemScore: ptr(2)},
			},
			Missing: screening.MissingSpec{MaxMissing: 1, Method: screening.MissingProrate, Required: []string{"q1"}, Citation: "test"},
			Bands: []screening.BandSetSpec{
				{ID: "default", Citation: "t", Bands: []screening.BandSpec{
					{Code: "low", Min: 0, Max: 6, Label: en("low")}, {Code: "high", Min: 7, Max: 13, Label: en("high")}}},
				{ID: "english", Language: "en", Citation: "t", Bands: []screening.BandSpec{
					{Code: "low", Min: 0, Max: 4, Label: en("low")}, {Code: "high", Min: 5, Max: 13, Label: en("high")}}},
				{ID: "group", Population: "group", Citation: "t", Bands: []screening.BandSpec{
					{Code: "low", Min: 0, Max: 2, Label: en("low")}, {Code: "high", Min: 3, Max: 13, Label: en("high")}}},
			},
			Flags: []screening.FlagSpec{
				{Code: "q1_max", Level: screening.LevelUrgent, Item: "q1", When: screening.Condition{Score: "q1", Gte: ptr(3.0)}, Label: en("x"), Citation: "t"},
				{Code: "mean_high", Level: screening.LevelReview, When: screening.Condition{Score: "mean", Gte: ptr(1.67)}, Label: en("x"), Citation: "t"},
			},
			Quality: screening.QualitySpec{MinSecondsPerItem: 2, StraightLiningMinItems: 4},
		},
	}
}

func testDef(t *testing.T) *screening.Definition {
	t.Helper()
	d, err := screening.NewDefinition(testSpec(), "sha256:test")
	if err != nil {
		t.Fatalf("NewDefinition: %v", err)
	}
	return d
}

func ints(kv ...any) screening.Answers {
	a := screening.Answers{}
	for i := 0; i < len(kv); i += 2 {
		a[kv[i].(string)] = screening.Int(kv[i+1].(int))
	}
	return a
}

func TestEngine(t *testing.T) {
	d := testDef(t)
	if d.TotalMin != 0 || d.TotalMax != 13 {
		t.Fatalf("range %d..%d, want 0..13", d.TotalMin, d.TotalMax)
	}
	tests := []struct {
		name      string
		answers   screening.Answers
		opt       screening.ScoreOptions
		total     int
		severity  string
		bandSet   string
		subscales map[string]float64
		flags     []string
		quality   []string
		prorated  bool
	}{
		{
			// q4 = 0 is reverse-keyed: 0+3-0 = 3. 1+1+1+3 = 6; q5 skipped (q1 < 2) scores 0.
			name: "reverse item", answers: ints("q1", 1, "q2", 1, "q3", 1, "q4", 0),
			total: 6, severity: "low", bandSet: "default",
			subscales: map[string]float64{"first_two": 2, "mean": 1, "often": 1},
		},
		{
			// mean (2+1+2)/3 = 1.666… reported 1.67, and the ≥ 1.67 rule reads 1.67.
			name: "mean rounds half up and rules read it", answers: ints("q1", 2, "q2", 1, "q3", 2, "q4", 3, "q5", 0),
			total: 5, severity: "low", bandSet: "default",
			subscales: map[string]float64{"first_two": 3, "mean": 1.67, "often": 2}, flags: []string{"mean_high"},
		},
		{
			name: "language bands", answers: ints("q1", 1, "q2", 1, "q3", 1, "q4", 0), opt: screening.ScoreOptions{Language: "en"},
			total: 6, severity: "high", bandSet: "english",
			subscales: map[string]float64{"first_two": 2, "mean": 1, "often": 1},
		},
		{
			name: "population bands win over language", answers: ints("q1", 1, "q2", 1, "q3", 0, "q4", 3),
			opt:   screening.ScoreOptions{Language: "en", Population: "group"},
			total: 2, severity: "low", bandSet: "group",
			subscales: map[string]float64{"first_two": 2, "mean": 0.67, "often": 0},
		},
		{
			// q2 missing: 3 + 1 + 0(q4=3 reversed) + q5 1 = 5 over 4 of 5 scored; 5×5/4 = 6.25 → 6.
			name: "prorated", answers: ints("q1", 3, "q3", 1, "q4", 3, "q5", 1),
			total: 6, severity: "low", bandSet: "default", prorated: true,
			subscales: map[string]float64{"first_two": 6, "mean": 2, "often": 1}, flags: []string{"q1_max", "mean_high"},
		},
		{
			// All raw values 1 (not the lowest): straight-lining, though q4
			// reversed scores 2. 1+1+1+2 = 5.
			name: "straight-lining on raw values", answers: ints("q1", 1, "q2", 1, "q3", 1, "q4", 1),
			total: 5, severity: "low", bandSet: "default",
			subscales: map[string]float64{"first_two": 2, "mean": 1, "often": 1},
			quality:   []string{"straight_lining"},
		},
		{
			name: "too fast from timestamps", answers: ints("q1", 0, "q2", 0, "q3", 0, "q4", 3),
			opt:   screening.ScoreOptions{StartedAt: time.Unix(100, 0), CompletedAt: time.Unix(107, 0)},
			total: 0, severity: "low", bandSet: "default",
			subscales: map[string]float64{"first_two": 0, "mean": 0, "often": 0}, quality: []string{"too_fast"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Score(tt.answers, tt.opt)
			if err != nil {
				t.Fatalf("Score: %v", err)
			}
			var flags []string
			for _, f := range got.Flags {
				flags = append(flags, f.Code)
			}
			if *got.Total != tt.total || got.Severity != tt.severity || got.BandSet != tt.bandSet || got.Prorated != tt.prorated {
				t.Errorf("got total %d %s (%s) prorated %v, want %d %s (%s) %v", *got.Total, got.Severity, got.BandSet, got.Prorated,
					tt.total, tt.severity, tt.bandSet, tt.prorated)
			}
			if diff := cmp.Diff(tt.subscales, got.Subscales); diff != "" {
				t.Errorf("subscales (-want +got):\n%s", diff)
			}
			if strings.Join(flags, ",") != strings.Join(tt.flags, ",") || strings.Join(got.Quality, ",") != strings.Join(tt.quality, ",") {
				t.Errorf("flags %v quality %v, want %v %v", flags, got.Quality, tt.flags, tt.quality)
			}
		})
	}
}

func TestEngineErrors(t *testing.T) {
	d := testDef(t)
	tests := []struct {
		name    string
		answers screening.Answers
		opt     screening.ScoreOptions
		want    []problem.FieldError
	}{
		{"skipped item answered", ints("q1", 0, "q2", 0, "q3", 0, "q4", 0, "q5", 1), screening.ScoreOptions{},
			[]problem.FieldError{{Item: "q5", Detail: "must not be answered: the instrument's skip logic does not ask this item after these answers"}}},
		{"asked item whose gate is invalid is not called missing", ints("q1", 9, "q2", 0, "q3", 0, "q4", 0), screening.ScoreOptions{},
			[]problem.FieldError{{Item: "q1", Detail: "must be one of 0, 1, 2, 3"}}},
		{"code on an item without codes", screening.Answers{"q1": screening.Code("yes"), "q2": screening.Int(0), "q3": screening.Int(0), "q4": screening.Int(0)}, screening.ScoreOptions{},
			[]problem.FieldError{{Item: "q1", Detail: "wrong type: must be one of 0, 1, 2, 3"}}},
		{"unknown code", screening.Answers{"q1": screening.Int(2), "q2": screening.Int(0), "q3": screening.Int(0), "q4": screening.Int(0), "q5": screening.Code("maybe")}, screening.ScoreOptions{},
			[]problem.FieldError{{Item: "q5", Detail: `must be one of 1, 0 or the codes "yes", "no" or true (yes), false (no)`}}},
		{"fields first", ints("q1", 0, "q2", 0, "q3", 0, "q4", 0, "zz", 1), screening.ScoreOptions{Language: "fr", Duration: -time.Second},
			[]problem.FieldError{{Field: "language", Detail: "must be one of zh-CN, en"}, {Field: "duration_seconds", Detail: "must not be negative"}, {Item: "zz", Detail: "unknown item"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Score(tt.answers, tt.opt)
			var inv *problem.Invalid
			if !errors.As(err, &inv) {
				t.Fatalf("Score error = %v, want *problem.Invalid", err)
			}
			if diff := cmp.Diff(tt.want, inv.Errors); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
	// Booleans and codes choose yes/no options.
	for _, a := range []screening.Answer{screening.Bool(true), screening.Code("yes"), screening.Int(1)} {
		res, err := d.Score(screening.Answers{"q1": screening.Int(2), "q2": screening.Int(0), "q3": screening.Int(0), "q4": screening.Int(3), "q5": a}, screening.ScoreOptions{})
		if err != nil || *res.Total != 3 {
			t.Errorf("yes answer: %v %v", res.Total, err)
		}
	}
}

func TestNewDefinitionNamesFields(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(s *screening.Spec)
		want   string
	}{
		{"bad id", func(s *screening.Spec) { s.ID = "Bad-ID" }, "id: must be lower case"},
		{"no such option set", func(s *screening.Spec) { s.Items[0].OptionSet = "nope" }, "items[0].option_set: no such option set"},
		{"duplicate code", func(s *screening.Spec) { s.Items[4].Options[1].Code = "yes" }, "items[4].options[1].code: duplicate code"},
		{"skip score out of range", func(s *screening.Spec) { s.Items[4].WhenSkipped.Score = ptr(5) }, "items[4].when_skipped.score: must be within"},
		{"two default band sets", func(s *screening.Spec) { s.Scoring.Bands[1].Language = "" }, "scoring.bands: must have exactly one default band set"},
		{"threshold with three decimals", func(s *screening.Spec) { s.Scoring.Flags[1].When.Gte = ptr(1.675) }, "scoring.flags[1].when: threshold must be a number with at most two decimals"},
		{"two comparisons", func(s *screening.Spec) { s.Scoring.Flags[1].When.Lt = ptr(3.0) }, "scoring.flags[1].when: must have exactly one of gte"},
		{"prorate too many", func(s *screening.Spec) { s.Scoring.Missing.MaxMissing = 5 }, "scoring.missing.max_missing: must be at least 1 and fewer"},
		{"count without min", func(s *screening.Spec) { s.Scoring.Subscales[2].MinItemScore = nil }, "scoring.subscales[2].min_item_score: missing"},
		{"subscale code clashes with item", func(s *screening.Spec) { s.Scoring.Subscales[0].Code = "q1" }, "scoring.subscales[0].code: duplicate"},
		{"reverse unscored", func(s *screening.Spec) { s.Items[0].Scored = ptr(false); s.Items[0].Reverse = true }, "items[0].reverse: only a scored item"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSpec()
			s.Items[4].Options = append([]screening.OptionSpec(nil), s.Items[4].Options...)
			tt.mutate(&s)
			_, err := screening.NewDefinition(s, "")
			var se *screening.SpecError
			if !errors.As(err, &se) || !errors.Is(err, screening.ErrInvalidDefinition) {
				t.Fatalf("error = %v, want *SpecError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not say %q:\n%v", tt.want, err)
			}
		})
	}
}

func TestResultJSONShape(t *testing.T) {
	r := screening.Result{Instrument: "asq", Version: "1.0.0", ContentHash: "sha256:x", EngineVersion: "1", Language: "zh-CN", Outcome: "negative"}
	got, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"instrument":"asq","version":"1.0.0","content_hash":"sha256:x","engine_version":"1","language":"zh-CN","total":null,"severity":null,"result":"negative","subscales":{},"flags":[],"prorated":false,"missing":[],"quality":[]}`
	if string(got) != want {
		t.Errorf("Marshal =\n%s\nwant\n%s", got, want)
	}
	// Strings are escaped exactly as encoding/json escapes them.
	for _, s := range []string{"a\"b\\c", "<&>", "\u2028\x01\t\b\f", "中文", "\xff"} {
		r := screening.Result{Instrument: s}
		var back screening.Result
		if err := json.Unmarshal(r.AppendJSON(nil), &back); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		ref, _ := json.Marshal(s)
		if !bytes.Contains(r.AppendJSON(nil), ref) {
			t.Errorf("%q encoded differently from encoding/json %s: %s", s, ref, r.AppendJSON(nil))
		}
	}
}

func TestAnswersRedactedInLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	a := screening.Answers{"q1": screening.Code("CANARY-42")}
	log.Info("scored", "answers", a, "one", a["q1"])
	if strings.Contains(buf.String(), "CANARY") || !strings.Contains(buf.String(), "[redacted]") {
		t.Errorf("log = %s", buf.String())
	}
	// Explicit JSON encoding, for storage, keeps the values.
	raw, _ := json.Marshal(screening.Answers{"q1": screening.Int(2), "q2": screening.Code("yes"), "q3": screening.Bool(false)})
	if string(raw) != `{"q1":2,"q2":"yes","q3":false}` {
		t.Errorf("Marshal(answers) = %s", raw)
	}
}

func TestItemDetailsNeverEchoValues(t *testing.T) {
	d := testDef(t)
	body := []byte(`{"answers": {"q1": "CANARY-1", "q2": 987654, "q3": ["CANARY-2"], "q4": {"x": "CANARY-3"}, "q5": "CANARY-4"}, "language": "CANARY-5"}`)
	_, err := d.ScoreJSON(body, screening.ScoreOptions{})
	if err == nil || strings.Contains(err.Error(), "CANARY") || strings.Contains(err.Error(), "987654") {
		t.Errorf("error echoes a submitted value: %v", err)
	}
}
