// Package caseprom counts what the use cases of casework did, in
// Prometheus metrics: stored assessments, raised flags, override requests
// and decisions, and recommendation probabilities for drift monitoring.
package caseprom

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/riskmodel"
)

// Metrics counts what committed use cases did, whichever front end called
// them (API or web pages); it implements casework.Metrics.
type Metrics struct {
	assessments *prometheus.CounterVec
	flags       *prometheus.CounterVec
	overrides   *prometheus.CounterVec
	risk        *riskmodel.Metrics
}

// New registers the counters with reg; risk (optional) watches the
// distribution of recommended probabilities.
func New(reg prometheus.Registerer, risk *riskmodel.Metrics) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		assessments: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sunpath_assessments_total", Help: "Assessments stored, by instrument.",
		}, []string{"instrument"}),
		flags: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sunpath_flags_raised_total", Help: "Flags raised, by level and code.",
		}, []string{"level", "code"}),
		overrides: f.NewCounterVec(prometheus.CounterOpts{
			Name: "sunpath_overrides_total", Help: "Override requests and decisions, by direction and status.",
		}, []string{"direction", "status"}),
		risk: risk,
	}
}

// AssessmentStored counts a stored assessment and its flags.
func (m *Metrics) AssessmentStored(a casework.Assessment) {
	m.assessments.WithLabelValues(a.Instrument).Inc()
	for _, f := range a.Flags {
		m.flags.WithLabelValues(string(f.Level), f.Code).Inc()
	}
}

// Recommended observes a recommendation's probability.
func (m *Metrics) Recommended(model string, p float64) {
	if m.risk != nil {
		m.risk.Observe(model, p)
	}
}

// OverrideDecided counts an override request or decision.
func (m *Metrics) OverrideDecided(direction, status string) {
	m.overrides.WithLabelValues(direction, status).Inc()
}
