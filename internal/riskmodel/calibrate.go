package riskmodel

import (
	"fmt"
	"math"
	"sort"
)

// Calibration maps the linear score (log-odds) to a calibrated probability.
// It is fitted on out-of-fold scores, never on the rows a score was fitted on.
type Calibration struct {
	Method string `json:"method"`
	// Platt: p = σ(A·s + B).
	A float64 `json:"a,omitempty"`
	B float64 `json:"b,omitempty"`
	// Isotonic: a non-decreasing step function given by knots X (scores)
	// and Y (probabilities), interpolated linearly between knots and flat
	// outside them.
	X []float64 `json:"x,omitempty"`
	Y []float64 `json:"y,omitempty"`
}

func (c Calibration) check() error {
	switch c.Method {
	case Platt:
		if !finite(c.A) || !finite(c.B) || c.A <= 0 {
			return fmt.Errorf("platt calibration needs finite a > 0 and b: %w", ErrInvalid)
		}
	case Isotonic:
		if len(c.X) == 0 || len(c.X) != len(c.Y) || !sort.Float64sAreSorted(c.X) || !sort.Float64sAreSorted(c.Y) {
			return fmt.Errorf("isotonic calibration needs sorted knots: %w", ErrInvalid)
		}
	default:
		return fmt.Errorf("calibration method %q: %w", c.Method, ErrInvalid)
	}
	return nil
}

// Apply returns the calibrated probability of score s.
func (c Calibration) Apply(s float64) float64 {
	if c.Method == Isotonic {
		n := len(c.X)
		switch {
		case s <= c.X[0]:
			return c.Y[0]
		case s >= c.X[n-1]:
			return c.Y[n-1]
		}
		i := sort.SearchFloat64s(c.X, s) // c.X[i-1] < s <= c.X[i]
		t := (s - c.X[i-1]) / (c.X[i] - c.X[i-1])
		return c.Y[i-1] + t*(c.Y[i]-c.Y[i-1])
	}
	return Sigmoid(c.A*s + c.B)
}

// Sigmoid is the logistic function, computed without overflow.
func Sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// FitPlatt fits p = σ(A·s + B) to labels y (0 or 1) by maximum likelihood
// (Newton's method with a line search). It returns A = 1, B = 0 when the
// scores carry no information.
func FitPlatt(s, y []float64) Calibration {
	a, b := 1.0, 0.0
	nll := func(a, b float64) float64 {
		var l float64
		for i := range s {
			z := a*s[i] + b
			// log(1+e^z) − y·z, stably.
			l += math.Max(z, 0) + math.Log1p(math.Exp(-math.Abs(z))) - y[i]*z
		}
		return l
	}
	cur := nll(a, b)
	for range 100 {
		var ga, gb, haa, hab, hbb float64
		for i := range s {
			p := Sigmoid(a*s[i] + b)
			d := p - y[i]
			w := math.Max(p*(1-p), 1e-12)
			ga += d * s[i]
			gb += d
			haa += w * s[i] * s[i]
			hab += w * s[i]
			hbb += w
		}
		haa += 1e-9
		hbb += 1e-9
		det := haa*hbb - hab*hab
		if det <= 0 {
			break
		}
		da := (hbb*ga - hab*gb) / det
		db := (haa*gb - hab*ga) / det
		// Newton decrement: the predicted decrease of the objective.
		if ga*da+gb*db < 1e-12*(1+math.Abs(cur)) {
			break
		}
		moved := false
		for step := 1.0; step > 1e-8; step /= 2 {
			na, nb := a-step*da, b-step*db
			if v := nll(na, nb); v < cur {
				a, b, cur, moved = na, nb, v, true
				break
			}
		}
		if !moved {
			break
		}
	}
	if !(a > 0) {
		return Calibration{Method: Platt, A: 1, B: 0}
	}
	return Calibration{Method: Platt, A: a, B: b}
}

// FitIsotonic fits a non-decreasing map from score to probability by the
// pool-adjacent-violators algorithm. Each pooled block becomes a knot at its
// mean score.
func FitIsotonic(s, y []float64) Calibration {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s[idx[a]] < s[idx[b]] })
	type block struct{ sumS, sumY, n float64 }
	var st []block
	for k := 0; k < len(idx); {
		// Tied scores form one block so that the map is a function.
		b := block{}
		v := s[idx[k]]
		for k < len(idx) && s[idx[k]] == v {
			b.sumS += s[idx[k]]
			b.sumY += y[idx[k]]
			b.n++
			k++
		}
		st = append(st, b)
		for len(st) > 1 {
			p, q := st[len(st)-2], st[len(st)-1]
			if p.sumY/p.n < q.sumY/q.n {
				break
			}
			st = st[:len(st)-2]
			st = append(st, block{p.sumS + q.sumS, p.sumY + q.sumY, p.n + q.n})
		}
	}
	c := Calibration{Method: Isotonic}
	for _, b := range st {
		c.X = append(c.X, b.sumS/b.n)
		c.Y = append(c.Y, b.sumY/b.n)
	}
	return c
}
