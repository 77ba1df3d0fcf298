package riskmodel

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/sunpath/sunpath/internal/problem"
)

// File formats written by the trainer and accepted by Load.
const (
	FileFormat     = "sunpath-risk-model/1"
	ManifestFormat = "sunpath-model-manifest/1"
	// ModelFileName is the model file inside a model directory.
	ModelFileName = "scorer.json"
	// ManifestFileName is the manifest inside a model directory.
	ManifestFileName = "model.json"
	// SpecFileName is the specification inside a model directory.
	SpecFileName = "spec.yaml"
)

// File is the versioned model file: everything needed to score in pure Go.
type File struct {
	Format   string `json:"format"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Label    string `json:"label"`
	Positive string `json:"positive"`

	Encoder *Encoder `json:"encoder"`
	// Weights holds one log-odds weight per encoder column.
	Weights   []float64 `json:"weights"`
	Intercept float64   `json:"intercept"`
	// Means are the training means of the columns: the reference point of
	// the explanations.
	Means []float64 `json:"means"`

	// Trees are boosted regression trees over the feature buckets whose
	// outputs add to the linear log-odds (none for a purely linear model).
	Trees []Tree `json:"trees,omitempty"`

	Calibration Calibration `json:"calibration"`
	Tiers       TierPolicy  `json:"tiers"`
	// Baseline is the training distribution of calibrated probabilities,
	// the reference of the population-stability index.
	Baseline ScoreBins `json:"baseline"`
}

// LogOdds is the uncalibrated score of an encoded row: the linear part
// plus the outputs of the boosted trees.
func (f *File) LogOdds(enc *Encoded) float64 {
	s := f.Intercept
	for _, en := range enc.Entries {
		s += f.Weights[en.Col] * en.Val
	}
	for i := range f.Trees {
		t := &f.Trees[i]
		s += t.Nodes[t.Leaf(enc.Buckets)].Value
	}
	return s
}

// Manifest is model.json: what was trained from what, with the sha256 of
// every artifact in the directory, the thresholds and the cross-validated
// metrics.
type Manifest struct {
	Format       string     `json:"format"`
	Name         string     `json:"name"`
	Version      string     `json:"version"`
	ModelFile    string     `json:"model_file"`
	Artifacts    []Artifact `json:"artifacts"`
	TrainingData DataRef    `json:"training_data"`
	Trainer      Trainer    `json:"trainer"`
	Spec         *Spec      `json:"spec"`
	Thresholds   []float64  `json:"thresholds"`
	Tiers        TierPolicy `json:"tiers"`
	// Hyperparameters chosen by cross-validation.
	Hyperparameters map[string]float64 `json:"hyperparameters"`
	// CrossValidation holds the grid that was searched.
	CrossValidation []GridPoint `json:"cross_validation"`
	// Metrics are computed on out-of-fold predictions.
	Metrics *Report `json:"metrics"`
}

// Artifact is one file of a model directory and its digest.
type Artifact struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Bytes  int    `json:"bytes"`
}

// DataRef identifies the training data.
type DataRef struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Rows   int    `json:"rows"`
}

// Trainer records the software that trained the model.
type Trainer struct {
	Program string `json:"program"`
	Golearn string `json:"golearn"`
	Solver  string `json:"solver"`
}

// GridPoint is one cross-validated hyper-parameter setting.
type GridPoint struct {
	C float64 `json:"c"`
	// Trees is the number of boosted trees on top (0: the linear model).
	Trees   int     `json:"trees,omitempty"`
	AUC     float64 `json:"auc"`
	LogLoss float64 `json:"log_loss"`
	Chosen  bool    `json:"chosen,omitempty"`
}

// Model is a loaded, verified model ready to score. It is safe for
// concurrent use.
type Model struct {
	file     *File
	spec     *Spec
	manifest *Manifest
	ref      ModelRef
	// groupRef[g] is the contribution of group g at the training means.
	groupRef []float64
	baseline float64
	pool     sync.Pool
}

// ModelRef identifies the model that produced a prediction.
type ModelRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// SHA256 is the digest of the model file.
	SHA256 string `json:"sha256"`
}

// Prediction is the answer of Score.
type Prediction struct {
	// Probability is the calibrated probability of the outcome.
	Probability float64 `json:"probability"`
	Tier        string  `json:"tier"`
	TierLabel   string  `json:"tier_label"`
	// LogOdds is the uncalibrated score; it equals BaselineLogOdds
	// plus the sum of the contributions.
	LogOdds         float64 `json:"log_odds"`
	BaselineLogOdds float64 `json:"baseline_log_odds"`
	// Explanation lists each feature's signed contribution to LogOdds,
	// largest magnitude first.
	Explanation []Contribution `json:"explanation"`
	Model       ModelRef       `json:"model"`
}

// Contribution is one feature's (or interaction's) share of a score:
// w·(x − mean) summed over its columns, in log-odds.
type Contribution struct {
	Feature string `json:"feature"`
	// Value is the bucket the input fell in (level, bin or "missing").
	Value        string  `json:"value"`
	Contribution float64 `json:"contribution"`
}

// FieldSpec is a subject profile field that feeds a model.
type FieldSpec struct {
	Name        string    `json:"name"`
	Type        string    `json:"type"`
	Description string    `json:"description,omitempty"`
	Stage       string    `json:"stage,omitempty"`
	Levels      []string  `json:"levels,omitempty"`
	Range       []float64 `json:"range,omitempty"`
	// Required is false when a missing value is encoded (as "missing").
	Required bool `json:"required"`
}

// NewModel builds a model from a decoded file, checking its consistency.
// The digest is that of the file's bytes.
func NewModel(f *File, s *Spec, sha string) (*Model, error) {
	if f.Format != FileFormat {
		return nil, fmt.Errorf("model file format %q, want %q: %w", f.Format, FileFormat, ErrInvalid)
	}
	if f.Encoder == nil {
		return nil, fmt.Errorf("model file without encoder: %w", ErrInvalid)
	}
	if err := f.Encoder.init(); err != nil {
		return nil, err
	}
	w := f.Encoder.Width()
	if len(f.Weights) != w || len(f.Means) != w {
		return nil, fmt.Errorf("model file: %d weights and %d means for %d columns: %w",
			len(f.Weights), len(f.Means), w, ErrInvalid)
	}
	for i := range f.Trees {
		if err := f.Trees[i].check(len(f.Encoder.Features)); err != nil {
			return nil, fmt.Errorf("model file: trees[%d]: %w", i, err)
		}
	}
	if err := f.Calibration.check(); err != nil {
		return nil, err
	}
	if errs := f.Tiers.validate(); len(errs) > 0 {
		return nil, fmt.Errorf("model file tiers: %v: %w", errs, ErrInvalid)
	}
	m := &Model{file: f, spec: s, ref: ModelRef{Name: f.Name, Version: f.Version, SHA256: sha}}
	m.groupRef = make([]float64, f.Encoder.Groups())
	m.baseline = f.Intercept
	for c, col := range f.Encoder.Columns {
		g := m.groupOf(col.Group)
		r := f.Weights[c] * f.Means[c]
		m.groupRef[g] += r
		m.baseline += r
	}
	// A tree's reference is its root value, the training mean of its output.
	for _, t := range f.Trees {
		m.baseline += t.Nodes[0].Value
	}
	m.pool.New = func() any { return &scratch{} }
	return m, nil
}

func (m *Model) groupOf(name string) int {
	e := m.file.Encoder
	if i, ok := e.byName[name]; ok {
		return i
	}
	for i, it := range e.Interactions {
		if it.Name == name {
			return len(e.Features) + i
		}
	}
	return 0
}

type scratch struct {
	enc Encoded
	inv fieldErrors
}

// Ref identifies the model.
func (m *Model) Ref() ModelRef { return m.ref }

// File returns the model file; callers must not modify it.
func (m *Model) File() *File { return m.file }

// Spec returns the model's specification; callers must not modify it.
func (m *Model) Spec() *Spec { return m.spec }

// Manifest returns model.json; callers must not modify it.
func (m *Model) Manifest() *Manifest { return m.manifest }

// InputFields lists the profile fields the model reads, in spec order.
func (m *Model) InputFields() []FieldSpec {
	out := make([]FieldSpec, 0, len(m.file.Encoder.Features))
	for _, f := range m.file.Encoder.Features {
		fs := FieldSpec{
			Name: f.Name, Type: f.Type, Levels: slices.Clone(f.Levels),
			Range: slices.Clone(f.Range), Required: f.MissingColumn < 0,
		}
		if m.spec != nil {
			for _, sf := range m.spec.Features {
				if sf.Name == f.Name {
					fs.Description, fs.Stage = sf.Description, sf.Stage
				}
			}
		}
		out = append(out, fs)
	}
	return out
}

// Score returns the calibrated probability, tier and explanation of one
// person. Features are keyed by source column name; values are strings,
// numbers, booleans or null. A feature the model does not read, a value it
// cannot encode or a missing required value is a *problem.Invalid naming
// every offending field (never its value).
func (m *Model) Score(features map[string]any) (Prediction, error) {
	sc := m.pool.Get().(*scratch)
	defer m.pool.Put(sc)
	sc.inv.reset()
	m.file.Encoder.Encode(features, &sc.enc, &sc.inv)
	if !sc.inv.empty() {
		return Prediction{}, sc.inv.problem()
	}
	return m.predict(&sc.enc, true), nil
}

// scoreStrings scores a CSV row; it reports field errors through inv.
func (m *Model) scoreStrings(get func(string) string, sc *scratch, explain bool) (Prediction, bool) {
	sc.inv.reset()
	m.file.Encoder.EncodeStrings(get, &sc.enc, &sc.inv)
	if !sc.inv.empty() {
		return Prediction{}, false
	}
	return m.predict(&sc.enc, explain), true
}

func (m *Model) predict(enc *Encoded, explain bool) Prediction {
	f := m.file
	s := f.LogOdds(enc)
	p := f.Calibration.Apply(s)
	band := f.Tiers.Tier(p)
	pr := Prediction{
		Probability: p, Tier: band.Tier, TierLabel: band.Label,
		LogOdds: s, BaselineLogOdds: m.baseline, Model: m.ref,
	}
	if !explain {
		return pr
	}
	e := f.Encoder
	ng := e.Groups()
	var buf [128]float64
	contrib := buf[:0]
	if ng > len(buf) {
		contrib = make([]float64, 0, ng)
	}
	var ibuf [128]int32
	order := ibuf[:0]
	if ng > len(ibuf) {
		order = make([]int32, 0, ng)
	}
	for g := range ng {
		var c float64
		for _, en := range enc.Entries[enc.Start[g]:enc.Start[g+1]] {
			c += f.Weights[en.Col] * en.Val
		}
		contrib = append(contrib, c-m.groupRef[g])
		order = append(order, int32(g))
	}
	// Each tree's output minus its root value, split along the path among
	// the features its splits read (features come first among the groups).
	for i := range f.Trees {
		f.Trees[i].attribute(enc.Buckets, contrib[:len(e.Features)])
	}
	// Sorting indices, not structs with strings, keeps this cheap.
	slices.SortStableFunc(order, func(a, b int32) int {
		return cmp.Compare(math.Abs(contrib[b]), math.Abs(contrib[a]))
	})
	pr.Explanation = make([]Contribution, ng)
	for i, g := range order {
		c := Contribution{Feature: e.GroupName(int(g)), Contribution: contrib[g]}
		if int(g) < len(e.Features) {
			c.Value = e.Features[g].BucketLabel(enc.Buckets[g])
		} else if enc.Start[g+1] > enc.Start[g] {
			c.Value = e.Columns[enc.Entries[enc.Start[g]].Col].Label
		}
		pr.Explanation[i] = c
	}
	return pr
}

func (fe *fieldErrors) problem() *problem.Invalid {
	inv := &problem.Invalid{}
	idx := make([]int, len(fe.fields))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return fe.fields[idx[a]] < fe.fields[idx[b]] })
	for _, i := range idx {
		inv.Add("features."+fe.fields[i], fe.details[i])
	}
	return inv
}

// Load reads the model directory dir: it verifies the sha256 of every
// artifact listed in model.json (the error names the file that does not
// match or is missing) and then decodes the model file and the spec.
func Load(dir string) (*Model, error) {
	mb, err := os.ReadFile(filepath.Join(dir, ManifestFileName))
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	var man Manifest
	if err := json.Unmarshal(mb, &man); err != nil {
		return nil, fmt.Errorf("load model %s: %s: %v: %w", dir, ManifestFileName, err, ErrInvalid)
	}
	if man.Format != ManifestFormat {
		return nil, fmt.Errorf("load model %s: %s: format %q, want %q: %w",
			dir, ManifestFileName, man.Format, ManifestFormat, ErrInvalid)
	}
	contents := map[string][]byte{}
	for _, a := range man.Artifacts {
		if !filepath.IsLocal(a.Path) {
			return nil, fmt.Errorf("load model %s: artifact path %q leaves the directory: %w", dir, a.Path, ErrInvalid)
		}
		b, err := os.ReadFile(filepath.Join(dir, a.Path))
		if err != nil {
			return nil, fmt.Errorf("load model %s: %s: %w", dir, a.Path, err)
		}
		if got := SHA256(b); got != a.SHA256 {
			return nil, fmt.Errorf("load model %s: %s: sha256 %s does not match manifest %s: %w",
				dir, a.Path, got, a.SHA256, ErrTampered)
		}
		contents[a.Path] = b
	}
	fb, ok := contents[man.ModelFile]
	if !ok {
		return nil, fmt.Errorf("load model %s: model file %q not among the artifacts: %w", dir, man.ModelFile, ErrInvalid)
	}
	sb, ok := contents[SpecFileName]
	if !ok {
		return nil, fmt.Errorf("load model %s: %s not among the artifacts: %w", dir, SpecFileName, ErrInvalid)
	}
	spec, err := ParseSpec(sb)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %s: %w", dir, SpecFileName, err)
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(fb))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("load model %s: %s: %v: %w", dir, man.ModelFile, err, ErrInvalid)
	}
	if f.Name != man.Name || f.Version != man.Version || spec.Name != f.Name || spec.Version != f.Version {
		return nil, fmt.Errorf("load model %s: name or version differ between %s, %s and %s: %w",
			dir, ManifestFileName, man.ModelFile, SpecFileName, ErrInvalid)
	}
	m, err := NewModel(&f, spec, SHA256(fb))
	if err != nil {
		return nil, fmt.Errorf("load model %s: %s: %w", dir, man.ModelFile, err)
	}
	m.manifest = &man
	return m, nil
}

// ErrTampered reports an artifact whose digest does not match the manifest.
var ErrTampered = errors.New("artifact does not match manifest")

// LoadDir loads every model under root (each root/*/model.json), keyed by
// model name. Any model that fails to load fails the whole call.
func LoadDir(root string) (map[string]*Model, error) {
	matches, err := fs.Glob(os.DirFS(root), "*/"+ManifestFileName)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Model, len(matches))
	for _, p := range matches {
		m, err := Load(filepath.Join(root, filepath.Dir(p)))
		if err != nil {
			return nil, err
		}
		if _, dup := out[m.ref.Name]; dup {
			return nil, fmt.Errorf("load models %s: model %s twice: %w", root, m.ref.Name, ErrInvalid)
		}
		out[m.ref.Name] = m
	}
	return out, nil
}

// SHA256 is the hex digest of b.
func SHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TierAt returns the calibrated probability and the tier the policy
// suggests for an uncalibrated linear score.
func (m *Model) TierAt(logOdds float64) (float64, string) {
	p := m.file.Calibration.Apply(logOdds)
	return p, m.file.Tiers.Tier(p).Tier
}
