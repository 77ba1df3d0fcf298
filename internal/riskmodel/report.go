package riskmodel

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
)

// Metric is a float64 that is written as JSON null when undefined (NaN),
// such as a false-negative rate in a group without positives.
type Metric float64

// MarshalJSON writes NaN and infinities as null.
func (m Metric) MarshalJSON() ([]byte, error) {
	f := float64(m)
	if !finite(f) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// UnmarshalJSON reads null as NaN.
func (m *Metric) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*m = Metric(math.NaN())
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*m = Metric(f)
	return nil
}

// Report holds the metrics of a model on labelled data: overall
// discrimination and calibration with 95% intervals, the tier populations,
// error rates by group at every tier boundary and the reference scores.
type Report struct {
	Model  *ModelRef `json:"model,omitempty"`
	Source string    `json:"source"`
	N      int       `json:"n"`
	// Unencodable lists the rows the model could not score; they are not in
	// the metrics.
	Unencodable   Unencodable `json:"unencodable"`
	BaseRate      Metric      `json:"base_rate"`
	MeanPredicted Metric      `json:"mean_predicted"`
	AUC           Metric      `json:"auc"`
	Brier         Metric      `json:"brier"`
	LogLoss       Metric      `json:"log_loss"`
	// ECE is the expected calibration error over 10 equal-width bins.
	ECE Metric `json:"ece"`
	// Intervals holds the 95% intervals of the four metrics above.
	Intervals   Intervals         `json:"intervals"`
	Calibration []CalibrationBin  `json:"calibration"`
	Tiers       []TierSummary     `json:"tiers"`
	Groups      []GroupReport     `json:"groups"`
	References  []ReferenceReport `json:"references,omitempty"`
}

// Intervals are 95% confidence intervals of a report's metrics.
type Intervals struct {
	AUC     Interval `json:"auc"`
	Brier   Interval `json:"brier"`
	LogLoss Interval `json:"log_loss"`
	ECE     Interval `json:"ece"`
}

// Unencodable counts rows that could not be scored, by field and reason.
type Unencodable struct {
	Rows   int          `json:"rows"`
	Fields []FieldCount `json:"fields,omitempty"`
}

// FieldCount is how many rows failed on a field for a reason.
type FieldCount struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
	Rows   int    `json:"rows"`
}

// TierSummary describes the people placed in one tier.
type TierSummary struct {
	Tier          string `json:"tier"`
	Label         string `json:"label"`
	N             int    `json:"n"`
	Share         Metric `json:"share"`
	MeanPredicted Metric `json:"mean_predicted"`
	Observed      Metric `json:"observed"`
}

// GroupReport gives the metrics of each value of one group column.
type GroupReport struct {
	Column string       `json:"column"`
	Values []GroupValue `json:"values"`
}

// GroupValue is the metrics of one group: size, base rate, mean predicted
// probability, AUC and error rates at each tier boundary.
type GroupValue struct {
	Value         string       `json:"value"`
	N             int          `json:"n"`
	BaseRate      Metric       `json:"base_rate"`
	MeanPredicted Metric       `json:"mean_predicted"`
	AUC           Metric       `json:"auc"`
	Boundaries    []GroupRates `json:"boundaries"`
}

// GroupRates are Rates with Metric fields for JSON.
type GroupRates struct {
	Threshold float64 `json:"threshold"`
	// Boundary names the tier boundary, e.g. "ordinary+" for p ≥ the
	// lower bound of ordinary.
	Boundary string `json:"boundary"`
	Flagged  Metric `json:"flagged"`
	FPR      Metric `json:"fpr"`
	FNR      Metric `json:"fnr"`
	PPV      Metric `json:"ppv"`
}

// ReferenceReport compares an existing score column with the outcome.
type ReferenceReport struct {
	Column string         `json:"column"`
	Title  string         `json:"title"`
	N      int            `json:"n"`
	AUC    Metric         `json:"auc"`
	HighAt float64        `json:"high_at"`
	Groups []ReferenceRow `json:"groups"`
}

// ReferenceRow is a reference score's error rates in one group.
type ReferenceRow struct {
	Column string     `json:"column"`
	Value  string     `json:"value"`
	N      int        `json:"n"`
	Rates  GroupRates `json:"rates"`
}

// ReportInput is what NewReport needs: probabilities and 0/1 outcomes of
// scored rows, the group values of those rows and the raw reference scores.
type ReportInput struct {
	Source      string
	P, Y        []float64
	Groups      map[string][]string
	GroupOrder  []string
	References  []ReferenceSpec
	RefScores   map[string][]float64
	RefY        map[string][]float64
	RefGroups   map[string]map[string][]string
	Tiers       TierPolicy
	Bootstrap   int
	Seed        uint64
	Unencodable Unencodable
}

// NewReport computes a Report. Intervals: DeLong for the AUC, percentile
// bootstrap (in.Bootstrap resamples, fixed seed) for Brier, log-loss and ECE.
func NewReport(in ReportInput) *Report {
	p, y := in.P, in.Y
	r := &Report{Source: in.Source, N: len(p), Unencodable: in.Unencodable}
	if len(p) == 0 {
		return r
	}
	r.BaseRate = Metric(mean(y))
	r.MeanPredicted = Metric(mean(p))
	iv := &r.Intervals
	iv.AUC = DeLongAUC(p, y)
	sq := make([]float64, len(p))
	ll := make([]float64, len(p))
	for i := range p {
		sq[i] = (p[i] - y[i]) * (p[i] - y[i])
		ll[i] = LogLoss(p[i:i+1], y[i:i+1])
	}
	iv.Brier = boot(in, "bootstrap", Brier(p, y), func(w []float64) float64 {
		return weightedMean(w, func(i int) float64 { return sq[i] })
	})
	iv.LogLoss = boot(in, "bootstrap", LogLoss(p, y), func(w []float64) float64 {
		return weightedMean(w, func(i int) float64 { return ll[i] })
	})
	iv.ECE = boot(in, "bootstrap", ECE(p, y, 10), func(w []float64) float64 { return weightedECE(p, y, w, 10) })
	r.AUC, r.Brier, r.LogLoss, r.ECE = iv.AUC.Value, iv.Brier.Value, iv.LogLoss.Value, iv.ECE.Value
	r.Calibration = CalibrationTable(p, y, 10)

	for _, b := range in.Tiers.Bands {
		var sel []int
		for i := range p {
			if in.Tiers.Tier(p[i]).Tier == b.Tier {
				sel = append(sel, i)
			}
		}
		ps, ys := pick(p, sel), pick(y, sel)
		r.Tiers = append(r.Tiers, TierSummary{
			Tier: b.Tier, Label: b.Label, N: len(sel),
			Share: Metric(float64(len(sel)) / float64(len(p))), MeanPredicted: Metric(mean(ps)), Observed: Metric(mean(ys)),
		})
	}
	bounds := boundaryNames(in.Tiers)
	for _, col := range in.GroupOrder {
		vals := in.Groups[col]
		gr := GroupReport{Column: col}
		for _, v := range distinct(vals) {
			var sel []int
			for i := range vals {
				if vals[i] == v {
					sel = append(sel, i)
				}
			}
			ps, ys := pick(p, sel), pick(y, sel)
			gv := GroupValue{
				Value: v, N: len(sel), BaseRate: Metric(mean(ys)),
				MeanPredicted: Metric(mean(ps)), AUC: Metric(AUC(ps, ys)),
			}
			for k, t := range in.Tiers.Boundaries() {
				gv.Boundaries = append(gv.Boundaries, groupRates(ErrorRates(ps, ys, t), bounds[k]))
			}
			gr.Values = append(gr.Values, gv)
		}
		r.Groups = append(r.Groups, gr)
	}
	for _, ref := range in.References {
		s, ry := in.RefScores[ref.Column], in.RefY[ref.Column]
		rr := ReferenceReport{Column: ref.Column, Title: ref.Title, N: len(s), AUC: Metric(AUC(s, ry)), HighAt: ref.HighAt}
		for _, col := range in.GroupOrder {
			vals := in.RefGroups[ref.Column][col]
			for _, v := range distinct(vals) {
				var sel []int
				for i := range vals {
					if vals[i] == v {
						sel = append(sel, i)
					}
				}
				gr := groupRates(ErrorRates(pick(s, sel), pick(ry, sel), ref.HighAt), "≥ "+strconv.FormatFloat(ref.HighAt, 'g', -1, 64))
				rr.Groups = append(rr.Groups, ReferenceRow{Column: col, Value: v, N: len(sel), Rates: gr})
			}
		}
		r.References = append(r.References, rr)
	}
	return r
}

func boot(in ReportInput, method string, v float64, stat func(w []float64) float64) Interval {
	if in.Bootstrap <= 0 {
		nan := Metric(math.NaN())
		return Interval{Value: Metric(v), Lo: nan, Hi: nan, Method: "none"}
	}
	lo, hi := bootstrapCI(len(in.P), in.Bootstrap, in.Seed, stat)
	return Interval{Value: Metric(v), Lo: Metric(lo), Hi: Metric(hi), Method: method}
}

func boundaryNames(t TierPolicy) []string {
	var out []string
	for i := 1; i < len(t.Bands); i++ {
		out = append(out, t.Bands[i].Tier+"+")
	}
	return out
}

func groupRates(r Rates, name string) GroupRates {
	return GroupRates{
		Threshold: r.Threshold, Boundary: name, Flagged: Metric(r.Flagged),
		FPR: Metric(r.FPR), FNR: Metric(r.FNR), PPV: Metric(r.PPV),
	}
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func pick(v []float64, idx []int) []float64 {
	out := make([]float64, len(idx))
	for k, i := range idx {
		out[k] = v[i]
	}
	return out
}

func distinct(v []string) []string {
	out := slices.Clone(v)
	slices.Sort(out)
	return slices.Compact(out)
}
