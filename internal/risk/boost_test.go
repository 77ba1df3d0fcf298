package risk

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sjwhitworth/golearn/base"
	"github.com/sjwhitworth/golearn/trees"

	"github.com/sunpath/sunpath/internal/riskmodel"
)

const boostSpec = "testdata/nij-small-boost.yaml"

func sampleBuckets(t *testing.T) ([][]int, []float64, *riskmodel.Table) {
	t.Helper()
	spec, err := riskmodel.ReadSpec(boostSpec)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := riskmodel.ReadTable(sampleCSV)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := riskmodel.FitEncoder(spec, len(tab.Rows), tab.Get)
	if err != nil {
		t.Fatal(err)
	}
	_, b, err := design(enc, tab)
	if err != nil {
		t.Fatal(err)
	}
	return b, tab.Labels(spec.Data), tab
}

// TestFlattenRoutesLikeGolearn checks the conversion of golearn's pointer
// tree: every row reaches a leaf whose rows' mean target is what golearn's
// own Predict returns for it (its leaves hold the target means).
func TestFlattenRoutesLikeGolearn(t *testing.T) {
	b, y, _ := sampleBuckets(t)
	rows := make([]int, len(b))
	for i := range rows {
		rows[i] = i
	}
	inst, err := instances(b, y, rows, len(b[0]))
	if err != nil {
		t.Fatal(err)
	}
	reg := trees.NewDecisionTreeRegressor(trees.MSE, 3)
	if err := reg.Fit(inst); err != nil {
		t.Fatal(err)
	}
	tr := flatten(reg)
	if len(tr.Nodes) < 7 {
		t.Fatalf("flattened tree has %d nodes, want a depth-3 tree", len(tr.Nodes))
	}
	sum := make([]float64, len(tr.Nodes))
	cnt := make([]float64, len(tr.Nodes))
	for r := range b {
		l := tr.Leaf(b[r])
		sum[l] += y[r]
		cnt[l]++
	}
	want := reg.Predict(base.FixedDataGrid(inst))
	for r := range b {
		l := tr.Leaf(b[r])
		if got := sum[l] / cnt[l]; math.Abs(got-want[r]) > 1e-12 {
			t.Fatalf("row %d: leaf %d mean %v, golearn predicts %v", r, l, got, want[r])
		}
	}
}

// TestFitBoostLowersLoss checks the Newton leaf values: each tree lowers
// the training log-loss from where the previous one left it.
func TestFitBoostLowersLoss(t *testing.T) {
	b, y, _ := sampleBuckets(t)
	f := make([]float64, len(y))
	loss := func() float64 {
		p := make([]float64, len(y))
		for r := range p {
			p[r] = riskmodel.Sigmoid(f[r])
		}
		return riskmodel.LogLoss(p, y)
	}
	prev := loss()
	n := 0
	_, err := fitBoost(b, y, make([]float64, len(y)), boostParams{Trees: 10, Depth: 2, Rate: 0.3, Lambda: 1, Seed: 1}, func(tr *riskmodel.Tree) {
		n++
		for r := range f {
			f[r] += tr.Nodes[tr.Leaf(b[r])].Value
		}
		if l := loss(); !(l < prev) {
			t.Errorf("tree %d: training log-loss %.6f, was %.6f", n, l, prev)
		} else {
			prev = l
		}
	})
	if err != nil || n != 10 {
		t.Fatalf("fitBoost: %d trees, %v", n, err)
	}
}

// TestBoostedTraining trains the small spec with trees twice (identical
// bytes), loads it, and checks that scores include the trees and that the
// explanations still add up exactly.
func TestBoostedTraining(t *testing.T) {
	dirs := []string{filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")}
	var man *riskmodel.Manifest
	for _, d := range dirs {
		var err error
		man, err = Train(context.Background(), Options{DataPath: sampleCSV, SpecPath: boostSpec, OutDir: d})
		if err != nil {
			t.Fatalf("Train: %v", err)
		}
	}
	for _, name := range []string{riskmodel.ModelFileName, riskmodel.ManifestFileName, riskmodel.CardFileName} {
		a, _ := os.ReadFile(filepath.Join(dirs[0], name))
		bb, _ := os.ReadFile(filepath.Join(dirs[1], name))
		if len(a) == 0 || !bytes.Equal(a, bb) {
			t.Errorf("%s differs between two trainings", name)
		}
	}
	card, _ := os.ReadFile(filepath.Join(dirs[0], riskmodel.CardFileName))
	for _, want := range []string{"| 0.0.0 | logistic regression | 0.6100 (0.5500 – 0.6700) | 0.2400 (0.2200 – 0.2600) | 20.0% | 10.0% | 2.00 |",
		"| 0.0.1 (this) | logistic regression, ", "boosted regression trees"} {
		if !bytes.Contains(card, []byte(want)) {
			t.Errorf("model card lacks %q", want)
		}
	}
	trees := 0
	for _, g := range man.CrossValidation {
		trees = max(trees, g.Trees)
	}
	if trees != 30 {
		t.Errorf("cross-validation grid reaches %d trees, want 30", trees)
	}
	m, err := riskmodel.Load(dirs[0])
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	// On this sample, under these settings, cross-validation prefers trees.
	if got, want := len(m.File().Trees), int(man.Hyperparameters["trees"]); got != want || got == 0 {
		t.Errorf("model file has %d trees, manifest chose %d", got, want)
	}
	_, _, tab := sampleBuckets(t)
	linear := *m.File()
	linear.Trees = nil
	differ := 0
	for r := range tab.Rows {
		in := map[string]any{}
		for _, f := range m.InputFields() {
			in[f.Name] = tab.Get(r, f.Name)
		}
		p, err := m.Score(in)
		if err != nil {
			t.Fatalf("row %d: %v", r, err)
		}
		sum := p.BaselineLogOdds
		for _, c := range p.Explanation {
			sum += c.Contribution
		}
		if math.Abs(sum-p.LogOdds) > 1e-9 {
			t.Fatalf("row %d: baseline + contributions = %v, log-odds %v", r, sum, p.LogOdds)
		}
		lm, _ := riskmodel.NewModel(&linear, m.Spec(), "linear")
		pl, _ := lm.Score(in)
		if pl.LogOdds != p.LogOdds {
			differ++
		}
	}
	if differ == 0 {
		t.Error("the trees change no score")
	}
}
