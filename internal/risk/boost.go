package risk

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"

	"github.com/sjwhitworth/golearn/base"
	"github.com/sjwhitworth/golearn/trees"

	"github.com/sunpath/sunpath/internal/riskmodel"
)

// boostParams are the settings of gradient boosting on top of the logistic
// regression.
type boostParams struct {
	Trees  int
	Depth  int
	Rate   float64
	Lambda float64 // L2 penalty on leaf values (Newton step denominator)
	// Subsample is the share of rows each tree is grown on (0 or 1: all).
	Subsample float64
	Seed      uint64
}

// fitBoost fits gradient-boosted regression trees for the logistic loss on
// the feature buckets b (one column per feature), starting from the log-odds
// init. golearn's CART regressor (MSE, bounded depth, deterministic) chooses
// each tree's splits on the current residuals y − p; the leaf values are
// Newton steps Σ(y−p) / (Σp(1−p) + λ) times the learning rate, computed
// here because golearn's leaves hold the residual means. Each tree is
// returned flat with, at every node, the training mean of the tree's output
// below it, so that its contribution can be attributed exactly along the
// path a row takes.
func fitBoost(b [][]int, y, init []float64, p boostParams, each func(t *riskmodel.Tree)) ([]riskmodel.Tree, error) {
	n := len(b)
	if n == 0 {
		return nil, errors.New("fit boost: no rows")
	}
	width := len(b[0])
	rng := rand.New(rand.NewPCG(p.Seed, 0xb0057))
	m := n
	if p.Subsample > 0 && p.Subsample < 1 {
		m = int(math.Round(p.Subsample * float64(n)))
	}
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	f := append([]float64(nil), init...)
	resid := make([]float64, n)
	hess := make([]float64, n)
	leaf := make([]int, n)
	var out []riskmodel.Tree
	for range p.Trees {
		for r := range n {
			q := riskmodel.Sigmoid(f[r])
			resid[r] = y[r] - q
			hess[r] = q * (1 - q)
		}
		rows := perm
		if m < n {
			rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
			rows = slices.Sorted(slices.Values(perm[:m]))
		}
		inst, err := instances(b, resid, rows, width)
		if err != nil {
			return nil, err
		}
		reg := trees.NewDecisionTreeRegressor(trees.MSE, int64(p.Depth))
		if err := reg.Fit(inst); err != nil {
			return nil, fmt.Errorf("fit boost: %w", err)
		}
		t := flatten(reg)
		if len(t.Nodes) == 1 {
			break // no split improves the residuals
		}
		// Newton leaf values from the sampled rows that reach each leaf.
		sumR := make([]float64, len(t.Nodes))
		sumH := make([]float64, len(t.Nodes))
		for _, r := range rows {
			l := t.Leaf(b[r])
			sumR[l] += resid[r]
			sumH[l] += hess[r]
		}
		for i := range t.Nodes {
			if t.Nodes[i].Feature < 0 {
				t.Nodes[i].Value = p.Rate * sumR[i] / (sumH[i] + p.Lambda)
			}
		}
		for r := range n {
			leaf[r] = t.Leaf(b[r])
			f[r] += t.Nodes[leaf[r]].Value
		}
		t.SetMeans(b)
		out = append(out, t)
		if each != nil {
			each(&out[len(out)-1])
		}
	}
	return out, nil
}

// instances builds golearn's table of the chosen rows: one float attribute
// per feature bucket and the residual as the (float) class attribute.
func instances(b [][]int, resid []float64, rows []int, width int) (*base.DenseInstances, error) {
	inst := base.NewDenseInstances()
	specs := make([]base.AttributeSpec, width)
	for j := range width {
		specs[j] = inst.AddAttribute(base.NewFloatAttribute(fmt.Sprintf("f%d", j)))
	}
	cls := base.NewFloatAttribute("residual")
	cspec := inst.AddAttribute(cls)
	if err := inst.AddClassAttribute(cls); err != nil {
		return nil, err
	}
	if err := inst.Extend(len(rows)); err != nil {
		return nil, err
	}
	for i, r := range rows {
		for j, v := range b[r] {
			inst.Set(specs[j], i, base.PackFloatToBytes(float64(v)))
		}
		inst.Set(cspec, i, base.PackFloatToBytes(resid[r]))
	}
	return inst, nil
}

// flatten converts golearn's pointer tree into a riskmodel.Tree. golearn
// sends a row left when x[feature] < threshold; a side without a child node
// is a leaf. golearn's node type is unexported, so its exported fields are
// read through reflection.
func flatten(reg *trees.CARTDecisionTreeRegressor) riskmodel.Tree {
	t := riskmodel.Tree{Nodes: []riskmodel.TreeNode{{Feature: -1}}}
	if reg.RootNode == nil {
		return t
	}
	root := reflect.ValueOf(reg.RootNode).Elem()
	if root.FieldByName("Left").IsNil() && root.FieldByName("Right").IsNil() &&
		root.FieldByName("LeftPred").Float() == root.FieldByName("RightPred").Float() {
		return t // golearn found no split
	}
	var add func(i int, nd reflect.Value)
	add = func(i int, nd reflect.Value) {
		t.Nodes[i].Feature = int(nd.FieldByName("Feature").Int())
		t.Nodes[i].Below = nd.FieldByName("Threshold").Float()
		for _, side := range []string{"Left", "Right"} {
			c := len(t.Nodes)
			t.Nodes = append(t.Nodes, riskmodel.TreeNode{Feature: -1})
			if side == "Left" {
				t.Nodes[i].Left = c
			} else {
				t.Nodes[i].Right = c
			}
			if child := nd.FieldByName(side); !child.IsNil() {
				add(c, child.Elem())
			}
		}
	}
	add(0, root)
	return t
}

func boostParamsOf(b *riskmodel.BoostSpec, trees int, seed uint64) boostParams {
	return boostParams{Trees: trees, Depth: b.Depth, Rate: b.Rate, Lambda: b.Lambda, Subsample: b.Subsample, Seed: seed}
}

// crossValidateBoost boosts, in each fold, from the log-odds of the
// logistic regression fitted without that fold (fw[k]) and scores the
// fold's rows after every Step trees. It returns the out-of-fold scores of
// the number of trees that the training metric prefers, that number (0 when
// no number of trees beats the linear model's lrOOF) and the grid.
func crossValidateBoost(ctx context.Context, workers int, bs *riskmodel.BoostSpec, ts riskmodel.TrainingSpec,
	buckets [][]int, x [][]float64, y []float64, folds []int, fw [][]float64, lrOOF []float64,
) ([]float64, int, []riskmodel.GridPoint, error) {
	n := len(y)
	steps := bs.Trees / bs.Step
	acc := slices.Clone(lrOOF)
	chk := make([][]float64, steps) // chk[i][row]: out-of-fold score after (i+1)·Step trees
	for i := range chk {
		chk[i] = slices.Clone(lrOOF)
	}
	err := parallel(ctx, workers, ts.Folds, func(k int) error {
		var trB [][]int
		var trY, init []float64
		var te []int
		for r := range n {
			if folds[r] == k {
				te = append(te, r)
				continue
			}
			trB = append(trB, buckets[r])
			trY = append(trY, y[r])
			init = append(init, dot(fw[k], x[r]))
		}
		done := 0
		// Rows of different folds are disjoint, so the folds share acc and chk.
		_, err := fitBoost(trB, trY, init, boostParamsOf(bs, steps*bs.Step, ts.Seed+uint64(k)+1), func(t *riskmodel.Tree) {
			done++
			for _, r := range te {
				acc[r] += t.Nodes[t.Leaf(buckets[r])].Value
			}
			if done%bs.Step == 0 {
				for _, r := range te {
					chk[done/bs.Step-1][r] = acc[r]
				}
			}
		})
		// Stopping early (no split helps) leaves the later checkpoints at
		// the last score, as if the remaining trees were empty.
		for i := done / bs.Step; i < steps; i++ {
			for _, r := range te {
				chk[i][r] = acc[r]
			}
		}
		return err
	})
	if err != nil {
		return nil, 0, nil, err
	}
	point := func(s []float64) riskmodel.GridPoint {
		p := make([]float64, n)
		for r := range n {
			p[r] = riskmodel.Sigmoid(s[r])
		}
		return riskmodel.GridPoint{AUC: riskmodel.AUC(s, y), LogLoss: riskmodel.LogLoss(p, y)}
	}
	bestP, best := point(lrOOF), -1
	points := make([]riskmodel.GridPoint, steps)
	for i := range steps {
		points[i] = point(chk[i])
		points[i].Trees = (i + 1) * bs.Step
		if better(ts.SelectBy, points[i], bestP) {
			bestP, best = points[i], i
		}
	}
	if best < 0 {
		return lrOOF, 0, points, nil
	}
	points[best].Chosen = true
	return chk[best], points[best].Trees, points, nil
}
