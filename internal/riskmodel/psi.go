package riskmodel

import (
	"math"
	"slices"
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// ScoreBins is a distribution of calibrated probabilities over bins with
// upper edges Edges (the last bin is unbounded): the reference of the
// population-stability index.
type ScoreBins struct {
	Edges    []float64 `json:"edges"`
	Fraction []float64 `json:"fraction"`
}

// NewScoreBins bins probabilities at their k-quantiles (training deciles
// for k = 10), so that each bin starts with about the same share.
func NewScoreBins(p []float64, k int) ScoreBins {
	s := slices.Clone(p)
	slices.Sort(s)
	edges := quantileEdges(s, k)
	b := ScoreBins{Edges: edges, Fraction: make([]float64, len(edges)+1)}
	for _, v := range p {
		b.Fraction[b.bin(v)]++
	}
	for i := range b.Fraction {
		b.Fraction[i] /= float64(len(p))
	}
	return b
}

func (b ScoreBins) bin(v float64) int {
	i, _ := slices.BinarySearch(b.Edges, v)
	return i
}

// psiFloor keeps empty bins from making the index infinite.
const psiFloor = 1e-4

// PSI is the population-stability index of observed bin counts against the
// reference fractions: Σ (a−e)·ln(a/e), with shares floored at 1e-4.
// Below 0.1 is usually read as stable, above 0.25 as a major shift.
func (b ScoreBins) PSI(counts []float64) float64 {
	var n float64
	for _, c := range counts {
		n += c
	}
	if n == 0 || len(counts) != len(b.Fraction) {
		return math.NaN()
	}
	var psi float64
	for i, c := range counts {
		a := max(c/n, psiFloor)
		e := max(b.Fraction[i], psiFloor)
		psi += (a - e) * math.Log(a/e)
	}
	return psi
}

// PSITracker keeps the last Window scored probabilities of a model and
// reports their PSI against the training distribution. It is safe for
// concurrent use.
type PSITracker struct {
	mu     sync.Mutex
	bins   ScoreBins
	ring   []uint8
	next   int
	full   bool
	counts []float64
}

// NewPSITracker tracks a window of the last window scores (at least 1).
func NewPSITracker(bins ScoreBins, window int) *PSITracker {
	return &PSITracker{bins: bins, ring: make([]uint8, max(window, 1)), counts: make([]float64, len(bins.Fraction))}
}

// Observe adds one calibrated probability.
func (t *PSITracker) Observe(p float64) {
	b := uint8(t.bins.bin(p))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.full {
		t.counts[t.ring[t.next]]--
	}
	t.ring[t.next] = b
	t.counts[b]++
	t.next++
	if t.next == len(t.ring) {
		t.next, t.full = 0, true
	}
}

// N is the number of scores in the window.
func (t *PSITracker) N() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.full {
		return len(t.ring)
	}
	return t.next
}

// PSI is the index of the current window; NaN before any observation.
func (t *PSITracker) PSI() float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bins.PSI(t.counts)
}

// Metrics records scores for Prometheus: the histogram
// sunpath_risk_probability{model} and the gauges sunpath_risk_psi{model}
// (PSI of the last window scores against training) and
// sunpath_risk_psi_window{model} (scores in that window).
type Metrics struct {
	hist     *prometheus.HistogramVec
	trackers map[string]*PSITracker
}

// NewMetrics registers the risk metrics of models with reg. Window is the
// number of recent scores the PSI is computed on (1000 if ≤ 0).
func NewMetrics(reg prometheus.Registerer, models map[string]*Model, window int) (*Metrics, error) {
	if window <= 0 {
		window = 1000
	}
	m := &Metrics{
		hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sunpath_risk_probability",
			Help:    "Calibrated probability returned by risk scoring, per model.",
			Buckets: prometheus.LinearBuckets(0.05, 0.05, 19),
		}, []string{"model"}),
		trackers: map[string]*PSITracker{},
	}
	names := make([]string, 0, len(models))
	for n := range models {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		m.trackers[n] = NewPSITracker(models[n].file.Baseline, window)
	}
	collector := &psiCollector{m: m, names: names,
		psi: prometheus.NewDesc("sunpath_risk_psi", psiHelp, []string{"model"}, nil),
		win: prometheus.NewDesc("sunpath_risk_psi_window", "Number of recent risk scores in the PSI window, per model.", []string{"model"}, nil),
	}
	if err := reg.Register(m.hist); err != nil {
		return nil, err
	}
	if err := reg.Register(collector); err != nil {
		return nil, err
	}
	return m, nil
}

const psiHelp = "Population-stability index of recent risk scores against the training distribution, per model."

// Observe records a prediction of the named model.
func (m *Metrics) Observe(model string, p float64) {
	m.hist.WithLabelValues(model).Observe(p)
	if t, ok := m.trackers[model]; ok {
		t.Observe(p)
	}
}

// Tracker returns the PSI tracker of a model, or nil.
func (m *Metrics) Tracker(model string) *PSITracker { return m.trackers[model] }

type psiCollector struct {
	m        *Metrics
	names    []string
	psi, win *prometheus.Desc
}

func (c *psiCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.psi
	ch <- c.win
}

func (c *psiCollector) Collect(ch chan<- prometheus.Metric) {
	for _, n := range c.names {
		t := c.m.trackers[n]
		k := t.N()
		ch <- prometheus.MustNewConstMetric(c.win, prometheus.GaugeValue, float64(k), n)
		if k > 0 {
			ch <- prometheus.MustNewConstMetric(c.psi, prometheus.GaugeValue, t.PSI(), n)
		}
	}
}
