package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/riskmodel"
)

// comparisonView is the comparison page: each shadow version of a model
// against the active one, labelled by the outcomes the reader chooses.
type comparisonView struct {
	Name, Active string
	Kinds        []kindOption
	WithinDays   int
	Errors       []problem.FieldError
	Shadows      []shadowView
}

type kindOption struct {
	Kind    string
	Checked bool
}

type shadowView struct {
	casework.ShadowComparison
	Agree, MeanA, MeanS string
	Rows                []matrixRow
	Metrics             []metricRow
	CalA, CalS          []string
	Groups              []groupRow
}

type matrixRow struct {
	Tier  casework.Tier
	Cells []int
}

type metricRow struct{ Label, Active, Shadow string }

type groupRow struct {
	Column, Value string
	N             int
	Enough        bool
	FPRA, FPRS    string
	FNRA, FNRS    string
}

func metric(m riskmodel.Metric) string {
	if math.IsNaN(float64(m)) || math.IsInf(float64(m), 0) {
		return "—"
	}
	return fmt.Sprintf("%.3f", float64(m))
}

func share(m riskmodel.Metric) string {
	if math.IsNaN(float64(m)) {
		return "—"
	}
	return fmt.Sprintf("%.0f%%", float64(m)*100)
}

func ivText(iv riskmodel.Interval) string {
	return fmt.Sprintf("%s [%s, %s]", metric(iv.Value), metric(iv.Lo), metric(iv.Hi))
}

func calibration(bins []riskmodel.CalibrationBin) []string {
	out := make([]string, 0, len(bins))
	for _, b := range bins {
		out = append(out, fmt.Sprintf("%.2f–%.2f: %.2f / %.2f (n=%d)", b.Lo, b.Hi, b.MeanPredicted, b.Observed, b.N))
	}
	return out
}

// comparisonPage shows GET /v1/models/{name}/comparison to supervisors and
// admins, through the same use case.
func (s *server) comparisonPage(rq *request) {
	name := rq.r.PathValue("name")
	q := rq.r.URL.Query()
	v := comparisonView{Name: name, WithinDays: 365}
	kinds := q["outcomes"]
	if len(kinds) == 0 {
		kinds = []string{"revocation", "new_offence"}
	}
	for _, k := range casework.OutcomeKinds {
		v.Kinds = append(v.Kinds, kindOption{Kind: k, Checked: slices.Contains(kinds, k)})
	}
	if d := q.Get("within_days"); d != "" {
		n, err := strconv.Atoi(strings.TrimSpace(d))
		if err != nil {
			n = -1
		}
		v.WithinDays = n
	}
	cmp, err := s.d.Casework.ModelComparison(rq.ctx, rq.call(), name, casework.ComparisonQuery{Kinds: kinds, WithinDays: v.WithinDays})
	var inv *problem.Invalid
	switch {
	case errors.As(err, &inv):
		v.Errors = inv.Errors
		rq.render(http.StatusUnprocessableEntity, "comparison", v)
		return
	case err != nil:
		rq.fail(err)
		return
	}
	v.Active = cmp.Active.Version
	for _, sc := range cmp.Shadows {
		sv := shadowView{ShadowComparison: sc, Agree: share(sc.Agreement), MeanA: metric(sc.MeanActive), MeanS: metric(sc.MeanShadow)}
		for i, t := range sc.Tiers {
			sv.Rows = append(sv.Rows, matrixRow{Tier: t, Cells: sc.Matrix[i]})
		}
		if sc.Enough {
			a, b := sc.Active, sc.Shadow
			sv.Metrics = []metricRow{
				{"comparison.auc", ivText(a.AUC), ivText(b.AUC)},
				{"comparison.brier", metric(a.Brier), metric(b.Brier)},
				{"comparison.threshold", metric(a.StrictThreshold), metric(b.StrictThreshold)},
				{"comparison.fpr", metric(a.FPR), metric(b.FPR)},
				{"comparison.fnr", metric(a.FNR), metric(b.FNR)},
			}
			sv.CalA, sv.CalS = calibration(a.Calibration), calibration(b.Calibration)
			for i, g := range a.Groups {
				row := groupRow{Column: g.Column, Value: g.Value, N: g.N, Enough: g.Enough, FPRA: metric(g.FPR), FNRA: metric(g.FNR)}
				if i < len(b.Groups) {
					row.FPRS, row.FNRS = metric(b.Groups[i].FPR), metric(b.Groups[i].FNR)
				}
				sv.Groups = append(sv.Groups, row)
			}
		}
		v.Shadows = append(v.Shadows, sv)
	}
	rq.render(http.StatusOK, "comparison", v)
}
