package casework

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/problem"
	"github.com/sunpath/sunpath/internal/riskmodel"
)

// OutcomeQuery labels recommendations by outcomes: positive when one of
// Kinds happened within Window after the recommendation. Only those whose
// window has passed by Now are labelled.
type OutcomeQuery struct {
	Kinds  []string
	Window time.Duration
	Now    time.Time
}

// ShadowPair is one recommendation of the active version and one shadow
// version's score of the same inputs.
type ShadowPair struct {
	VersionID   string
	Active      float64
	ActiveTier  Tier
	Shadow      float64
	ShadowTier  Tier
	Sex         string
	Labelled    bool // the window has passed
	Positive    bool
	Recommended time.Time
}

// Minimums below which the comparison says "not enough outcomes yet"
// instead of printing noise.
const (
	MinComparisonOutcomes = 50 // labelled pairs, with MinComparisonClass of each class
	MinComparisonClass    = 5
	MinComparisonGroup    = 20 // people in a group for its error rates
)

// Comparison is the report of a model's shadow versions against its active
// version, on the recommendations both scored.
type Comparison struct {
	Name        string             `json:"name"`
	Active      ModelRef           `json:"active"`
	Outcomes    []string           `json:"outcomes"`
	WithinDays  int                `json:"within_days"`
	MinOutcomes int                `json:"min_outcomes"`
	Shadows     []ShadowComparison `json:"shadows"`
}

// ShadowComparison is one shadow version against the active one.
type ShadowComparison struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	// N recommendations scored by both.
	N int `json:"n"`
	// Agreement is the share with the same tier; Matrix[i][j] counts the
	// recommendations with active tier Tiers[i] and shadow tier Tiers[j].
	Agreement         riskmodel.Metric `json:"agreement"`
	Tiers             []Tier           `json:"tiers"`
	Matrix            [][]int          `json:"matrix"`
	MeanActive        riskmodel.Metric `json:"mean_probability_active"`
	MeanShadow        riskmodel.Metric `json:"mean_probability_shadow"`
	OutcomeComparison `json:"on_outcomes"`
}

// OutcomeComparison compares both versions on the recommendations whose
// outcome window has passed.
type OutcomeComparison struct {
	Labelled  int `json:"labelled"`
	Positives int `json:"positives"`
	// Pending recommendations' windows have not passed yet.
	Pending int `json:"pending"`
	// Enough is false below the minimums; Message then says so and the
	// metrics are left out.
	Enough  bool            `json:"enough"`
	Message string          `json:"message,omitempty"`
	Active  *OutcomeMetrics `json:"active,omitempty"`
	Shadow  *OutcomeMetrics `json:"shadow,omitempty"`
}

// OutcomeMetrics are one version's metrics on the labelled pairs.
type OutcomeMetrics struct {
	AUC         riskmodel.Interval         `json:"auc"`
	Brier       riskmodel.Metric           `json:"brier"`
	Calibration []riskmodel.CalibrationBin `json:"calibration"`
	// StrictThreshold is the probability from which the version suggests
	// strict supervision; the error rates are at it.
	StrictThreshold riskmodel.Metric `json:"strict_threshold"`
	FPR             riskmodel.Metric `json:"fpr"`
	FNR             riskmodel.Metric `json:"fnr"`
	Groups          []GroupErrors    `json:"groups"`
}

// GroupErrors are the error rates at the strict threshold in one group of
// a report attribute (the model spec's groups, when recorded).
type GroupErrors struct {
	Column  string           `json:"column"`
	Value   string           `json:"value"`
	N       int              `json:"n"`
	Enough  bool             `json:"enough"`
	FPR     riskmodel.Metric `json:"fpr"`
	FNR     riskmodel.Metric `json:"fnr"`
	Message string           `json:"message,omitempty"`
}

// ComparisonQuery chooses the label of the outcome metrics.
type ComparisonQuery struct {
	Kinds      []string
	WithinDays int
}

func (q ComparisonQuery) check() error {
	inv := &problem.Invalid{}
	if len(q.Kinds) == 0 {
		inv.Add("outcomes", "required: outcome kinds, comma-separated, from "+strings.Join(OutcomeKinds, ", "))
	}
	for _, k := range q.Kinds {
		if !oneOf(k, OutcomeKinds) {
			inv.Add("outcomes", fmt.Sprintf("%q is not one of %s", k, strings.Join(OutcomeKinds, ", ")))
		}
	}
	if q.WithinDays < 1 || q.WithinDays > 3650 {
		inv.Add("within_days", "a follow-up window of 1 to 3650 days")
	}
	return inv.Err()
}

// ModelComparison reports each shadow version of name against the active
// version: tier agreement and mean probabilities on every recommendation
// both scored, and on those whose outcome window has passed AUC (DeLong
// interval), Brier score, calibration and error rates at the strict
// threshold by group. Admins and supervisors; audited.
func (s *Service) ModelComparison(ctx context.Context, c Call, name string, q ComparisonQuery) (Comparison, error) {
	if c.Principal.Role != auth.RoleAdmin && c.Principal.Role != auth.RoleSupervisor {
		return Comparison{}, fmt.Errorf("only admins and supervisors read model comparisons: %w", ErrForbidden)
	}
	if err := q.check(); err != nil {
		return Comparison{}, err
	}
	snap := s.registry.snapshot()
	active, ok := snap.active[name]
	if !ok {
		return Comparison{}, fmt.Errorf("model %s: %w", name, ErrNotFound)
	}
	ref := active.Ref()
	out := Comparison{Name: name, Active: ModelRef{Name: ref.Name, Version: ref.Version, SHA256: ref.SHA256}, Outcomes: q.Kinds,
		WithinDays: q.WithinDays, MinOutcomes: MinComparisonOutcomes, Shadows: []ShadowComparison{}}
	shadows := snap.shadows[name]
	ids := make([]string, len(shadows))
	for i, sm := range shadows {
		ids[i] = sm.id
	}
	oq := OutcomeQuery{Kinds: q.Kinds, Window: time.Duration(q.WithinDays) * 24 * time.Hour, Now: s.now().UTC()}
	return read(ctx, s, c, "model.comparison", "", func(tx Tx) (Comparison, error) {
		tx.Resource("model", name, "")
		pairs := []ShadowPair{}
		if len(ids) > 0 {
			var err error
			if pairs, err = tx.ShadowPairs(ctx, ids, out.Active, oq); err != nil {
				return out, err
			}
		}
		for _, sm := range shadows {
			var mine []ShadowPair
			for _, p := range pairs {
				if p.VersionID == sm.id {
					mine = append(mine, p)
				}
			}
			out.Shadows = append(out.Shadows, compare(active, sm.m, mine))
		}
		tx.Detail(map[string]any{"model": name, "shadows": len(shadows), "outcomes": q.Kinds, "within_days": q.WithinDays})
		return out, nil
	})
}

var tierOrder = Tiers

func compare(active, shadow *riskmodel.Model, pairs []ShadowPair) ShadowComparison {
	ref := shadow.Ref()
	sc := ShadowComparison{Version: ref.Version, SHA256: ref.SHA256, N: len(pairs), Tiers: tierOrder, Matrix: make([][]int, len(tierOrder))}
	for i := range sc.Matrix {
		sc.Matrix[i] = make([]int, len(tierOrder))
	}
	var agree int
	var sumA, sumS float64
	var pa, ps, y []float64
	var sex []string
	for _, p := range pairs {
		i, j := slices.Index(tierOrder, p.ActiveTier), slices.Index(tierOrder, p.ShadowTier)
		if i >= 0 && j >= 0 {
			sc.Matrix[i][j]++
		}
		if p.ActiveTier == p.ShadowTier {
			agree++
		}
		sumA += p.Active
		sumS += p.Shadow
		if !p.Labelled {
			sc.Pending++
			continue
		}
		pa, ps, sex = append(pa, p.Active), append(ps, p.Shadow), append(sex, p.Sex)
		if p.Positive {
			y = append(y, 1)
			sc.Positives++
		} else {
			y = append(y, 0)
		}
	}
	n := float64(len(pairs))
	sc.Agreement, sc.MeanActive, sc.MeanShadow = riskmodel.Metric(float64(agree)/n), riskmodel.Metric(sumA/n), riskmodel.Metric(sumS/n)
	sc.Labelled = len(y)
	if sc.Labelled < MinComparisonOutcomes || sc.Positives < MinComparisonClass || sc.Labelled-sc.Positives < MinComparisonClass {
		sc.Message = fmt.Sprintf("not enough outcomes yet: %d recommendations with a known outcome (%d positive); at least %d, with %d of each outcome, are needed",
			sc.Labelled, sc.Positives, MinComparisonOutcomes, MinComparisonClass)
		return sc
	}
	sc.Enough = true
	groups := reportGroups(active, shadow)
	sc.Active = outcomeMetrics(active, pa, y, groups, sex)
	sc.Shadow = outcomeMetrics(shadow, ps, y, groups, sex)
	return sc
}

// reportGroups are the report groups of either spec that the comparison
// can tell: sex, recorded with every person. Other attributes are not
// recorded outside the case system.
func reportGroups(ms ...*riskmodel.Model) []string {
	var out []string
	for _, m := range ms {
		if m.Spec() == nil {
			continue
		}
		for _, g := range m.Spec().Groups {
			if g == "sex" && !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}

func outcomeMetrics(m *riskmodel.Model, p, y []float64, groups []string, sex []string) *OutcomeMetrics {
	om := &OutcomeMetrics{AUC: riskmodel.DeLongAUC(p, y), Brier: riskmodel.Metric(riskmodel.Brier(p, y)),
		Calibration: riskmodel.CalibrationTable(p, y, 10), Groups: []GroupErrors{}}
	t, ok := strictThreshold(m)
	if !ok {
		om.StrictThreshold, om.FPR, om.FNR = nan, nan, nan
		return om
	}
	om.StrictThreshold = riskmodel.Metric(t)
	r := riskmodel.ErrorRates(p, y, t)
	om.FPR, om.FNR = riskmodel.Metric(r.FPR), riskmodel.Metric(r.FNR)
	for _, g := range groups {
		byValue := map[string][]int{}
		for i, v := range sex {
			if v == "" {
				v = "not recorded"
			}
			byValue[v] = append(byValue[v], i)
		}
		for _, v := range slices.Sorted(maps.Keys(byValue)) {
			idx := byValue[v]
			ge := GroupErrors{Column: g, Value: v, N: len(idx), FPR: nan, FNR: nan}
			if len(idx) < MinComparisonGroup {
				ge.Message = fmt.Sprintf("not enough outcomes yet: %d people, at least %d are needed", len(idx), MinComparisonGroup)
			} else {
				gp, gy := make([]float64, len(idx)), make([]float64, len(idx))
				for k, i := range idx {
					gp[k], gy[k] = p[i], y[i]
				}
				r := riskmodel.ErrorRates(gp, gy, t)
				ge.Enough, ge.FPR, ge.FNR = true, riskmodel.Metric(r.FPR), riskmodel.Metric(r.FNR)
			}
			om.Groups = append(om.Groups, ge)
		}
	}
	return om
}

// nan marks a metric that is not defined (written as JSON null).
var nan = riskmodel.Metric(math.NaN())

// strictThreshold is the probability from which m's tier policy suggests
// strict supervision.
func strictThreshold(m *riskmodel.Model) (float64, bool) {
	bands := m.File().Tiers.Bands
	for i, b := range bands {
		if Tier(b.Tier) == Strict && i > 0 && bands[i-1].Below != nil {
			return *bands[i-1].Below, true
		}
	}
	return 0, false
}

// TrainingOptions select a training file: the recommendations of Model
// (the first per person, so that no one appears twice), each labelled by
// whether an outcome of Kinds happened within Window after it. Only
// recommendations whose window has passed by Now are exported: the others'
// outcome is not known yet.
type TrainingOptions struct {
	Model  string
	Kinds  []string
	Window time.Duration
	Now    time.Time
}

// TrainingRow is one person's row: the model inputs as they were when the
// recommendation was made, the label, and the recorded sex for the error
// rates by group (never an input).
type TrainingRow struct {
	ID       string // the recommendation's id, not the person's
	Positive bool
	Sex      string
	Inputs   map[string]any
}

// TrainingSource exports training rows; postgres.Cases implements it.
type TrainingSource interface {
	ExportTraining(ctx context.Context, opt TrainingOptions, fn func(TrainingRow) error) (pending int, err error)
}

// WriteTrainingCSV writes rows as CSV: id, label, sex, then every input in
// name order; an unrecorded input is empty.
func WriteTrainingCSV(w io.Writer, rows []TrainingRow) (int, error) {
	var cols []string
	for _, r := range rows {
		for k := range r.Inputs {
			if !slices.Contains(cols, k) {
				cols = append(cols, k)
			}
		}
	}
	slices.Sort(cols)
	cw := csv.NewWriter(w)
	if err := cw.Write(append([]string{"id", "label", "sex"}, cols...)); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range rows {
		label := "0"
		if r.Positive {
			label = "1"
		}
		rec := []string{r.ID, label, r.Sex}
		for _, c := range cols {
			if v := r.Inputs[c]; v == nil {
				rec = append(rec, "")
			} else {
				rec = append(rec, fmt.Sprint(v))
			}
		}
		if err := cw.Write(rec); err != nil {
			return n, err
		}
		n++
	}
	cw.Flush()
	return n, cw.Error()
}

// TrainingFile is an exported training file.
type TrainingFile struct {
	CSV     []byte
	Rows    int
	Pending int // people left out: their window has not passed
}

// ExportTraining writes the labelled training file of a model's
// recommendations (as `sunpath model export-training` does), for an
// admin; audited with the row counts.
func (s *Service) ExportTraining(ctx context.Context, c Call, model string, q ComparisonQuery) (TrainingFile, error) {
	if c.Principal.Role != auth.RoleAdmin {
		return TrainingFile{}, ErrNotAdmin
	}
	if err := q.check(); err != nil {
		return TrainingFile{}, err
	}
	if !modelName.MatchString(model) {
		return TrainingFile{}, invalid("model", "a model name")
	}
	if s.training == nil {
		return TrainingFile{}, fmt.Errorf("training export: %w", ErrUnavailable)
	}
	var rows []TrainingRow
	pending, err := s.training.ExportTraining(ctx, TrainingOptions{Model: model, Kinds: q.Kinds,
		Window: time.Duration(q.WithinDays) * 24 * time.Hour, Now: s.now().UTC()}, func(r TrainingRow) error {
		rows = append(rows, r)
		return nil
	})
	var f TrainingFile
	var b strings.Builder
	if err == nil {
		f.Rows, err = WriteTrainingCSV(&b, rows)
	}
	f.CSV, f.Pending = []byte(b.String()), pending
	ev := audit.Event{Actor: c.Principal.Actor(), Role: string(c.Principal.Role), Action: "model.export_training", ResourceType: "model",
		ResourceID: model, Outcome: audit.Success, RequestID: c.RequestID,
		Detail: fmt.Sprintf(`{"rows":%d,"pending":%d,"within_days":%d,"outcomes":%q}`, f.Rows, pending, q.WithinDays, strings.Join(q.Kinds, ","))}
	if err != nil {
		ev.Outcome = audit.Rejected
	}
	if aerr := s.audit.Record(context.WithoutCancel(ctx), ev); aerr != nil && err == nil {
		return TrainingFile{}, aerr
	}
	return f, err
}
