package httpapi

import (
	"net/http"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler serves reg's metrics. It is mounted on its own listener
// (metrics.addr, loopback by default), never on the service port: series
// such as sunpath_flags_raised_total tell who is in crisis right now.
func MetricsHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

type httpMetrics struct {
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg *prometheus.Registry, version string) *httpMetrics {
	f := promauto.With(reg)
	f.NewGauge(prometheus.GaugeOpts{
		Name:        "sunpath_build_info",
		Help:        "Build information; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version()},
	}).Set(1)
	return &httpMetrics{
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sunpath_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern, method and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route", "method", "status"}),
		inFlight: f.NewGauge(prometheus.GaugeOpts{
			Name: "sunpath_http_requests_in_flight",
			Help: "HTTP requests being answered now.",
		}),
	}
}

// methodLabel is the method for metrics: one of the standard methods, or
// OTHER, so that made-up methods cannot grow the number of series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}
