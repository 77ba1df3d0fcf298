package instrument_test

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sunpath/sunpath/internal/screening"
)

// answersForTotal builds answers whose total is exactly total, filling items
// in order with the highest option that still fits.
func answersForTotal(t *testing.T, d *screening.Definition, total int) screening.Answers {
	t.Helper()
	a := screening.Answers{}
	left := total - d.TotalMin
	for _, it := range d.Items {
		if !it.Scored {
			continue
		}
		lo := it.Options[0].Score
		for _, o := range it.Options {
			lo = min(lo, o.Score)
		}
		best := -1
		for j, o := range it.Options {
			if o.Score-lo <= left && (best < 0 || o.Score > it.Options[best].Score) {
				best = j
			}
		}
		a[it.ID] = screening.Int(it.Options[best].Value)
		left -= it.Options[best].Score - lo
	}
	if left != 0 {
		t.Fatalf("%s: cannot build answers for total %d", d.ID, total)
	}
	return a
}

// TestBandBoundaries checks every band edge against a table written by hand
// from the manuals, independent of the definition files.
func TestBandBoundaries(t *testing.T) {
	cat := loadShipped(t)
	type edge struct {
		total int
		band  string
	}
	tests := []struct {
		id, population string
		edges          []edge
	}{
		{"phq9", "", []edge{{0, "minimal"}, {4, "minimal"}, {5, "mild"}, {9, "mild"}, {10, "moderate"}, {14, "moderate"},
			{15, "moderately_severe"}, {19, "moderately_severe"}, {20, "severe"}, {27, "severe"}}},
		{"gad7", "", []edge{{0, "minimal"}, {4, "minimal"}, {5, "mild"}, {9, "mild"}, {10, "moderate"}, {14, "moderate"},
			{15, "severe"}, {21, "severe"}}},
		{"audit", "", []edge{{0, "low_risk"}, {7, "low_risk"}, {8, "hazardous"}, {15, "hazardous"}, {16, "harmful"},
			{19, "harmful"}, {20, "possible_dependence"}, {40, "possible_dependence"}}},
		{"audit", "women_and_over_65", []edge{{0, "low_risk"}, {6, "low_risk"}, {7, "hazardous"}, {15, "hazardous"},
			{16, "harmful"}, {19, "harmful"}, {20, "possible_dependence"}, {40, "possible_dependence"}}},
		{"k10", "", []edge{{10, "low"}, {15, "low"}, {16, "moderate"}, {21, "moderate"}, {22, "high"}, {29, "high"},
			{30, "very_high"}, {50, "very_high"}}},
	}
	for _, tt := range tests {
		d, _ := cat.Get(tt.id)
		for _, e := range tt.edges {
			res, err := d.Score(answersForTotal(t, d, e.total), screening.ScoreOptions{Population: tt.population})
			if err != nil {
				t.Fatalf("%s total %d: %v", tt.id, e.total, err)
			}
			if *res.Total != e.total || res.Severity != e.band {
				t.Errorf("%s (%s) total %d: got total %d severity %q, want %q", tt.id, tt.population, e.total, *res.Total, res.Severity, e.band)
			}
		}
	}
}

// TestTotalFlagThresholds checks the total-based review flags on both sides
// of each manual's threshold.
func TestTotalFlagThresholds(t *testing.T) {
	cat := loadShipped(t)
	tests := []struct {
		id, flag     string
		below, above int
	}{
		{"phq9", "severe_depression", 19, 20},
		{"gad7", "severe_anxiety", 14, 15},
		{"pcl5", "probable_ptsd", 32, 33},
		{"audit", "possible_dependence", 19, 20},
		{"k10", "very_high_distress", 29, 30},
	}
	for _, tt := range tests {
		d, _ := cat.Get(tt.id)
		for _, total := range []int{tt.below, tt.above} {
			a := answersForTotal(t, d, total)
			if tt.id == "phq9" {
				a = answersForTotalExcept(t, d, total, "phq9_9") // keep item 9 out of it
			}
			res, err := d.Score(a, screening.ScoreOptions{})
			if err != nil {
				t.Fatalf("%s %d: %v", tt.id, total, err)
			}
			has := slices.ContainsFunc(res.Flags, func(f screening.Flag) bool { return f.Code == tt.flag })
			if has != (total == tt.above) {
				t.Errorf("%s total %d: flag %s raised = %v, want %v (flags %v)", tt.id, total, tt.flag, has, total == tt.above, res.Flags)
			}
		}
	}
}

func answersForTotalExcept(t *testing.T, d *screening.Definition, total int, except string) screening.Answers {
	t.Helper()
	a := screening.Answers{except: screening.Int(0)}
	left := total
	for _, it := range d.Items {
		if !it.Scored || it.ID == except {
			continue
		}
		v := min(left, it.Options[len(it.Options)-1].Score)
		a[it.ID] = screening.Int(v)
		left -= v
	}
	if left != 0 {
		t.Fatalf("cannot build total %d", total)
	}
	return a
}

// TestSafetyItemFlags: the critical items raise their flag whatever the
// total, and never when they are at their lowest.
func TestSafetyItemFlags(t *testing.T) {
	cat := loadShipped(t)
	tests := []struct {
		id, item, flag string
		level          screening.Level
		low, high      int
	}{
		{"phq9", "phq9_9", "suicidal_ideation", screening.LevelUrgent, 0, 1},
		{"scl90", "scl90_15", "suicidal_ideation", screening.LevelUrgent, 1, 2},
	}
	for _, tt := range tests {
		d, _ := cat.Get(tt.id)
		for _, v := range []int{tt.low, tt.high} {
			a := answersForTotal(t, d, d.TotalMin)
			a[tt.item] = screening.Int(v)
			res, err := d.Score(a, screening.ScoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(res.Flags, func(f screening.Flag) bool { return f.Code == tt.flag })
			if (i >= 0) != (v == tt.high) {
				t.Fatalf("%s %s = %d: flags %v", tt.id, tt.item, v, res.Flags)
			}
			if i >= 0 && (res.Flags[i].Level != tt.level || res.Flags[i].Item != tt.item) {
				t.Errorf("%s: flag %+v, want level %s item %s", tt.id, res.Flags[i], tt.level, tt.item)
			}
		}
	}
}

// randomAnswers draws a valid answer set: a random option per item, up to
// the allowed number of missing items left out, the ASQ's question 5 only
// when it is asked, and AUDIT questions left out when the skip logic skips
// them.
func randomAnswers(r *rand.Rand, d *screening.Definition) screening.Answers {
	a := screening.Answers{}
	for _, it := range d.Items {
		if !it.Scored && r.IntN(2) == 0 {
			continue
		}
		a[it.ID] = screening.Int(it.Options[r.IntN(len(it.Options))].Value)
	}
	switch d.ID {
	case "asq":
		delete(a, "asq_5")
		for _, id := range []string{"asq_1", "asq_2", "asq_3", "asq_4"} {
			if r.IntN(8) == 0 {
				delete(a, id)
			}
		}
		asked := false
		for _, id := range []string{"asq_1", "asq_2", "asq_3", "asq_4"} {
			v, ok := d.ItemScore(id, a[id])
			asked = asked || !ok || v >= 1
		}
		if asked {
			a["asq_5"] = screening.Int(r.IntN(2))
		}
	case "audit":
		if r.IntN(4) == 0 {
			a["audit_1"] = screening.Int(0)
			for i := 2; i <= 8; i++ {
				delete(a, "audit_"+string(rune('0'+i)))
			}
		}
	}
	m := d.Scoring.Missing
	if m.Method == screening.MissingProrate && r.IntN(3) == 0 {
		for range r.IntN(m.MaxMissing + 1) {
			it := d.Items[r.IntN(len(d.Items))]
			if it.Scored && !it.Required {
				delete(a, it.ID)
			}
		}
	}
	return a
}

// TestPropertyRandomAnswers scores many random valid answer sets for every
// instrument (deterministic seed) and checks the invariants the manuals
// imply: every valid set scores; the total is within bounds and, when
// nothing is missing, equals the sum of item scores; the severity is the
// band that holds the total; subscales are within their items' bounds;
// scoring is deterministic and the JSON form round-trips.
func TestPropertyRandomAnswers(t *testing.T) {
	cat := loadShipped(t)
	r := rand.New(rand.NewPCG(2026, 3))
	for _, d := range cat.List() {
		for n := range 3000 {
			a := randomAnswers(r, d)
			res, err := d.Score(a, screening.ScoreOptions{})
			if err != nil {
				t.Fatalf("%s case %d: valid answers rejected: %v", d.ID, n, err)
			}
			again, err := d.Score(a, screening.ScoreOptions{})
			if err != nil || !cmp.Equal(res, again) {
				t.Fatalf("%s case %d: scoring is not deterministic", d.ID, n)
			}
			if d.HasTotal() != (res.Total != nil) {
				t.Fatalf("%s: total presence %v", d.ID, res.Total)
			}
			if res.Total != nil {
				total := *res.Total
				if total < d.TotalMin || total > d.TotalMax {
					t.Fatalf("%s case %d: total %d outside [%d, %d]", d.ID, n, total, d.TotalMin, d.TotalMax)
				}
				if !res.Prorated {
					sum := 0
					for _, it := range d.Items {
						if s, ok := d.ItemScore(it.ID, a[it.ID]); ok && it.Scored {
							sum += s
						}
					}
					if sum != total {
						t.Fatalf("%s case %d: total %d, item scores sum to %d", d.ID, n, total, sum)
					}
				}
				if len(d.Scoring.Bands) > 0 {
					want := ""
					for _, b := range d.Scoring.Bands[0].Bands {
						if total >= b.Min && total <= b.Max {
							want = b.Code
						}
					}
					if res.Severity != want {
						t.Fatalf("%s case %d: total %d severity %q, want %q", d.ID, n, total, res.Severity, want)
					}
				}
			}
			for _, s := range d.Scoring.Subscales {
				v, ok := res.Subscales[s.Code]
				if !ok {
					t.Fatalf("%s: subscale %s missing", d.ID, s.Code)
				}
				lo, hi := 0.0, float64(len(s.Items))
				if s.Method != screening.MethodCount {
					lo, hi = 0, 0
					for _, id := range s.Items {
						it, _ := d.Item(id)
						mn, mx := it.Options[0].Score, it.Options[0].Score
						for _, o := range it.Options {
							mn, mx = min(mn, o.Score), max(mx, o.Score)
						}
						lo, hi = lo+float64(mn), hi+float64(mx)
					}
					if s.Method == screening.MethodMean {
						lo, hi = lo/float64(len(s.Items)), hi/float64(len(s.Items))
					}
				}
				if v < lo || v > hi {
					t.Fatalf("%s: subscale %s = %v outside [%v, %v]", d.ID, s.Code, v, lo, hi)
				}
			}
			for _, f := range res.Flags {
				if !f.Level.Valid() {
					t.Fatalf("%s: flag %+v has an invalid level", d.ID, f)
				}
			}
			var back screening.Result
			if err := json.Unmarshal(res.AppendJSON(nil), &back); err != nil {
				t.Fatalf("%s: result JSON does not decode: %v", d.ID, err)
			}
			if diff := cmp.Diff(res, back, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("%s: JSON round trip (-want +got):\n%s", d.ID, diff)
			}
		}
	}
}

// TestScoreJSONMatchesScore: the fast decoder gives the same result as
// decoding with encoding/json and calling Score.
func TestScoreJSONMatchesScore(t *testing.T) {
	cat := loadShipped(t)
	r := rand.New(rand.NewPCG(7, 11))
	for _, d := range cat.List() {
		for range 500 {
			a := randomAnswers(r, d)
			body, err := json.Marshal(map[string]any{"answers": a})
			if err != nil {
				t.Fatal(err)
			}
			fast, err1 := d.ScoreJSON(body, screening.ScoreOptions{})
			slow, err2 := d.Score(a, screening.ScoreOptions{})
			if (err1 == nil) != (err2 == nil) || !cmp.Equal(fast, slow) {
				t.Fatalf("%s: ScoreJSON = %v, %v; Score = %v, %v", d.ID, fast, err1, slow, err2)
			}
		}
	}
}
