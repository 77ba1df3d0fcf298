package riskmodel

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteReport prints a report for people: the summary metrics, the
// calibration table, the tiers, the unencodable rows and the error rates by
// group.
func WriteReport(w io.Writer, r *Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }
	if r.Model != nil {
		p("model\t%s %s (sha256 %s)\n", r.Model.Name, r.Model.Version, r.Model.SHA256)
	}
	p("source\t%s\n", r.Source)
	p("n\t%d\n", r.N)
	p("unencodable rows\t%d\n", r.Unencodable.Rows)
	for _, f := range r.Unencodable.Fields {
		p("  %s\t%s: %d rows\n", f.Field, f.Detail, f.Rows)
	}
	p("base_rate\t%s\n", num(r.BaseRate))
	p("mean_predicted\t%s\n", num(r.MeanPredicted))
	for _, m := range []struct {
		n  string
		iv Interval
	}{{"auc", r.Intervals.AUC}, {"brier", r.Intervals.Brier}, {"log_loss", r.Intervals.LogLoss}, {"ece", r.Intervals.ECE}} {
		p("%s\t%s\t[%s, %s] %s\n", m.n, num(m.iv.Value), num(m.iv.Lo), num(m.iv.Hi), m.iv.Method)
	}
	p("\ncalibration\tn\tmean predicted\tobserved\n")
	for _, c := range r.Calibration {
		p("%.1f-%.1f\t%d\t%s\t%s\n", c.Lo, c.Hi, c.N, num(Metric(c.MeanPredicted)), num(Metric(c.Observed)))
	}
	p("\ntier\tn\tshare\tmean predicted\tobserved\n")
	for _, t := range r.Tiers {
		p("%s %s\t%d\t%s\t%s\t%s\n", t.Tier, t.Label, t.N, pct(t.Share), pct(t.MeanPredicted), pct(t.Observed))
	}
	for _, g := range r.Groups {
		p("\n%s\tn\tbase rate\tmean predicted\tauc", g.Column)
		if len(g.Values) > 0 {
			for _, b := range g.Values[0].Boundaries {
				p("\t%s (≥%.2f) FPR\tFNR\tPPV", b.Boundary, b.Threshold)
			}
		}
		p("\n")
		for _, v := range g.Values {
			p("%s\t%d\t%s\t%s\t%s", v.Value, v.N, pct(v.BaseRate), pct(v.MeanPredicted), num(v.AUC))
			for _, b := range v.Boundaries {
				p("\t%s\t%s\t%s", pct(b.FPR), pct(b.FNR), pct(b.PPV))
			}
			p("\n")
		}
	}
	for _, ref := range r.References {
		p("\nreference %s (%s)\tn %d\tauc %s\n", ref.Title, ref.Column, ref.N, num(ref.AUC))
		for _, row := range ref.Groups {
			p("  %s\t%d\tFPR %s\tFNR %s\tPPV %s\n", strings.Join([]string{row.Column, row.Value}, "="), row.N,
				pct(row.Rates.FPR), pct(row.Rates.FNR), pct(row.Rates.PPV))
		}
	}
	return tw.Flush()
}
