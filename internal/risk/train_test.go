package risk

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sunpath/sunpath/internal/riskmodel"
)

// TestMain re-executes the test binary with GODEBUG=cgocheck=0: golearn's
// liblinear passes Go pointers to C, which Go 1.26 rejects unless the
// process starts with that setting (os.Setenv is too late).
func TestMain(m *testing.M) {
	if !CgoCheckOff() {
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Env = WithCgoCheckOff(os.Environ())
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				os.Exit(ee.ExitCode())
			}
			panic(err)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	sampleCSV = "../riskmodel/testdata/nij-sample.csv"
	smallSpec = "testdata/nij-small.yaml"
)

func train(t *testing.T, out string) *riskmodel.Manifest {
	t.Helper()
	man, err := Train(context.Background(), Options{DataPath: sampleCSV, SpecPath: smallSpec, OutDir: out})
	if err != nil {
		t.Fatalf("Train: %v", err)
	}
	return man
}

func TestTrainTwiceIsByteIdentical(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	train(t, a)
	train(t, b)
	entries, err := os.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Errorf("model directory has %d files, want 5", len(entries))
	}
	for _, e := range entries {
		ba, _ := os.ReadFile(filepath.Join(a, e.Name()))
		bb, err := os.ReadFile(filepath.Join(b, e.Name()))
		if err != nil {
			t.Fatalf("second run lacks %s: %v", e.Name(), err)
		}
		if !bytes.Equal(ba, bb) {
			t.Errorf("%s differs between two trainings", e.Name())
		}
	}
}

func TestTrainedModelLoadsAndScores(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "m")
	man := train(t, dir)
	if man.TrainingData.Rows != 400 || len(man.TrainingData.SHA256) != 64 {
		t.Errorf("training data %+v", man.TrainingData)
	}
	if man.Trainer.Golearn == "" {
		t.Error("golearn version not recorded")
	}
	m, err := riskmodel.Load(dir)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tab, err := riskmodel.ReadTable(sampleCSV)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := riskmodel.Evaluate(m, tab, riskmodel.EvalOptions{Bootstrap: 50})
	if err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
	if rep.N != 400 || rep.Unencodable.Rows != 0 {
		t.Errorf("evaluated %d rows, %d unencodable", rep.N, rep.Unencodable.Rows)
	}
	// In-sample AUC of a model with a few strong features is well above chance,
	// and above its cross-validated AUC.
	if auc := float64(rep.AUC); auc < 0.65 || auc < float64(man.Metrics.AUC) {
		t.Errorf("in-sample AUC %.3f (cross-validated %.3f)", auc, float64(man.Metrics.AUC))
	}
	if math.Abs(float64(rep.MeanPredicted-rep.BaseRate)) > 0.03 {
		t.Errorf("mean predicted %.3f against base rate %.3f: calibration off", rep.MeanPredicted, rep.BaseRate)
	}
}

// TestFitLogisticMatchesNewton checks the golearn adapter (intercept column,
// weight sign, export parsing) against an independent Newton solver of the
// same objective: ½‖w‖² + C Σ log(1 + exp(−yᵢ w·xᵢ)), y in {−1, 1}.
func TestFitLogisticMatchesNewton(t *testing.T) {
	var x [][]float64
	var y []float64
	for i := range 200 {
		a := float64(i%10) / 10
		b := float64((i*7)%13) / 13
		// Positives are more likely with high a and low b; labels are a
		// deterministic function of a pseudo-random threshold.
		th := float64((i*37)%101) / 101
		pos := 1/(1+math.Exp(-(3*a-2*b))) > th
		x = append(x, []float64{a, b, 1})
		y = append(y, map[bool]float64{true: 1, false: 0}[pos])
	}
	// Put a negative first so that liblinear's first label is 0 and the
	// weights must be negated.
	for i := range y {
		if y[i] == 0 {
			x[0], x[i] = x[i], x[0]
			y[0], y[i] = y[i], y[0]
			break
		}
	}
	const c = 0.5
	got, err := fitLogistic(x, y, c, 1e-8)
	if err != nil {
		t.Fatal(err)
	}
	want := newtonLR(x, y, c)
	for j := range want {
		if math.Abs(got[j]-want[j]) > 1e-4 {
			t.Errorf("w[%d] = %.6f, want %.6f", j, got[j], want[j])
		}
	}
	if got[0] <= 0 || got[1] >= 0 {
		t.Errorf("weights %v: want a positive effect of a and a negative one of b", got)
	}
}

func newtonLR(x [][]float64, y []float64, c float64) []float64 {
	d := len(x[0])
	w := make([]float64, d)
	for range 50 {
		g := make([]float64, d)
		h := make([][]float64, d)
		for j := range h {
			h[j] = make([]float64, d)
			h[j][j] = 1
			g[j] = w[j]
		}
		for i, xi := range x {
			p := riskmodel.Sigmoid(dot(w, xi))
			for j := range d {
				g[j] += c * (p - y[i]) * xi[j]
				for k := range d {
					h[j][k] += c * p * (1 - p) * xi[j] * xi[k]
				}
			}
		}
		step := solve(h, g)
		for j := range w {
			w[j] -= step[j]
		}
	}
	return w
}

// solve solves a small symmetric positive-definite system by Gaussian elimination.
func solve(a [][]float64, b []float64) []float64 {
	n := len(b)
	m := make([][]float64, n)
	for i := range m {
		m[i] = append(append([]float64(nil), a[i]...), b[i])
	}
	for i := range n {
		for k := i + 1; k < n; k++ {
			f := m[k][i] / m[i][i]
			for j := i; j <= n; j++ {
				m[k][j] -= f * m[i][j]
			}
		}
	}
	out := make([]float64, n)
	for i := n - 1; i >= 0; i-- {
		s := m[i][n]
		for j := i + 1; j < n; j++ {
			s -= m[i][j] * out[j]
		}
		out[i] = s / m[i][i]
	}
	return out
}

func TestReadLiblinearSign(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		label string
		want  float64
	}{{"label 1 0", 0.5}, {"label 0 1", -0.5}} {
		p := filepath.Join(dir, "m.txt")
		body := "solver_type L2R_LR\nnr_class 2\n" + tt.label + "\nnr_feature 2\nbias -1\nw\n0.5 \n0 \n"
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		w, err := readLiblinear(p, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(w) != 1 || w[0] != tt.want {
			t.Errorf("%s: weights %v, want [%v]", tt.label, w, tt.want)
		}
	}
}

func TestStratifiedFolds(t *testing.T) {
	y := make([]float64, 100)
	for i := range 40 {
		y[i] = 1
	}
	f := stratifiedFolds(y, 5, 3)
	pos := make([]int, 5)
	all := make([]int, 5)
	for i, k := range f {
		all[k]++
		if y[i] == 1 {
			pos[k]++
		}
	}
	for k := range 5 {
		if all[k] != 20 || pos[k] != 8 {
			t.Errorf("fold %d: %d rows, %d positives; want 20 and 8", k, all[k], pos[k])
		}
	}
}
