package riskmodel

import (
	"math"
	"testing"
)

func near(t *testing.T, name string, got, want, tol float64) {
	t.Helper()
	if math.IsNaN(got) || math.Abs(got-want) > tol {
		t.Errorf("%s = %.10g, want %.10g (±%g)", name, got, want, tol)
	}
}

// The worked example: two negatives scored 0.1 and 0.4, two positives
// scored 0.35 and 0.8.
var (
	exP = []float64{0.1, 0.4, 0.35, 0.8}
	exY = []float64{0, 0, 1, 1}
)

func TestMetricsHandComputed(t *testing.T) {
	// AUC: pairs (pos, neg) ranked right: (0.35, 0.1), (0.8, 0.1), (0.8, 0.4) → 3 of 4.
	near(t, "AUC", AUC(exP, exY), 0.75, 1e-15)
	// Ties count one half.
	near(t, "AUC with a tie", AUC([]float64{0.5, 0.5, 0.2}, []float64{1, 0, 0}), 0.75, 1e-15)
	near(t, "AUC perfect", AUC([]float64{0.1, 0.9}, []float64{0, 1}), 1, 0)
	if !math.IsNaN(AUC([]float64{0.1, 0.9}, []float64{1, 1})) {
		t.Error("AUC of one class should be NaN")
	}
	// Brier: (0.1² + 0.4² + 0.65² + 0.2²) / 4 = (0.01 + 0.16 + 0.4225 + 0.04) / 4.
	near(t, "Brier", Brier(exP, exY), 0.158125, 1e-15)
	// Log-loss: −(ln 0.9 + ln 0.6 + ln 0.35 + ln 0.8) / 4.
	near(t, "LogLoss", LogLoss(exP, exY), (0.105360516+0.510825624+1.049822124+0.223143551)/4, 1e-9)
	// Clipping keeps a confident mistake finite: −ln(1e-15).
	near(t, "LogLoss clipped", LogLoss([]float64{0}, []float64{1}), 34.538776394910684, 1e-9)
	// ECE over 10 bins: every prediction alone in its bin,
	// (|0.1−0| + |0.4−0| + |0.35−1| + |0.8−1|) / 4 = 1.35 / 4.
	near(t, "ECE", ECE(exP, exY, 10), 0.3375, 1e-15)
	// Two predictions sharing a bin: mean 0.25 against an observed 0.5.
	near(t, "ECE shared bin", ECE([]float64{0.2, 0.3}, []float64{1, 0}, 2), 0.25, 1e-15)
}

func TestErrorRatesHandComputed(t *testing.T) {
	// Threshold 0.4 flags 0.4 (negative) and 0.8 (positive); misses 0.35.
	r := ErrorRates(exP, exY, 0.4)
	near(t, "FPR", r.FPR, 0.5, 0)
	near(t, "FNR", r.FNR, 0.5, 0)
	near(t, "PPV", r.PPV, 0.5, 0)
	near(t, "flagged", r.Flagged, 0.5, 0)
	r = ErrorRates(exP, exY, 0.3)
	near(t, "FPR at 0.3", r.FPR, 0.5, 0)
	near(t, "FNR at 0.3", r.FNR, 0, 0)
	near(t, "PPV at 0.3", r.PPV, 2.0/3, 1e-15)
	if r := ErrorRates(exP, exY, 0.9); !math.IsNaN(r.PPV) {
		t.Errorf("PPV with nobody flagged = %v, want NaN", r.PPV)
	}
}

func TestDeLongHandComputed(t *testing.T) {
	// Structural components: positives 0.8 → 1, 0.35 → 0.5; negatives
	// 0.1 → 1, 0.4 → 0.5. Both sample variances are 0.125, so
	// se = √(0.125/2 + 0.125/2) = √0.125.
	iv := DeLongAUC(exP, exY)
	near(t, "DeLong AUC", float64(iv.Value), 0.75, 1e-15)
	near(t, "DeLong lo", float64(iv.Lo), 0.75-1.959964*math.Sqrt(0.125), 1e-9)
	near(t, "DeLong hi (clipped)", float64(iv.Hi), 1, 0)
}

func TestCalibrationTable(t *testing.T) {
	bins := CalibrationTable([]float64{0.05, 0.15, 0.12, 1}, []float64{0, 1, 0, 1}, 10)
	if bins[1].N != 2 || bins[9].N != 1 || bins[0].N != 1 {
		t.Fatalf("bin counts %d %d %d", bins[0].N, bins[1].N, bins[9].N)
	}
	near(t, "bin 1 mean predicted", bins[1].MeanPredicted, 0.135, 1e-15)
	near(t, "bin 1 observed", bins[1].Observed, 0.5, 0)
}

func TestPlattRecoversKnownMap(t *testing.T) {
	// Scores on a grid with outcome shares exactly σ(2s − 1) (1,000 rows per
	// score): the maximum-likelihood fit is a = 2, b = −1 up to rounding.
	var s, y []float64
	for k := -20; k <= 20; k++ {
		sc := float64(k) / 10
		pos := int(math.Round(1000 * Sigmoid(2*sc-1)))
		for i := range 1000 {
			s = append(s, sc)
			y = append(y, b2f(i < pos))
		}
	}
	c := FitPlatt(s, y)
	near(t, "a", c.A, 2, 0.01)
	near(t, "b", c.B, -1, 0.01)
	near(t, "Apply(0.5)", c.Apply(0.5), 0.5, 0.005)
}

func TestIsotonicHandComputed(t *testing.T) {
	// Scores 1..4 with outcomes 1, 0, 1, 1: the first two violate the order
	// and pool to 0.5 at score 1.5; the last two pool to 1 at score 3.5.
	c := FitIsotonic([]float64{1, 2, 3, 4}, []float64{1, 0, 1, 1})
	near(t, "knots", float64(len(c.X)), 2, 0)
	near(t, "x0", c.X[0], 1.5, 0)
	near(t, "y0", c.Y[0], 0.5, 0)
	near(t, "x1", c.X[1], 3.5, 0)
	near(t, "y1", c.Y[1], 1, 0)
	near(t, "between knots", c.Apply(2.5), 0.75, 1e-15)
	near(t, "below", c.Apply(-10), 0.5, 0)
	near(t, "above", c.Apply(10), 1, 0)
}

func TestPSIHandComputed(t *testing.T) {
	b := ScoreBins{Edges: []float64{0.5}, Fraction: []float64{0.5, 0.5}}
	near(t, "same distribution", b.PSI([]float64{10, 10}), 0, 0)
	// 80/20 against 50/50: (0.3)·ln(1.6) + (−0.3)·ln(0.4).
	near(t, "shifted", b.PSI([]float64{8, 2}), 0.3*math.Log(1.6)-0.3*math.Log(0.4), 1e-12)

	tr := NewPSITracker(b, 4)
	for _, p := range []float64{0.1, 0.9, 0.1, 0.9} {
		tr.Observe(p)
	}
	near(t, "tracker balanced", tr.PSI(), 0, 0)
	for _, p := range []float64{0.1, 0.1, 0.1} { // window now 0.9, 0.1, 0.1, 0.1
		tr.Observe(p)
	}
	near(t, "tracker window", tr.PSI(), b.PSI([]float64{3, 1}), 1e-15)
	if tr.N() != 4 {
		t.Errorf("window holds %d, want 4", tr.N())
	}
}

func TestScoreBinsDeciles(t *testing.T) {
	var p []float64
	for i := range 1000 {
		p = append(p, float64(i)/1000)
	}
	b := NewScoreBins(p, 10)
	if len(b.Fraction) != 10 {
		t.Fatalf("%d bins, want 10", len(b.Fraction))
	}
	for i, f := range b.Fraction {
		near(t, "decile share "+string(rune('0'+i)), f, 0.1, 0.0011)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
