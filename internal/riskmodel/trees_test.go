package riskmodel

import (
	"errors"
	"math"
	"testing"
)

// withTrees returns the small model with boosted trees added to its file.
func withTrees(t *testing.T, trees []Tree) *Model {
	t.Helper()
	base, _ := newSmallModel(t)
	f := *base.File()
	f.Trees = trees
	m, err := NewModel(&f, base.Spec(), "test")
	if err != nil {
		t.Fatalf("NewModel: %v", err)
	}
	return m
}

// A tree over the small spec's buckets: age (feature 0: 18-22, 23-27, 28+)
// then pct (feature 3: ≤ 0, (0, 0.5], > 0.5). Split values are the
// training means below them, as SetMeans leaves them.
var ageThenPct = Tree{Nodes: []TreeNode{
	{Feature: 0, Below: 0.5, Left: 1, Right: 2, Value: 0.05},
	{Feature: -1, Value: 0.4},
	{Feature: 3, Below: 1.5, Left: 3, Right: 4, Value: -0.1},
	{Feature: -1, Value: -0.3},
	{Feature: -1, Value: 0.2},
}}

func TestTreeExplanationAddsUp(t *testing.T) {
	linear, _ := newSmallModel(t)
	m := withTrees(t, []Tree{ageThenPct, ageThenPct})
	in := valid() // age 23-27 (bucket 1 → right), pct 0.3 (bucket 1 → left leaf −0.3)
	pl, err := linear.Score(in)
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Score(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := pl.LogOdds + 2*(-0.3); math.Abs(p.LogOdds-want) > 1e-12 {
		t.Errorf("log-odds %v, want linear %v plus two leaves of −0.3", p.LogOdds, pl.LogOdds)
	}
	if want := pl.BaselineLogOdds + 2*0.05; math.Abs(p.BaselineLogOdds-want) > 1e-12 {
		t.Errorf("baseline %v, want linear baseline %v plus two root values 0.05", p.BaselineLogOdds, pl.BaselineLogOdds)
	}
	sum := p.BaselineLogOdds
	for _, c := range p.Explanation {
		sum += c.Contribution
	}
	if math.Abs(sum-p.LogOdds) > 1e-12 {
		t.Errorf("baseline + contributions = %v, want log-odds %v", sum, p.LogOdds)
	}
	// Per tree: age moves the root (0.05) to its right child (−0.1), pct
	// moves that to the leaf (−0.3); the other features get only their
	// linear part.
	want := map[string]float64{"age": 2 * (-0.1 - 0.05), "pct": 2 * (-0.3 - -0.1)}
	lin := map[string]float64{}
	for _, c := range pl.Explanation {
		lin[c.Feature] = c.Contribution
	}
	for _, c := range p.Explanation {
		if d := c.Contribution - lin[c.Feature] - want[c.Feature]; math.Abs(d) > 1e-12 {
			t.Errorf("%s contributes %v, want linear %v plus trees %v", c.Feature, c.Contribution, lin[c.Feature], want[c.Feature])
		}
	}
}

func TestTreeCheck(t *testing.T) {
	base, _ := newSmallModel(t)
	for name, tr := range map[string]Tree{
		"no nodes":          {},
		"child points back": {Nodes: []TreeNode{{Feature: 0, Below: 0.5, Left: 0, Right: 1}, {Feature: -1}}},
		"child past end":    {Nodes: []TreeNode{{Feature: 0, Below: 0.5, Left: 1, Right: 2}, {Feature: -1}}},
		"unknown feature":   {Nodes: []TreeNode{{Feature: 9, Below: 0.5, Left: 1, Right: 2}, {Feature: -1}, {Feature: -1}}},
	} {
		f := *base.File()
		f.Trees = []Tree{ageThenPct, tr}
		if _, err := NewModel(&f, base.Spec(), "test"); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: NewModel error = %v, want ErrInvalid", name, err)
		}
	}
}

func TestTreeSetMeans(t *testing.T) {
	tr := Tree{Nodes: []TreeNode{
		{Feature: 0, Below: 0.5, Left: 1, Right: 2},
		{Feature: -1, Value: 1},
		{Feature: -1, Value: -1},
	}}
	tr.SetMeans([][]int{{0}, {1}, {1}, {2}})
	if got := tr.Nodes[0].Value; math.Abs(got-(-0.5)) > 1e-15 {
		t.Errorf("root value %v, want mean output −0.5 (one row left at 1, three right at −1)", got)
	}
}
