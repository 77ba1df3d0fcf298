package riskmodel

import "fmt"

// Tree is one regression tree of a boosted model, over the feature buckets
// of the encoder (the level, bin, unknown or missing bucket index of each
// feature). Its output adds to the log-odds.
type Tree struct {
	Nodes []TreeNode `json:"nodes"`
}

// TreeNode is a split (Feature ≥ 0) or a leaf (Feature = -1). A row goes
// Left when its bucket of Feature is below Below, else Right. Value is the
// leaf's output, or for a split the training mean of the outputs below it:
// the difference between a child's and its parent's value is what the split
// contributes, attributed to its feature, so that a tree's output is its
// root value plus exact per-feature contributions along the path.
type TreeNode struct {
	Feature int     `json:"feature"`
	Below   float64 `json:"below,omitempty"`
	Left    int     `json:"left,omitempty"`
	Right   int     `json:"right,omitempty"`
	Value   float64 `json:"value"`
}

// Leaf returns the index of the leaf that buckets reach.
func (t *Tree) Leaf(buckets []int) int {
	i := 0
	for t.Nodes[i].Feature >= 0 {
		nd := &t.Nodes[i]
		if float64(buckets[nd.Feature]) < nd.Below {
			i = nd.Left
		} else {
			i = nd.Right
		}
	}
	return i
}

// attribute adds the tree's contribution along the path of buckets to
// contrib (indexed by feature) and returns the tree's output.
func (t *Tree) attribute(buckets []int, contrib []float64) float64 {
	i := 0
	for t.Nodes[i].Feature >= 0 {
		nd := &t.Nodes[i]
		next := nd.Right
		if float64(buckets[nd.Feature]) < nd.Below {
			next = nd.Left
		}
		contrib[nd.Feature] += t.Nodes[next].Value - nd.Value
		i = next
	}
	return t.Nodes[i].Value
}

// SetMeans sets every split's Value to the mean output of the training
// rows (their feature buckets) that pass through it.
func (t *Tree) SetMeans(rows [][]int) {
	sum := make([]float64, len(t.Nodes))
	cnt := make([]int, len(t.Nodes))
	for _, b := range rows {
		var path [64]int
		p := path[:0]
		i := 0
		for t.Nodes[i].Feature >= 0 {
			p = append(p, i)
			nd := &t.Nodes[i]
			if float64(b[nd.Feature]) < nd.Below {
				i = nd.Left
			} else {
				i = nd.Right
			}
		}
		v := t.Nodes[i].Value
		for _, j := range p {
			sum[j] += v
			cnt[j]++
		}
	}
	for j := range t.Nodes {
		if t.Nodes[j].Feature >= 0 {
			t.Nodes[j].Value = 0
			if cnt[j] > 0 {
				t.Nodes[j].Value = sum[j] / float64(cnt[j])
			}
		}
	}
}

// check verifies that the tree is well formed for an encoder with the given
// number of features: child indices point forward, every path ends in a
// leaf.
func (t *Tree) check(features int) error {
	if len(t.Nodes) == 0 {
		return fmt.Errorf("tree without nodes: %w", ErrInvalid)
	}
	for i, nd := range t.Nodes {
		if nd.Feature < 0 {
			continue
		}
		if nd.Feature >= features || nd.Left <= i || nd.Right <= i || nd.Left >= len(t.Nodes) || nd.Right >= len(t.Nodes) {
			return fmt.Errorf("tree node %d: feature %d, children %d and %d: %w", i, nd.Feature, nd.Left, nd.Right, ErrInvalid)
		}
	}
	return nil
}
