package riskmodel

import (
	"math"
	"math/rand/v2"
	"sort"
)

// AUC is the area under the ROC curve: the probability that a random
// positive scores above a random negative, ties counting one half. It is NaN
// when either class is absent.
func AUC(p, y []float64) float64 {
	return weightedAUC(p, y, nil, order(p))
}

// order returns the indices of p sorted by ascending score.
func order(p []float64) []int {
	idx := make([]int, len(p))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	return idx
}

// weightedAUC computes the AUC with per-row weights (nil = 1) given the
// ascending order of p; bootstrap resamples reuse the order.
func weightedAUC(p, y, w []float64, idx []int) float64 {
	var negBelow, pairs, nPos, nNeg float64
	for k := 0; k < len(idx); {
		v := p[idx[k]]
		var pos, neg float64
		for k < len(idx) && p[idx[k]] == v {
			i := idx[k]
			wi := 1.0
			if w != nil {
				wi = w[i]
			}
			if y[i] > 0.5 {
				pos += wi
			} else {
				neg += wi
			}
			k++
		}
		pairs += pos * (negBelow + neg/2)
		negBelow += neg
		nPos += pos
		nNeg += neg
	}
	if nPos == 0 || nNeg == 0 {
		return math.NaN()
	}
	return pairs / (nPos * nNeg)
}

// Brier is the mean squared difference between probability and outcome.
func Brier(p, y []float64) float64 {
	var s float64
	for i := range p {
		d := p[i] - y[i]
		s += d * d
	}
	return s / float64(len(p))
}

// logLossEps bounds probabilities away from 0 and 1 in LogLoss.
const logLossEps = 1e-15

// LogLoss is the mean negative log-likelihood (natural log), with
// probabilities clipped to [1e-15, 1-1e-15].
func LogLoss(p, y []float64) float64 {
	var s float64
	for i := range p {
		q := min(max(p[i], logLossEps), 1-logLossEps)
		if y[i] > 0.5 {
			s -= math.Log(q)
		} else {
			s -= math.Log(1 - q)
		}
	}
	return s / float64(len(p))
}

// CalibrationBin is one row of a calibration table: probabilities in
// [Lo, Hi) (the last bin includes 1).
type CalibrationBin struct {
	Lo            float64 `json:"lo"`
	Hi            float64 `json:"hi"`
	N             int     `json:"n"`
	MeanPredicted float64 `json:"mean_predicted"`
	Observed      float64 `json:"observed"`
}

// CalibrationTable bins probabilities into k equal-width bins.
func CalibrationTable(p, y []float64, k int) []CalibrationBin {
	bins := make([]CalibrationBin, k)
	for b := range bins {
		bins[b].Lo, bins[b].Hi = float64(b)/float64(k), float64(b+1)/float64(k)
	}
	for i := range p {
		b := min(int(p[i]*float64(k)), k-1)
		b = max(b, 0)
		bins[b].N++
		bins[b].MeanPredicted += p[i]
		bins[b].Observed += y[i]
	}
	for b := range bins {
		if n := float64(bins[b].N); n > 0 {
			bins[b].MeanPredicted /= n
			bins[b].Observed /= n
		}
	}
	return bins
}

// ECE is the expected calibration error over k equal-width bins: the mean,
// weighted by bin size, of |mean predicted − observed rate|.
func ECE(p, y []float64, k int) float64 {
	var s float64
	for _, b := range CalibrationTable(p, y, k) {
		s += float64(b.N) * math.Abs(b.MeanPredicted-b.Observed)
	}
	return s / float64(len(p))
}

// Rates are the error rates of the rule "high risk when p ≥ Threshold".
type Rates struct {
	Threshold float64 `json:"threshold"`
	// Flagged is the share of people at or above the threshold.
	Flagged float64 `json:"flagged"`
	// FPR: share of people without the outcome who are flagged.
	FPR float64 `json:"fpr"`
	// FNR: share of people with the outcome who are not flagged.
	FNR float64 `json:"fnr"`
	// PPV: share of flagged people who have the outcome.
	PPV float64 `json:"ppv"`
}

// ErrorRates computes Rates at threshold t. Undefined rates are NaN.
func ErrorRates(p, y []float64, t float64) Rates {
	var tp, fp, fn, tn float64
	for i := range p {
		hi := p[i] >= t
		switch pos := y[i] > 0.5; {
		case hi && pos:
			tp++
		case hi:
			fp++
		case pos:
			fn++
		default:
			tn++
		}
	}
	return Rates{
		Threshold: t,
		Flagged:   ratio(tp+fp, tp+fp+fn+tn),
		FPR:       ratio(fp, fp+tn),
		FNR:       ratio(fn, fn+tp),
		PPV:       ratio(tp, tp+fp),
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// Interval is a point estimate with a 95% confidence interval.
type Interval struct {
	Value Metric `json:"value"`
	Lo    Metric `json:"lo"`
	Hi    Metric `json:"hi"`
	// Method says how the interval was computed.
	Method string `json:"method"`
}

// DeLongAUC returns the AUC with its 95% DeLong confidence interval.
func DeLongAUC(p, y []float64) Interval {
	var pos, neg []float64
	for i := range p {
		if y[i] > 0.5 {
			pos = append(pos, p[i])
		} else {
			neg = append(neg, p[i])
		}
	}
	m, n := float64(len(pos)), float64(len(neg))
	if m == 0 || n == 0 {
		nan := Metric(math.NaN())
		return Interval{nan, nan, nan, "delong"}
	}
	// Structural components: V10[i] = P(neg < pos_i), V01[j] = P(pos > neg_j),
	// via midranks.
	sn := append([]float64(nil), neg...)
	sp := append([]float64(nil), pos...)
	sort.Float64s(sn)
	sort.Float64s(sp)
	below := func(sorted []float64, v float64) float64 {
		lo := sort.SearchFloat64s(sorted, v)
		hi := sort.Search(len(sorted), func(i int) bool { return sorted[i] > v })
		return float64(lo) + float64(hi-lo)/2
	}
	v10 := make([]float64, len(pos))
	var auc float64
	for i, x := range pos {
		v10[i] = below(sn, x) / n
		auc += v10[i]
	}
	auc /= m
	v01 := make([]float64, len(neg))
	for j, x := range neg {
		// Share of positives above x, ties one half.
		v01[j] = (m - below(sp, x)) / m
	}
	variance := func(v []float64) float64 {
		var s float64
		for _, x := range v {
			s += (x - auc) * (x - auc)
		}
		return s / float64(len(v)-1)
	}
	se := math.Sqrt(variance(v10)/m + variance(v01)/n)
	return Interval{Metric(auc), Metric(max(auc-1.959964*se, 0)), Metric(min(auc+1.959964*se, 1)), "delong"}
}

// bootstrapCI returns the 95% percentile interval of stat over r resamples
// drawn with a fixed seed, so reports are reproducible.
func bootstrapCI(n, r int, seed uint64, stat func(w []float64) float64) (float64, float64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	w := make([]float64, n)
	vals := make([]float64, 0, r)
	for range r {
		clear(w)
		for range n {
			w[rng.IntN(n)]++
		}
		if v := stat(w); !math.IsNaN(v) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return math.NaN(), math.NaN()
	}
	sort.Float64s(vals)
	q := func(f float64) float64 { return vals[min(int(f*float64(len(vals))), len(vals)-1)] }
	return q(0.025), q(0.975)
}

func weightedMean(w []float64, f func(i int) float64) float64 {
	var s, n float64
	for i, wi := range w {
		if wi != 0 {
			s += wi * f(i)
			n += wi
		}
	}
	return s / n
}

func weightedECE(p, y, w []float64, k int) float64 {
	sumP := make([]float64, k)
	sumY := make([]float64, k)
	var total float64
	for i, wi := range w {
		if wi == 0 {
			continue
		}
		b := max(min(int(p[i]*float64(k)), k-1), 0)
		sumP[b] += wi * p[i]
		sumY[b] += wi * y[i]
		total += wi
	}
	var s float64
	for b := range k {
		s += math.Abs(sumP[b] - sumY[b])
	}
	return s / total
}
