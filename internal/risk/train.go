package risk

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/sunpath/sunpath/internal/riskmodel"
)

// Options says what to train and where to write it.
type Options struct {
	// DataPath is the training CSV; it is recorded in the manifest as given.
	DataPath string
	SpecPath string
	OutDir   string
	// Log receives progress lines (nil: discarded).
	Log io.Writer
	// Workers bounds parallel fits (0: GOMAXPROCS).
	Workers int
}

// liblinearEps is the stopping tolerance of liblinear's Newton solver.
const liblinearEps = 1e-4

// Train fits the model described by the spec on the data, writes the model
// directory (spec.yaml, scorer.json, calibration.svg, MODEL_CARD.md and
// model.json) and returns the manifest. Given the same data and spec it
// writes byte-identical files.
func Train(ctx context.Context, opt Options) (*riskmodel.Manifest, error) {
	if !CgoCheckOff() {
		return nil, ErrCgoCheck
	}
	logw := opt.Log
	if logw == nil {
		logw = io.Discard
	}
	logf := func(format string, a ...any) { fmt.Fprintf(logw, format+"\n", a...) }
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	specBytes, err := os.ReadFile(opt.SpecPath)
	if err != nil {
		return nil, err
	}
	spec, err := riskmodel.ParseSpec(specBytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opt.SpecPath, err)
	}
	tab, err := riskmodel.ReadTable(opt.DataPath)
	if err != nil {
		return nil, err
	}
	need := []string{spec.Data.Label}
	for _, f := range spec.Features {
		need = append(need, f.Name)
	}
	need = append(need, spec.Groups...)
	if err := tab.Require(need...); err != nil {
		return nil, fmt.Errorf("%s: %w", opt.DataPath, err)
	}
	y := tab.Labels(spec.Data)
	for r, v := range y {
		if v < 0 {
			return nil, fmt.Errorf("%s: row %d: %s is neither %q nor %q: %w",
				opt.DataPath, r+1, spec.Data.Label, spec.Data.Positive, spec.Data.Negative, riskmodel.ErrInvalid)
		}
	}
	n := len(tab.Rows)
	start := time.Now()
	enc, err := riskmodel.FitEncoder(spec, n, tab.Get)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opt.DataPath, err)
	}
	x, buckets, err := design(enc, tab)
	if err != nil {
		return nil, err
	}
	width := enc.Width()
	logf("%s: %d rows, %d columns, base rate %.3f", spec.Name, n, width, mean(y))

	folds := stratifiedFolds(y, spec.Training.Folds, spec.Training.Seed)
	grid := spec.Training.C
	oof := make([][]float64, len(grid))  // oof[c][row]: out-of-fold log-odds
	fw := make([][][]float64, len(grid)) // fw[c][k]: weights fitted without fold k
	for i := range oof {
		oof[i] = make([]float64, n)
		fw[i] = make([][]float64, spec.Training.Folds)
	}
	type job struct{ c, k int }
	jobs := make([]job, 0, len(grid)*spec.Training.Folds)
	for c := range grid {
		for k := range spec.Training.Folds {
			jobs = append(jobs, job{c, k})
		}
	}
	err = parallel(ctx, workers, len(jobs), func(j int) error {
		jb := jobs[j]
		var trX [][]float64
		var trY []float64
		for r := range n {
			if folds[r] != jb.k {
				trX = append(trX, x[r])
				trY = append(trY, y[r])
			}
		}
		w, err := fitLogistic(trX, trY, grid[jb.c], liblinearEps)
		if err != nil {
			return err
		}
		fw[jb.c][jb.k] = w
		for r := range n {
			if folds[r] == jb.k {
				oof[jb.c][r] = dot(w, x[r])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	points := make([]riskmodel.GridPoint, len(grid))
	best := 0
	for c := range grid {
		p := make([]float64, n)
		for r := range n {
			p[r] = riskmodel.Sigmoid(oof[c][r])
		}
		points[c] = riskmodel.GridPoint{C: grid[c], AUC: riskmodel.AUC(oof[c], y), LogLoss: riskmodel.LogLoss(p, y)}
		logf("  C=%g: cv auc %.4f, log-loss %.4f", grid[c], points[c].AUC, points[c].LogLoss)
		if better(spec.Training.SelectBy, points[c], points[best]) {
			best = c
		}
	}
	points[best].Chosen = true
	s := oof[best]
	bs := spec.Training.Boost
	nTrees := 0
	if bs != nil {
		var bp []riskmodel.GridPoint
		s, nTrees, bp, err = crossValidateBoost(ctx, workers, bs, spec.Training, buckets, x, y, folds, fw[best], s)
		if err != nil {
			return nil, err
		}
		for i := range bp {
			bp[i].C = grid[best]
			logf("  C=%g + %d trees: cv auc %.4f, log-loss %.4f", grid[best], bp[i].Trees, bp[i].AUC, bp[i].LogLoss)
		}
		if nTrees > 0 {
			points[best].Chosen = false
		}
		points = append(points, bp...)
	}

	// Calibration for the shipped model: fitted on all out-of-fold scores.
	cal := fitCalibration(spec.Training.Calibration, s, y)
	// Reported metrics: each fold calibrated by a map fitted on the other
	// folds' out-of-fold scores, so no row calibrates its own prediction.
	pOOF := make([]float64, n)
	for k := range spec.Training.Folds {
		var cs, cy []float64
		for r := range n {
			if folds[r] != k {
				cs = append(cs, s[r])
				cy = append(cy, y[r])
			}
		}
		ck := fitCalibration(spec.Training.Calibration, cs, cy)
		for r := range n {
			if folds[r] == k {
				pOOF[r] = ck.Apply(s[r])
			}
		}
	}

	wAll, err := fitLogistic(x, y, grid[best], liblinearEps)
	if err != nil {
		return nil, err
	}
	var forest []riskmodel.Tree
	if nTrees > 0 {
		init := make([]float64, n)
		for r := range n {
			init[r] = dot(wAll, x[r])
		}
		forest, err = fitBoost(buckets, y, init, boostParamsOf(bs, nTrees, spec.Training.Seed), nil)
		if err != nil {
			return nil, err
		}
	}
	means := make([]float64, width)
	for _, row := range x {
		for j := range width {
			means[j] += row[j]
		}
	}
	for j := range means {
		means[j] /= float64(n)
		enc.Columns[j].Count = 0
	}
	for _, row := range x {
		for j := range width {
			if row[j] != 0 {
				enc.Columns[j].Count++
			}
		}
	}
	trainP := make([]float64, n)
	for r := range n {
		sc := dot(wAll, x[r])
		for i := range forest {
			sc += forest[i].Nodes[forest[i].Leaf(buckets[r])].Value
		}
		trainP[r] = cal.Apply(sc)
	}
	file := &riskmodel.File{
		Format: riskmodel.FileFormat, Name: spec.Name, Version: spec.Version,
		Label: spec.Data.Label, Positive: spec.Data.Positive,
		Encoder: enc, Weights: wAll[:width], Intercept: wAll[width], Means: means, Trees: forest,
		Calibration: cal, Tiers: spec.Tiers, Baseline: riskmodel.NewScoreBins(trainP, 10),
	}
	report := riskmodel.NewReport(reportInput(spec, tab, y, pOOF))
	logf("  chosen C=%g: cv auc %.4f [%.4f, %.4f], brier %.4f, ece %.4f (%s)", grid[best],
		report.AUC, report.Intervals.AUC.Lo, report.Intervals.AUC.Hi, report.Brier, report.ECE,
		time.Since(start).Round(time.Millisecond))

	man := &riskmodel.Manifest{
		Format: riskmodel.ManifestFormat, Name: spec.Name, Version: spec.Version,
		ModelFile:    riskmodel.ModelFileName,
		TrainingData: riskmodel.DataRef{Path: filepath.ToSlash(opt.DataPath), SHA256: tab.SHA256, Rows: n},
		Trainer: riskmodel.Trainer{
			Program: "sunpath model train", Golearn: GolearnVersion(),
			Solver: solverText(spec.Training, nTrees),
		},
		Spec: spec, Thresholds: spec.Tiers.Boundaries(), Tiers: spec.Tiers,
		Hyperparameters: hyper(grid[best], nTrees),
		CrossValidation: points, Metrics: report,
	}
	if err := riskmodel.WriteDir(opt.OutDir, opt.SpecPath, specBytes, file, man); err != nil {
		return nil, err
	}
	return man, nil
}

func better(by string, a, b riskmodel.GridPoint) bool {
	if by == "log_loss" {
		return a.LogLoss < b.LogLoss
	}
	return a.AUC > b.AUC
}

func fitCalibration(method string, s, y []float64) riskmodel.Calibration {
	if method == riskmodel.Isotonic {
		return riskmodel.FitIsotonic(s, y)
	}
	return riskmodel.FitPlatt(s, y)
}

func solverText(t riskmodel.TrainingSpec, trees int) string {
	s := fmt.Sprintf("liblinear L2R_LR (eps %g) with a constant column, %d-fold CV, %s calibration", liblinearEps, t.Folds, t.Calibration)
	if trees > 0 {
		b := t.Boost
		s += fmt.Sprintf("; plus %d gradient-boosted regression trees on its log-odds (golearn CART regressor, MSE splits, depth %d, "+
			"Newton leaf values with λ %g, learning rate %g, row subsample %g), the number of trees chosen by CV", trees, b.Depth, b.Lambda, b.Rate, b.Subsample)
	}
	return s
}

func hyper(c float64, trees int) map[string]float64 {
	h := map[string]float64{"C": c}
	if trees > 0 {
		h["trees"] = float64(trees)
	}
	return h
}

// design encodes every row densely, with a trailing constant column that
// stands in for the intercept liblinear does not fit, and returns each
// row's feature buckets (the inputs of the trees).
func design(enc *riskmodel.Encoder, tab *riskmodel.Table) ([][]float64, [][]int, error) {
	width := enc.Width()
	x := make([][]float64, len(tab.Rows))
	buckets := make([][]int, len(tab.Rows))
	var e riskmodel.Encoded
	for r := range tab.Rows {
		var errs []string
		riskmodel.EncodeRow(enc, func(c string) string { return tab.Get(r, c) }, &e, func(field, detail string) {
			errs = append(errs, field+": "+detail)
		})
		if len(errs) > 0 {
			return nil, nil, fmt.Errorf("%s: row %d: %v: %w", tab.Path, r+1, errs, riskmodel.ErrInvalid)
		}
		buckets[r] = slices.Clone(e.Buckets[:len(enc.Features)])
		row := make([]float64, width+1)
		for _, en := range e.Entries {
			row[en.Col] = en.Val
		}
		row[width] = 1
		x[r] = row
	}
	return x, buckets, nil
}

func reportInput(spec *riskmodel.Spec, tab *riskmodel.Table, y, p []float64) riskmodel.ReportInput {
	in := riskmodel.ReportInput{
		Source: fmt.Sprintf("%d-fold cross-validation (seed %d): out-of-fold predictions, each fold calibrated on the other folds",
			spec.Training.Folds, spec.Training.Seed),
		P: p, Y: y, Groups: map[string][]string{}, GroupOrder: spec.Groups,
		Tiers: spec.Tiers, Bootstrap: spec.Training.Bootstrap, Seed: spec.Training.Seed,
		RefScores: map[string][]float64{}, RefY: map[string][]float64{}, RefGroups: map[string]map[string][]string{},
	}
	for _, g := range spec.Groups {
		col := make([]string, len(tab.Rows))
		for r := range tab.Rows {
			col[r] = tab.Get(r, g)
		}
		in.Groups[g] = col
	}
	for _, ref := range spec.References {
		if !tab.Has(ref.Column) {
			continue
		}
		in.References = append(in.References, ref)
		in.RefGroups[ref.Column] = map[string][]string{}
		for r, v := range tab.Numbers(ref.Column) {
			if math.IsNaN(v) {
				continue
			}
			in.RefScores[ref.Column] = append(in.RefScores[ref.Column], v)
			in.RefY[ref.Column] = append(in.RefY[ref.Column], y[r])
			for _, g := range spec.Groups {
				in.RefGroups[ref.Column][g] = append(in.RefGroups[ref.Column][g], tab.Get(r, g))
			}
		}
	}
	return in
}

// stratifiedFolds assigns each row to one of k folds, keeping the label
// balance, with a seeded shuffle so that folds are reproducible.
func stratifiedFolds(y []float64, k int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 0xf01d5))
	folds := make([]int, len(y))
	for _, cls := range []float64{0, 1} {
		var idx []int
		for i, v := range y {
			if v == cls {
				idx = append(idx, i)
			}
		}
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		for pos, i := range idx {
			folds[i] = pos % k
		}
	}
	return folds
}

// parallel runs f(0..n-1) on up to workers goroutines and returns the
// first error.
func parallel(ctx context.Context, workers, n int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func dot(w, x []float64) float64 {
	var s float64
	for i, v := range x {
		s += w[i] * v
	}
	return s
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
