package riskmodel

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sunpath/sunpath/internal/problem"
)

// newSmallModel fits the encoder of testdata/small.yaml on testdata/small.csv,
// gives it fixed weights (no golearn here) and writes and loads its directory.
func newSmallModel(t *testing.T) (*Model, string) {
	t.Helper()
	specPath := filepath.Join("testdata", "small.yaml")
	specBytes, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := ParseSpec(specBytes)
	if err != nil {
		t.Fatalf("ParseSpec: %v", err)
	}
	tab, err := ReadTable(filepath.Join("testdata", "small.csv"))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := FitEncoder(spec, len(tab.Rows), tab.Get)
	if err != nil {
		t.Fatalf("FitEncoder: %v", err)
	}
	w := make([]float64, enc.Width())
	means := make([]float64, enc.Width())
	for j := range w {
		w[j] = 0.1*float64(j%7) - 0.3
		means[j] = 0.05 * float64(j%3)
	}
	f := &File{
		Format: FileFormat, Name: spec.Name, Version: spec.Version, Label: "outcome", Positive: "1",
		Encoder: enc, Weights: w, Intercept: 0.2, Means: means,
		Calibration: Calibration{Method: Platt, A: 1, B: 0}, Tiers: spec.Tiers,
		Baseline: NewScoreBins([]float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95}, 5),
	}
	y := tab.Labels(spec.Data)
	p := make([]float64, len(y))
	for i := range p {
		p[i] = 0.2 + 0.6*y[i]
	}
	man := &Manifest{
		Format: ManifestFormat, Name: spec.Name, Version: spec.Version, ModelFile: ModelFileName,
		TrainingData: DataRef{Path: "testdata/small.csv", SHA256: tab.SHA256, Rows: len(tab.Rows)},
		Spec:         spec, Thresholds: spec.Tiers.Boundaries(), Tiers: spec.Tiers,
		Metrics: NewReport(ReportInput{
			Source: "test", P: p, Y: y, Groups: map[string][]string{"race": colOf(tab, "race")},
			GroupOrder: []string{"race"}, Tiers: spec.Tiers, Bootstrap: 20, Seed: 1,
		}),
	}
	dir := filepath.Join(t.TempDir(), "small")
	if err := WriteDir(dir, specPath, specBytes, f, man); err != nil {
		t.Fatalf("WriteDir: %v", err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return m, dir
}

func colOf(t *Table, c string) []string {
	out := make([]string, len(t.Rows))
	for r := range t.Rows {
		out[r] = t.Get(r, c)
	}
	return out
}

func valid() map[string]any {
	return map[string]any{"age": "23-27", "score": "2.0", "flag": "False", "pct": 0.3, "days": 40}
}

func TestScoreEncoderEdgeCases(t *testing.T) {
	m, _ := newSmallModel(t)
	with := func(k string, v any) map[string]any {
		f := valid()
		if v == nil {
			delete(f, k)
		} else {
			f[k] = v
		}
		return f
	}
	tests := []struct {
		name      string
		features  map[string]any
		wantErrs  []problem.FieldError
		wantValue map[string]string // feature -> bucket label in the explanation
	}{
		{name: "valid", features: valid(), wantValue: map[string]string{"age": "23-27", "score": "2.0", "pct": "(0, 0.5]"}},
		{name: "unseen category with unseen: unknown", features: with("score", "9.0"), wantValue: map[string]string{"score": "unknown"}},
		{name: "rare level pooled into unknown column", features: with("score", "3.0"), wantValue: map[string]string{"score": "3.0"}},
		{name: "category given as a number", features: with("score", 1), wantValue: map[string]string{"score": "1.0"}},
		{name: "boolean for a True/False level", features: with("flag", true), wantValue: map[string]string{"flag": "True"}},
		{name: "unseen category rejected", features: with("age", "30"),
			wantErrs: []problem.FieldError{{Field: "features.age", Detail: detailNotLevel}}},
		{name: "missing with indicator", features: with("age", nil), wantValue: map[string]string{"age": "missing"}},
		{name: "empty string is missing", features: with("pct", ""), wantValue: map[string]string{"pct": "missing"}},
		{name: "missing required", features: with("flag", nil),
			wantErrs: []problem.FieldError{{Field: "features.flag", Detail: detailRequired}}},
		{name: "out of range", features: with("pct", 1.5),
			wantErrs: []problem.FieldError{{Field: "features.pct", Detail: detailOutOfRange}}},
		{name: "negative out of range", features: with("days", -1),
			wantErrs: []problem.FieldError{{Field: "features.days", Detail: detailOutOfRange}}},
		{name: "not a number", features: with("pct", "abc"),
			wantErrs: []problem.FieldError{{Field: "features.pct", Detail: detailNotNumber}}},
		{name: "NaN is not a number", features: with("pct", math.NaN()),
			wantErrs: []problem.FieldError{{Field: "features.pct", Detail: detailNotNumber}}},
		{name: "unknown feature and several errors", features: with("race", "A"),
			wantErrs: []problem.FieldError{{Field: "features.race", Detail: detailUnknown}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Score(tt.features)
			if tt.wantErrs != nil {
				var inv *problem.Invalid
				if !errors.As(err, &inv) {
					t.Fatalf("Score() error = %v, want *problem.Invalid", err)
				}
				if diff := cmp.Diff(tt.wantErrs, inv.Errors); diff != "" {
					t.Errorf("Score() errors (-want +got):\n%s", diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("Score() error = %v", err)
			}
			for f, want := range tt.wantValue {
				if v := valueOf(got, f); v != want {
					t.Errorf("explanation of %s: value %q, want %q", f, v, want)
				}
			}
		})
	}
}

func valueOf(p Prediction, feature string) string {
	for _, c := range p.Explanation {
		if c.Feature == feature {
			return c.Value
		}
	}
	return "<absent>"
}

func TestScoreMultipleErrorsNeverEchoValues(t *testing.T) {
	m, _ := newSmallModel(t)
	f := valid()
	f["age"] = "SECRET-AGE"
	f["pct"] = "SECRET-PCT"
	f["favourite_colour"] = "SECRET"
	delete(f, "flag")
	_, err := m.Score(f)
	var inv *problem.Invalid
	if !errors.As(err, &inv) {
		t.Fatalf("Score() error = %v, want *problem.Invalid", err)
	}
	var fields []string
	for _, e := range inv.Errors {
		fields = append(fields, e.Field)
		if strings.Contains(e.Detail, "SECRET") {
			t.Errorf("detail %q echoes the value", e.Detail)
		}
	}
	want := []string{"features.age", "features.favourite_colour", "features.flag", "features.pct"}
	if diff := cmp.Diff(want, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
}

func TestScoreCapAndRarePooling(t *testing.T) {
	m, _ := newSmallModel(t)
	f := m.File().Encoder.Features[1] // score
	if f.LevelColumn[2] != f.UnknownColumn {
		t.Errorf("level 3.0 (seen once, min_count 2) has column %d, want the unknown column %d", f.LevelColumn[2], f.UnknownColumn)
	}
	a, b := valid(), valid()
	a["days"], b["days"] = 100, 900 // cap is [0, 100]
	pa, err := m.Score(a)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := m.Score(b)
	if err != nil {
		t.Fatal(err)
	}
	if pa.LogOdds != pb.LogOdds {
		t.Errorf("capped values score %v and %v, want equal", pa.LogOdds, pb.LogOdds)
	}
	u1, u2 := valid(), valid()
	u1["score"], u2["score"] = "3.0", "7.5"
	p1, _ := m.Score(u1)
	p2, _ := m.Score(u2)
	if p1.LogOdds != p2.LogOdds {
		t.Errorf("a pooled level and an unseen value score %v and %v, want equal (both the unknown column)", p1.LogOdds, p2.LogOdds)
	}
}

func TestExplanationAddsUp(t *testing.T) {
	m, _ := newSmallModel(t)
	p, err := m.Score(valid())
	if err != nil {
		t.Fatal(err)
	}
	sum := p.BaselineLogOdds
	for i, c := range p.Explanation {
		sum += c.Contribution
		if i > 0 && math.Abs(c.Contribution) > math.Abs(p.Explanation[i-1].Contribution) {
			t.Errorf("explanation not sorted by magnitude at %d", i)
		}
	}
	if math.Abs(sum-p.LogOdds) > 1e-12 {
		t.Errorf("baseline + contributions = %v, want log-odds %v", sum, p.LogOdds)
	}
	if got := len(p.Explanation); got != 6 {
		t.Errorf("explanation has %d entries, want 6 (5 features + 1 interaction)", got)
	}
	if want := Sigmoid(p.LogOdds); math.Abs(p.Probability-want) > 1e-15 {
		t.Errorf("probability %v, want σ(log-odds) = %v under identity Platt", p.Probability, want)
	}
	if p.Model.Name != "small" || len(p.Model.SHA256) != 64 {
		t.Errorf("model ref %+v", p.Model)
	}
	wantTier := m.File().Tiers.Tier(p.Probability).Tier
	if p.Tier != wantTier {
		t.Errorf("tier %s, want %s", p.Tier, wantTier)
	}
}

func TestLoadRefusesTamperedArtifacts(t *testing.T) {
	for _, name := range []string{ModelFileName, SpecFileName, CardFileName, CalibrationSVGName} {
		t.Run(name, func(t *testing.T) {
			_, dir := newSmallModel(t)
			p := filepath.Join(dir, name)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, ' ')
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = Load(dir)
			if !errors.Is(err, ErrTampered) {
				t.Fatalf("Load() error = %v, want ErrTampered", err)
			}
			if !strings.Contains(err.Error(), name) {
				t.Errorf("Load() error %q does not name %s", err, name)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, dir := newSmallModel(t)
		if err := os.Remove(filepath.Join(dir, ModelFileName)); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), ModelFileName) {
			t.Fatalf("Load() error = %v, want one naming %s", err, ModelFileName)
		}
	})
	t.Run("weights changed and manifest digest patched", func(t *testing.T) {
		_, dir := newSmallModel(t)
		mp := filepath.Join(dir, ManifestFileName)
		mb, _ := os.ReadFile(mp)
		// Changing the manifest itself to point elsewhere must not pass either.
		mb = []byte(strings.Replace(string(mb), `"path": "scorer.json"`, `"path": "../scorer.json"`, 1))
		_ = os.WriteFile(mp, mb, 0o644)
		if _, err := Load(dir); err == nil {
			t.Fatal("Load() accepted an artifact path outside the directory")
		}
	})
}

func TestLoadDirAndInputFields(t *testing.T) {
	_, dir := newSmallModel(t)
	models, err := LoadDir(filepath.Dir(dir))
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	m, ok := models["small"]
	if !ok {
		t.Fatalf("LoadDir: models %v, want small", models)
	}
	var names []string
	for _, f := range m.InputFields() {
		names = append(names, f.Name)
		if f.Name == "flag" && !f.Required {
			t.Error("flag (missing: reject) should be required")
		}
		if f.Name == "age" && (f.Required || !slices.Equal(f.Levels, []string{"18-22", "23-27", "28+"})) {
			t.Errorf("age field %+v", f)
		}
	}
	if diff := cmp.Diff([]string{"age", "score", "flag", "pct", "days"}, names); diff != "" {
		t.Errorf("InputFields (-want +got):\n%s", diff)
	}
}

func TestSpecValidation(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("testdata", "small.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, from, to, want string
	}{
		{"protected attribute as feature", "  - name: days", "  - name: race", "race is protected"},
		{"label as feature", "  - name: days", "  - name: outcome", "outcome is the label"},
		{"thresholds not increasing", "below: 0.6", "below: 0.2", "below must increase"},
		{"no rationale", "rationale: Test thresholds.", "rationale: \"\"", "rationale is required"},
		{"unknown key", "  folds: 2", "  folds: 2\n  foldz: 3", "unknown field"},
		{"interaction on unbinned numeric", "features: [age, pct]", "features: [age, days]", "needs bins"},
		{"boost depth", "  folds: 2", "  folds: 2\n  boost: {trees: 20, depth: 12, rate: 0.1}", "boost.depth must be between 1 and 8"},
		{"boost step beyond trees", "  folds: 2", "  folds: 2\n  boost: {trees: 5, depth: 2, rate: 0.1}", "at least training.boost.step"},
		{"boost rate", "  folds: 2", "  folds: 2\n  boost: {trees: 20, depth: 2, rate: 1.5}", "rate in (0, 1]"},
		{"previous without interval", "features:\n", "previous:\n- {version: 0.9, auc: [0.7], brier: [0.2, 0.19, 0.21]}\nfeatures:\n", "[value, lo, hi]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := strings.Replace(string(base), tt.from, tt.to, 1)
			if s == string(base) {
				t.Fatalf("replacement %q not found", tt.from)
			}
			_, err := ParseSpec([]byte(s))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseSpec() error = %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}
