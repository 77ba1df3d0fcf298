package riskmodel

import (
	"math"
	"sort"
)

// EvalOptions tunes Evaluate.
type EvalOptions struct {
	// Bootstrap is the number of resamples for the Brier, log-loss and ECE
	// intervals (0: the model's training setting).
	Bootstrap int
	Seed      uint64
}

// Evaluate scores every row of t with m and reports the metrics. Rows the
// model cannot encode, or whose label is neither value of the spec, are
// counted in Report.Unencodable by field and reason, never silently dropped.
// The table must have the label, every feature and every group column.
func Evaluate(m *Model, t *Table, opt EvalOptions) (*Report, error) {
	s := m.spec
	need := []string{s.Data.Label}
	for _, f := range m.file.Encoder.Features {
		need = append(need, f.Name)
	}
	need = append(need, s.Groups...)
	if err := t.Require(need...); err != nil {
		return nil, err
	}
	if opt.Bootstrap == 0 {
		opt.Bootstrap = s.Training.Bootstrap
	}
	if opt.Seed == 0 {
		opt.Seed = s.Training.Seed
	}
	labels := t.Labels(s.Data)
	in := ReportInput{
		Source: "evaluation on " + t.SHA256[:12], Groups: map[string][]string{}, GroupOrder: s.Groups,
		Tiers: m.file.Tiers, Bootstrap: opt.Bootstrap, Seed: opt.Seed,
		RefScores: map[string][]float64{}, RefY: map[string][]float64{}, RefGroups: map[string]map[string][]string{},
	}
	for _, ref := range s.References {
		if !t.Has(ref.Column) {
			continue
		}
		in.References = append(in.References, ref)
		in.RefGroups[ref.Column] = map[string][]string{}
	}
	refVals := map[string][]float64{}
	for _, ref := range in.References {
		refVals[ref.Column] = t.Numbers(ref.Column)
	}
	type key struct{ field, detail string }
	fails := map[key]int{}
	sc := &scratch{}
	for r := range t.Rows {
		get := func(c string) string { return t.Get(r, c) }
		pr, ok := m.scoreStrings(get, sc, false)
		if labels[r] < 0 {
			sc.inv.add(s.Data.Label, "label is neither the positive nor the negative value")
			ok = false
		}
		if !ok {
			in.Unencodable.Rows++
			for i := range sc.inv.fields {
				fails[key{sc.inv.fields[i], sc.inv.details[i]}]++
			}
			continue
		}
		in.P = append(in.P, pr.Probability)
		in.Y = append(in.Y, labels[r])
		for _, g := range s.Groups {
			in.Groups[g] = append(in.Groups[g], t.Get(r, g))
		}
		for _, ref := range in.References {
			v := refVals[ref.Column][r]
			if math.IsNaN(v) {
				continue
			}
			in.RefScores[ref.Column] = append(in.RefScores[ref.Column], v)
			in.RefY[ref.Column] = append(in.RefY[ref.Column], labels[r])
			for _, g := range s.Groups {
				in.RefGroups[ref.Column][g] = append(in.RefGroups[ref.Column][g], t.Get(r, g))
			}
		}
	}
	for k, n := range fails {
		in.Unencodable.Fields = append(in.Unencodable.Fields, FieldCount{Field: k.field, Detail: k.detail, Rows: n})
	}
	sort.Slice(in.Unencodable.Fields, func(i, j int) bool {
		a, b := in.Unencodable.Fields[i], in.Unencodable.Fields[j]
		if a.Field != b.Field {
			return a.Field < b.Field
		}
		return a.Detail < b.Detail
	})
	rep := NewReport(in)
	ref := m.ref
	rep.Model = &ref
	return rep, nil
}
