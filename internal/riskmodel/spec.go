// Package riskmodel is the pure-Go side of Sunpath's risk models: the model
// specification (spec.yaml), the feature encoder, the versioned model file,
// loading with sha256 verification, scoring with additive explanations,
// metrics, evaluation, drift (PSI) and the generated model card.
//
// Nothing here imports golearn or cgo: training lives in internal/risk and
// writes the files that this package reads.
package riskmodel

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// ErrInvalid reports a specification, model file or input that cannot be used.
var ErrInvalid = errors.New("invalid")

// Feature types of a Spec.
const (
	Categorical = "categorical"
	Numeric     = "numeric"
)

// Missing-value policies of a feature.
const (
	// MissingReject makes an empty or absent value unencodable.
	MissingReject = "reject"
	// MissingIndicator encodes a missing value as its own column (a missing
	// indicator for numeric features, a "missing" level for categorical ones).
	MissingIndicator = "indicator"
)

// Unseen-value policies of a categorical feature.
const (
	// UnseenReject makes a value outside Levels unencodable.
	UnseenReject = "reject"
	// UnseenUnknown encodes a value outside Levels as the unknown level.
	UnseenUnknown = "unknown"
)

// Calibration methods.
const (
	Platt    = "platt"
	Isotonic = "isotonic"
)

// Spec is a model specification: what the model reads, how each input is
// encoded, what it must never read, how it is trained and how its calibrated
// probability maps to a supervision tier. It is data, versioned with the model.
type Spec struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Description string `json:"description"`
	// IntendedUse and Limitations are copied into the model card.
	IntendedUse string   `json:"intended_use"`
	Limitations []string `json:"limitations,omitempty"`

	Data DataSpec `json:"data"`
	// Protected columns are never features; they are read only for reports.
	Protected []string `json:"protected"`
	// Groups are the columns whose values get error rates in every report.
	Groups []string `json:"groups"`
	// References are existing scores in the data (such as an agency's own
	// risk score) reported next to the model. A reference may also be a
	// feature when it is known before the decision (NIJ's first agency
	// score); an outcome-era score (COMPAS deciles) must not be.
	References []ReferenceSpec `json:"references,omitempty"`

	// Previous records the cross-validated figures of earlier versions, as
	// their manifests stated them, for the model card's before/after table.
	Previous []PreviousVersion `json:"previous,omitempty"`

	Features     []FeatureSpec     `json:"features"`
	Interactions []InteractionSpec `json:"interactions,omitempty"`
	Training     TrainingSpec      `json:"training"`
	Tiers        TierPolicy        `json:"tiers"`
}

// DataSpec names the label and identifier columns of the training data.
type DataSpec struct {
	Label string `json:"label"`
	// Positive is the label value of the outcome being predicted.
	Positive string `json:"positive"`
	// Negative is the other label value; any other value is an error.
	Negative string `json:"negative"`
	ID       string `json:"id"`
	// Source describes where the data comes from, for the model card.
	Source string `json:"source"`
}

// ReferenceSpec is an existing score column compared with the model.
type ReferenceSpec struct {
	Column string `json:"column"`
	Title  string `json:"title"`
	// HighAt is the score at or above which the reference calls a person
	// high risk, for its error rates (for COMPAS deciles: 5).
	HighAt float64 `json:"high_at"`
	// Published error rates by group, quoted in the model card.
	Published []PublishedRate `json:"published,omitempty"`
}

// PublishedRate is an error rate published for a reference score.
type PublishedRate struct {
	Group  string  `json:"group"`
	Value  string  `json:"value"`
	FPR    float64 `json:"fpr"`
	FNR    float64 `json:"fnr"`
	Source string  `json:"source"`
}

// PreviousVersion is an earlier version's cross-validated result: AUC and
// Brier score as [value, lo, hi] of their 95% intervals, and the FPR at the
// highest tier boundary by value of the first group column.
type PreviousVersion struct {
	Version   string             `json:"version"`
	Model     string             `json:"model"`
	AUC       []float64          `json:"auc"`
	Brier     []float64          `json:"brier"`
	StrictFPR map[string]float64 `json:"strict_fpr,omitempty"`
}

// FeatureSpec declares one input column and its encoding.
type FeatureSpec struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Description says what the field means, for the case workflow.
	Description string `json:"description,omitempty"`
	// Stage is "intake" or "review": when the value becomes known.
	Stage string `json:"stage,omitempty"`

	// Levels is the vocabulary of a categorical feature.
	Levels []string `json:"levels,omitempty"`
	// Unseen says what a value outside Levels becomes (default reject).
	Unseen string `json:"unseen,omitempty"`
	// MinCount pools levels seen fewer times in training into the unknown level.
	MinCount int `json:"min_count,omitempty"`
	// Ordinal adds the standardised level index as a column, for levels
	// listed in their natural order (counts, age bands): a linear trend
	// shared by neighbouring levels on top of their one-hot columns.
	Ordinal bool `json:"ordinal,omitempty"`

	// Range is the valid domain [min, max] of a numeric feature; a value
	// outside it is unencodable.
	Range []float64 `json:"range,omitempty"`
	// Cap clips a numeric value to [lo, hi] before encoding.
	Cap []float64 `json:"cap,omitempty"`
	// Bins one-hot encodes a numeric feature by intervals.
	Bins *BinSpec `json:"bins,omitempty"`
	// Linear adds the standardised (capped) value as a column.
	Linear bool `json:"linear,omitempty"`

	// Missing is the missing-value policy (default reject).
	Missing string `json:"missing,omitempty"`

	// Labels name the field for people, by language (zh-CN, en).
	Labels map[string]string `json:"labels,omitempty"`
	// Source says where the value comes from (e.g. "case_record",
	// "supervision_record"); "screening" is refused: mental-health
	// screening results are never inputs of a supervision-level model.
	Source string `json:"source,omitempty"`
}

// screeningTerms are the instruments and words that mark a mental-health
// screening result; a feature named with one is refused as an input.
var screeningTerms = []string{"phq", "gad7", "gad_7", "pcl5", "pcl_5", "k10", "kessler", "asq", "scl90", "scl_90", "audit_score",
	"screening", "depress", "anxiety", "ptsd", "suicid", "psycholog", "mental_health_score"}

// screeningInput reports why f looks like a mental-health screening result,
// or "" when it does not.
func (f FeatureSpec) screeningInput() string {
	if strings.EqualFold(f.Source, "screening") {
		return "its source is screening"
	}
	name := strings.ToLower(f.Name)
	for _, t := range screeningTerms {
		if strings.Contains(name, t) {
			return "its name refers to a screening result (" + t + ")"
		}
	}
	return ""
}

// BinSpec gives the interval edges of a numeric feature: explicit upper
// edges, or a number of training quantiles. A value v falls in the first bin
// whose upper edge e satisfies v <= e, the last bin being unbounded.
type BinSpec struct {
	Edges     []float64 `json:"edges,omitempty"`
	Quantiles int       `json:"quantiles,omitempty"`
}

// InteractionSpec crosses the buckets (levels or bins) of two features.
type InteractionSpec struct {
	Features []string `json:"features"`
	// MinCount drops cells seen fewer times in training.
	MinCount int `json:"min_count,omitempty"`
}

// TrainingSpec holds the cross-validation and calibration settings.
type TrainingSpec struct {
	Folds int    `json:"folds"`
	Seed  uint64 `json:"seed"`
	// C is the grid of inverse L2 penalties tried by cross-validation.
	C []float64 `json:"c"`
	// SelectBy is the cross-validated metric that picks C: auc or log_loss.
	SelectBy    string `json:"select_by"`
	Calibration string `json:"calibration"`
	// Bootstrap is the number of bootstrap resamples for confidence intervals.
	Bootstrap int `json:"bootstrap"`
	// Boost adds gradient-boosted regression trees over the feature buckets
	// on top of the logistic regression (nil: a linear model).
	Boost *BoostSpec `json:"boost,omitempty"`
}

// BoostSpec configures gradient boosting on the logistic regression's
// log-odds. The number of trees is chosen by cross-validation among
// multiples of Step up to Trees, by the same metric as C.
type BoostSpec struct {
	Trees int `json:"trees"`
	Step  int `json:"step,omitempty"`
	// Depth bounds the number of splits on a path.
	Depth int     `json:"depth"`
	Rate  float64 `json:"rate"`
	// Lambda is the L2 penalty of the leaf values (default 1).
	Lambda float64 `json:"lambda,omitempty"`
	// Subsample is the share of rows each tree is grown on (default 1).
	Subsample float64 `json:"subsample,omitempty"`
}

// TierPolicy maps calibrated probability to a supervision tier.
type TierPolicy struct {
	// Version identifies the policy, independently of the model version.
	Version   string `json:"version"`
	Rationale string `json:"rationale"`
	Bands     []Band `json:"bands"`
}

// Band is one tier: probabilities below Below (the last band has none).
type Band struct {
	Tier  string   `json:"tier"`
	Label string   `json:"label"`
	Below *float64 `json:"below,omitempty"`
}

// ReadSpec reads and validates a spec.yaml file.
func ReadSpec(path string) (*Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	s, err := ParseSpec(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ParseSpec parses and validates a spec; unknown keys are errors.
func ParseSpec(b []byte) (*Spec, error) {
	var s Spec
	if err := yaml.UnmarshalStrict(b, &s); err != nil {
		return nil, fmt.Errorf("parse spec: %v: %w", err, ErrInvalid)
	}
	s.defaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Spec) defaults() {
	for i := range s.Features {
		f := &s.Features[i]
		if f.Missing == "" {
			f.Missing = MissingReject
		}
		if f.Type == Categorical && f.Unseen == "" {
			f.Unseen = UnseenReject
		}
	}
	t := &s.Training
	if t.Folds == 0 {
		t.Folds = 5
	}
	if len(t.C) == 0 {
		t.C = []float64{0.01, 0.03, 0.1, 0.3, 1}
	}
	if t.SelectBy == "" {
		t.SelectBy = "auc"
	}
	if t.Calibration == "" {
		t.Calibration = Platt
	}
	if t.Bootstrap == 0 {
		t.Bootstrap = 1000
	}
	if b := t.Boost; b != nil {
		if b.Step == 0 {
			b.Step = 10
		}
		if b.Lambda == 0 {
			b.Lambda = 1
		}
		if b.Subsample == 0 {
			b.Subsample = 1
		}
	}
}

// Validate checks the spec; every problem is listed in the error.
func (s *Spec) Validate() error {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	if s.Name == "" || strings.ContainsAny(s.Name, "/\\ ") {
		bad("name must be a non-empty word")
	}
	if s.Version == "" {
		bad("version is required")
	}
	if s.Data.Label == "" || s.Data.Positive == "" || s.Data.Negative == "" {
		bad("data.label, data.positive and data.negative are required")
	}
	notInput := map[string]string{s.Data.Label: "the label", s.Data.ID: "the id"}
	for _, p := range s.Protected {
		notInput[p] = "protected"
	}
	seen := map[string]bool{}
	for _, f := range s.Features {
		if why, ok := notInput[f.Name]; ok && f.Name != "" {
			bad("feature %s is %s and can never be an input", f.Name, why)
		}
		if why := f.screeningInput(); why != "" {
			bad("feature %s is a mental-health screening result (%s): screening results inform needs, responsivity and crisis response and are never by themselves a reason for stricter supervision, so they are never inputs of a supervision-level model", f.Name, why)
		}
		if seen[f.Name] {
			bad("feature %s declared twice", f.Name)
		}
		seen[f.Name] = true
		errs = append(errs, f.validate()...)
	}
	if len(s.Features) == 0 {
		bad("no features")
	}
	byName := map[string]FeatureSpec{}
	for _, f := range s.Features {
		byName[f.Name] = f
	}
	for _, it := range s.Interactions {
		if len(it.Features) != 2 {
			bad("interaction %v must name two features", it.Features)
			continue
		}
		for _, n := range it.Features {
			f, ok := byName[n]
			if !ok {
				bad("interaction %v: unknown feature %s", it.Features, n)
			} else if f.Type == Numeric && f.Bins == nil {
				bad("interaction %v: numeric feature %s needs bins", it.Features, n)
			}
		}
	}
	if len(s.Groups) == 0 {
		bad("groups: at least one group column is required for error-rate reports")
	}
	for _, pv := range s.Previous {
		if pv.Version == "" || len(pv.AUC) != 3 || len(pv.Brier) != 3 {
			bad("previous: each entry needs version, auc and brier as [value, lo, hi]")
		}
	}
	t := s.Training
	if t.Folds < 2 {
		bad("training.folds must be at least 2")
	}
	if t.SelectBy != "auc" && t.SelectBy != "log_loss" {
		bad("training.select_by must be auc or log_loss")
	}
	if t.Calibration != Platt && t.Calibration != Isotonic {
		bad("training.calibration must be platt or isotonic")
	}
	for _, c := range t.C {
		if !(c > 0) {
			bad("training.c values must be positive")
		}
	}
	if b := t.Boost; b != nil {
		if b.Trees < 1 || b.Step < 1 || b.Step > b.Trees {
			bad("training.boost.trees must be positive and at least training.boost.step")
		}
		if b.Depth < 1 || b.Depth > 8 {
			bad("training.boost.depth must be between 1 and 8")
		}
		if !(b.Rate > 0 && b.Rate <= 1) || !(b.Lambda > 0) || !(b.Subsample > 0 && b.Subsample <= 1) {
			bad("training.boost needs rate in (0, 1], lambda > 0 and subsample in (0, 1]")
		}
	}
	errs = append(errs, s.Tiers.validate()...)
	if len(errs) > 0 {
		return fmt.Errorf("spec %s: %s: %w", s.Name, strings.Join(errs, "; "), ErrInvalid)
	}
	return nil
}

func (f FeatureSpec) validate() []string {
	var errs []string
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Sprintf("feature %s: ", f.Name)+fmt.Sprintf(format, a...))
	}
	if f.Name == "" {
		bad("name is required")
	}
	if f.Missing != MissingReject && f.Missing != MissingIndicator {
		bad("missing must be reject or indicator")
	}
	switch f.Type {
	case Categorical:
		if len(f.Levels) == 0 {
			bad("levels are required")
		}
		if f.Unseen != UnseenReject && f.Unseen != UnseenUnknown {
			bad("unseen must be reject or unknown")
		}
		seen := map[string]bool{}
		for _, l := range f.Levels {
			if l == "" || seen[l] {
				bad("levels must be distinct and non-empty")
				break
			}
			seen[l] = true
		}
		if f.Range != nil || f.Cap != nil || f.Bins != nil || f.Linear {
			bad("range, cap, bins and linear apply to numeric features only")
		}
	case Numeric:
		if f.Levels != nil || f.Unseen != "" || f.Ordinal || f.MinCount != 0 {
			bad("levels, unseen, ordinal and min_count apply to categorical features only")
		}
		if f.Range != nil && (len(f.Range) != 2 || !(f.Range[0] <= f.Range[1])) {
			bad("range must be [min, max]")
		}
		if f.Cap != nil && (len(f.Cap) != 2 || !(f.Cap[0] < f.Cap[1])) {
			bad("cap must be [lo, hi] with lo < hi")
		}
		if f.Bins == nil && !f.Linear {
			bad("a numeric feature needs bins, linear or both")
		}
		if b := f.Bins; b != nil {
			if (len(b.Edges) > 0) == (b.Quantiles > 0) {
				bad("bins need either edges or quantiles")
			}
			if !slices.IsSorted(b.Edges) || len(slices.Compact(slices.Clone(b.Edges))) != len(b.Edges) {
				bad("bin edges must be strictly increasing")
			}
			if b.Quantiles == 1 || b.Quantiles > 50 {
				bad("bins.quantiles must be between 2 and 50")
			}
		}
	default:
		bad("type must be categorical or numeric")
	}
	return errs
}

func (p TierPolicy) validate() []string {
	var errs []string
	if p.Version == "" {
		errs = append(errs, "tiers.version is required")
	}
	if strings.TrimSpace(p.Rationale) == "" {
		errs = append(errs, "tiers.rationale is required: write down why the thresholds are where they are")
	}
	if len(p.Bands) < 2 {
		return append(errs, "tiers.bands needs at least two bands")
	}
	prev := 0.0
	for i, b := range p.Bands {
		last := i == len(p.Bands)-1
		switch {
		case b.Tier == "":
			errs = append(errs, fmt.Sprintf("tiers.bands[%d].tier is required", i))
		case last && b.Below != nil:
			errs = append(errs, "the last tier band has no upper bound")
		case !last && b.Below == nil:
			errs = append(errs, fmt.Sprintf("tiers.bands[%d] (%s) needs below", i, b.Tier))
		case !last && !(*b.Below > prev && *b.Below < 1):
			errs = append(errs, fmt.Sprintf("tiers.bands[%d] (%s): below must increase within (0, 1)", i, b.Tier))
		}
		if b.Below != nil {
			prev = *b.Below
		}
	}
	return errs
}

// Boundaries returns the probability thresholds between tiers, ascending.
func (p TierPolicy) Boundaries() []float64 {
	var out []float64
	for _, b := range p.Bands {
		if b.Below != nil {
			out = append(out, *b.Below)
		}
	}
	return out
}

// Tier returns the band of a calibrated probability.
func (p TierPolicy) Tier(prob float64) Band {
	for _, b := range p.Bands {
		if b.Below != nil && prob < *b.Below {
			return b
		}
	}
	return p.Bands[len(p.Bands)-1]
}

// Columns returns every data column the spec reads: id, label, features,
// protected, groups and references, without duplicates.
func (s *Spec) Columns() []string {
	var out []string
	add := func(c string) {
		if c != "" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	add(s.Data.ID)
	add(s.Data.Label)
	for _, f := range s.Features {
		add(f.Name)
	}
	for _, c := range s.Protected {
		add(c)
	}
	for _, c := range s.Groups {
		add(c)
	}
	for _, r := range s.References {
		add(r.Column)
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
