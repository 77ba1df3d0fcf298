package riskmodel

import (
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
)

// The shipped models live in the repository's models/ directory.
var modelsRoot = filepath.Join("..", "..", "models")

func loadShipped(tb testing.TB, name string) *Model {
	tb.Helper()
	m, err := Load(filepath.Join(modelsRoot, name))
	if err != nil {
		tb.Fatalf("Load(%s): %v", name, err)
	}
	return m
}

func TestShippedModelsLoad(t *testing.T) {
	models, err := LoadDir(modelsRoot)
	if err != nil {
		t.Fatalf("LoadDir: %v", err)
	}
	for _, name := range []string{"nij-intake", "nij-review", "compas-general"} {
		m, ok := models[name]
		if !ok {
			t.Errorf("model %s not loaded", name)
			continue
		}
		for _, f := range m.InputFields() {
			for _, p := range m.Spec().Protected {
				if f.Name == p {
					t.Errorf("%s reads protected attribute %s", name, p)
				}
			}
			if f.Name == m.Spec().Data.ID {
				t.Errorf("%s reads the id column", name)
			}
		}
	}
}

// TestEvalIgnoresRace swaps the values of the Race column and checks that
// every result of eval is unchanged except the names of the Race groups.
func TestEvalIgnoresRace(t *testing.T) {
	for _, name := range []string{"nij-intake", "nij-review"} {
		t.Run(name, func(t *testing.T) {
			m := loadShipped(t, name)
			orig, err := ReadTable(filepath.Join("testdata", "nij-sample.csv"))
			if err != nil {
				t.Fatal(err)
			}
			swapped, _ := ReadTable(filepath.Join("testdata", "nij-sample.csv"))
			swap := map[string]string{"BLACK": "WHITE", "WHITE": "BLACK"}
			ri := swapped.col["Race"]
			for _, row := range swapped.Rows {
				row[ri] = swap[row[ri]]
			}
			a, err := Evaluate(m, orig, EvalOptions{Bootstrap: 100})
			if err != nil {
				t.Fatal(err)
			}
			b, err := Evaluate(m, swapped, EvalOptions{Bootstrap: 100})
			if err != nil {
				t.Fatal(err)
			}
			// Relabel b's Race groups back and compare everything.
			for gi := range b.Groups {
				if b.Groups[gi].Column != "Race" {
					continue
				}
				vals := b.Groups[gi].Values
				for i := range vals {
					vals[i].Value = swap[vals[i].Value]
				}
				vals[0], vals[1] = vals[1], vals[0]
			}
			for ri := range b.References {
				rows := b.References[ri].Groups
				for i := range rows {
					if rows[i].Column == "Race" {
						rows[i].Value = swap[rows[i].Value]
					}
				}
				rows[0], rows[1] = rows[1], rows[0] // Race rows come first
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if diff := cmp.Diff(string(ja), string(jb)); diff != "" {
				t.Errorf("eval changed when Race was swapped (-orig +swapped):\n%s", diff)
			}
			// And the Race report itself did change: it is a real report.
			if a.Groups[0].Column != "Race" || len(a.Groups[0].Values) != 2 {
				t.Fatalf("Race groups %+v", a.Groups[0])
			}
		})
	}
}

func TestEvalReportsUnencodableRows(t *testing.T) {
	m := loadShipped(t, "nij-review")
	tab, err := ReadTable(filepath.Join("testdata", "nij-sample.csv"))
	if err != nil {
		t.Fatal(err)
	}
	ai, pi := tab.col["Age_at_Release"], tab.col["Percent_Days_Employed"]
	tab.Rows[0][ai] = "17 or younger" // not a level
	tab.Rows[1][pi] = "1.7"           // out of range
	tab.Rows[2][pi] = "n/a"           // not a number
	tab.Rows[3][ai] = ""              // missing: encoded by its indicator, still scored
	rep, err := Evaluate(m, tab, EvalOptions{Bootstrap: 10})
	if err != nil {
		t.Fatal(err)
	}
	if rep.N != len(tab.Rows)-3 || rep.Unencodable.Rows != 3 {
		t.Errorf("n = %d, unencodable = %d; want %d and 3", rep.N, rep.Unencodable.Rows, len(tab.Rows)-3)
	}
	want := []FieldCount{
		{Field: "Age_at_Release", Detail: detailNotLevel, Rows: 1},
		{Field: "Percent_Days_Employed", Detail: detailNotNumber, Rows: 1},
		{Field: "Percent_Days_Employed", Detail: detailOutOfRange, Rows: 1},
	}
	if diff := cmp.Diff(want, rep.Unencodable.Fields); diff != "" {
		t.Errorf("unencodable fields (-want +got):\n%s", diff)
	}
}

// sampleFeatures returns row r of the fixture as API features, numbers as
// numbers like a JSON body would carry them.
func sampleFeatures(tb testing.TB, m *Model, r int) map[string]any {
	tab, err := ReadTable(filepath.Join("testdata", "nij-sample.csv"))
	if err != nil {
		tb.Fatal(err)
	}
	f := map[string]any{}
	for _, fs := range m.InputFields() {
		v := tab.Get(r, fs.Name)
		if fs.Type == Numeric && v != "" {
			var x float64
			if err := json.Unmarshal([]byte(v), &x); err != nil {
				tb.Fatal(err)
			}
			f[fs.Name] = x
			continue
		}
		f[fs.Name] = v
	}
	return f
}

func TestScoreShippedModelMatchesEval(t *testing.T) {
	m := loadShipped(t, "nij-review")
	p, err := m.Score(sampleFeatures(t, m, 0))
	if err != nil {
		t.Fatalf("Score: %v", err)
	}
	if want := len(m.InputFields()) + len(m.File().Encoder.Interactions); len(p.Explanation) != want {
		t.Errorf("explanation has %d entries, want %d", len(p.Explanation), want)
	}
	if p.Probability <= 0 || p.Probability >= 1 || p.Tier == "" {
		t.Errorf("probability %v, tier %q", p.Probability, p.Tier)
	}
	var sha string
	for _, a := range m.Manifest().Artifacts {
		if a.Path == ModelFileName {
			sha = a.SHA256
		}
	}
	if p.Model.Name != "nij-review" || p.Model.SHA256 != sha {
		t.Errorf("model ref %+v, want nij-review with sha256 %s", p.Model, sha)
	}
	// Eval's path (CSV strings) and the API's path (JSON numbers) agree.
	tab, _ := ReadTable(filepath.Join("testdata", "nij-sample.csv"))
	pr, ok := m.scoreStrings(func(c string) string { return tab.Get(0, c) }, &scratch{}, false)
	if !ok || pr.Probability != p.Probability {
		t.Errorf("CSV path probability %v, API path %v", pr.Probability, p.Probability)
	}
}

func BenchmarkScore(b *testing.B) {
	m := loadShipped(b, "nij-review")
	f := sampleFeatures(b, m, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Score(f); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	for b.Loop() {
		if _, err := Load(filepath.Join(modelsRoot, "nij-review")); err != nil {
			b.Fatal(err)
		}
	}
}

func TestScoreConcurrently(t *testing.T) {
	m := loadShipped(t, "nij-review")
	f := sampleFeatures(t, m, 1)
	want, err := m.Score(f)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for range 8 {
		go func() {
			for range 200 {
				got, err := m.Score(f)
				if err == nil && got.Probability != want.Probability {
					err = errors.New("probability changed under concurrency")
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

func TestMetricsRegisterAndObserve(t *testing.T) {
	models, err := LoadDir(modelsRoot)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	mt, err := NewMetrics(reg, models, 100)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	m := models["nij-review"]
	for r := range 50 {
		p, err := m.Score(sampleFeatures(t, m, r))
		if err != nil {
			t.Fatal(err)
		}
		mt.Observe("nij-review", p.Probability)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, mf := range mfs {
		found[mf.GetName()] = true
		if mf.GetName() == "sunpath_risk_psi" {
			for _, mm := range mf.Metric {
				if v := mm.GetGauge().GetValue(); math.IsNaN(v) || v < 0 {
					t.Errorf("psi = %v", v)
				}
			}
		}
	}
	for _, n := range []string{"sunpath_risk_probability", "sunpath_risk_psi", "sunpath_risk_psi_window"} {
		if !found[n] {
			t.Errorf("metric %s not gathered", n)
		}
	}
	if n := mt.Tracker("nij-review").N(); n != 50 {
		t.Errorf("PSI window holds %d scores, want 50", n)
	}
}
