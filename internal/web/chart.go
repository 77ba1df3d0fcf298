package web

import (
	"fmt"
	"html/template"
	"strings"
	"time"

	"github.com/sunpath/sunpath/internal/casework"
	"github.com/sunpath/sunpath/internal/screening"
)

// chart is one instrument's trend: an SVG drawn on the server with the
// instrument's severity bands shaded behind the line, and the same data as
// a table for screen readers and for reading exact values.
type chart struct {
	ID        string
	Title     string
	SVG       template.HTML
	Rows      []chartRow
	Threshold int // points of reliable change, 0 when the manual gives none
}

type chartRow struct {
	At       time.Time
	Total    string
	Severity string
	Change   string
	Reliable string // improved, deteriorated, none or ""
}

// Chart geometry, in SVG user units; CSS scales the whole drawing, never
// below the width at which its 13-unit labels read as 11 px or more (a
// narrower screen scrolls the chart sideways).
const (
	chartPlotW  = 450.0
	chartH      = 240.0
	chartLeft   = 40.0
	chartTop    = 12.0
	chartBottom = 34.0
	chartFont   = 13.0 // label size, as in app.css
)

// labelWidth estimates how wide a label is drawn at chartFont: a Chinese
// character is one em, other characters about 0.6 em. It errs wide, so a
// band label ("Moderately severe 15–19") is never cut off.
func labelWidth(s string) float64 {
	w := 0.0
	for _, r := range s {
		if r >= 0x2E80 {
			w += chartFont
		} else {
			w += 0.62 * chartFont
		}
	}
	return w
}

// defaultBands returns the band set used for shading: the one for every
// language and population, else the first.
func defaultBands(def *screening.Definition, lang string) []screening.BandSpec {
	var first []screening.BandSpec
	for _, set := range def.Scoring.Bands {
		if first == nil {
			first = set.Bands
		}
		if set.Population == "" && (set.Language == "" || set.Language == lang) {
			return set.Bands
		}
	}
	return first
}

func (s *server) trendChart(rq *request, def *screening.Definition, pts []casework.TrendPoint) chart {
	c := chart{ID: def.ID, Title: textIn(def.Title, rq.lang), Threshold: s.d.Casework.Policy().ReliableChange[def.ID]}
	for _, p := range pts {
		row := chartRow{At: p.CompletedAt, Total: "—", Reliable: p.ReliableChange}
		if p.Total != nil {
			row.Total = fmt.Sprint(*p.Total)
		}
		if p.Severity != nil {
			row.Severity = bandLabel(def, *p.Severity, rq.lang)
		}
		if p.Change != nil {
			row.Change = fmt.Sprintf("%+d", *p.Change)
		}
		c.Rows = append(c.Rows, row)
	}
	title := rq.T("chart.title", "Instrument", c.Title)
	desc := rq.T("chart.desc", "Count", len(pts))
	c.SVG = trendSVG(def, pts, rq.lang, s.loc, "chart-"+def.ID, title, desc)
	return c
}

// trendSVG draws totals over time on the instrument's scale, severity bands
// shaded from the definition, reliable changes marked. Every string in it is
// escaped; styling comes from classes in app.css (the CSP forbids inline
// styles).
func trendSVG(def *screening.Definition, pts []casework.TrendPoint, lang string, loc *time.Location, id, title, desc string) template.HTML {
	lo, hi := float64(def.TotalMin), float64(def.TotalMax)
	if hi <= lo {
		hi = lo + 1
	}
	bands := defaultBands(def, lang)
	right := 40.0
	for _, band := range bands {
		right = max(right, labelWidth(fmt.Sprintf("%s %d–%d", textIn(band.Label, lang), band.Min, band.Max))+14)
	}
	chartW := chartLeft + chartPlotW + right
	plotW, plotH := chartPlotW, chartH-chartTop-chartBottom
	y := func(v float64) float64 { return chartTop + plotH*(1-(v-lo)/(hi-lo)) }
	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg class="trend" viewBox="0 0 %g %g" role="img" aria-labelledby="%s-t %s-d" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, id, id)
	fmt.Fprintf(&b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, id, esc(title), id, esc(desc))

	for i, band := range bands {
		top := float64(band.Max + 1)
		if i == len(bands)-1 || top > hi {
			top = hi
		}
		bottom := float64(band.Min)
		if bottom < lo {
			bottom = lo
		}
		shade := 0
		if len(bands) > 1 {
			shade = i * 4 / (len(bands) - 1)
		}
		fmt.Fprintf(&b, `<rect class="band band-%d" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`,
			shade, chartLeft, y(top), plotW, y(bottom)-y(top))
		fmt.Fprintf(&b, `<text class="band-label" x="%.1f" y="%.1f">%s %d–%d</text>`,
			chartLeft+plotW+6, (y(top)+y(bottom))/2+4, esc(textIn(band.Label, lang)), band.Min, band.Max)
		fmt.Fprintf(&b, `<text class="axis-label" x="%.1f" y="%.1f" text-anchor="end">%d</text>`, chartLeft-6, y(bottom)+4, band.Min)
	}
	if len(bands) == 0 {
		for _, v := range []float64{lo, hi} {
			fmt.Fprintf(&b, `<text class="axis-label" x="%.1f" y="%.1f" text-anchor="end">%g</text>`, chartLeft-6, y(v)+4, v)
		}
	}
	fmt.Fprintf(&b, `<rect class="plot-frame" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, chartLeft, chartTop, plotW, plotH)

	var valid []casework.TrendPoint
	for _, p := range pts {
		if p.Total != nil {
			valid = append(valid, p)
		}
	}
	if len(valid) == 0 {
		b.WriteString(`</svg>`)
		return template.HTML(b.String())
	}
	t0, t1 := valid[0].CompletedAt, valid[len(valid)-1].CompletedAt
	x := func(t time.Time) float64 {
		if !t1.After(t0) {
			return chartLeft + plotW/2
		}
		return chartLeft + 12 + (plotW-24)*float64(t.Sub(t0))/float64(t1.Sub(t0))
	}
	if len(valid) > 1 {
		b.WriteString(`<polyline class="trend-line" points="`)
		for i, p := range valid {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%.1f,%.1f", x(p.CompletedAt), y(float64(*p.Total)))
		}
		b.WriteString(`"/>`)
	}
	// Date labels: every point when few, else the first, the middle and the
	// last, so that they never overlap.
	labelled := map[int]bool{0: true, len(valid) - 1: true, len(valid) / 2: true}
	if len(valid) <= 5 {
		for i := range valid {
			labelled[i] = true
		}
	}
	for i, p := range valid {
		cls := "point"
		if p.ReliableChange == "deteriorated" || p.ReliableChange == "improved" {
			cls += " " + p.ReliableChange
		}
		fmt.Fprintf(&b, `<circle class="%s" cx="%.1f" cy="%.1f" r="5"><title>%s: %d</title></circle>`,
			cls, x(p.CompletedAt), y(float64(*p.Total)), p.CompletedAt.In(loc).Format("2006-01-02"), *p.Total)
		if labelled[i] {
			fmt.Fprintf(&b, `<text class="axis-label" x="%.1f" y="%.1f" text-anchor="middle">%s</text>`,
				x(p.CompletedAt), chartH-chartBottom+18, p.CompletedAt.In(loc).Format("01-02"))
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
