package screening

import (
	"fmt"
	"math"
)

type condKind uint8

const (
	condScore condKind = iota + 1
	condCount
	condResult
	condAny
	condAll
)

type refKind uint8

const (
	refTotal refKind = iota + 1
	refItem
	refSubscale
)

type cmpOp uint8

const (
	opGte cmpOp = iota + 1
	opGt
	opLte
	opLt
	opEq
)

// cond is a compiled Condition. Scores are compared in hundredths, so that a
// mean such as 2.00 and a threshold such as 2 compare exactly.
type cond struct {
	kind    condKind
	ref     refKind
	idx     int
	op      cmpOp
	val     int64 // hundredths
	items   []int
	itemGte int
	atLeast int
	result  string
	subs    []*cond
}

// tri is a three-valued truth: a condition over an unanswered item is
// unknown, not false.
type tri uint8

const (
	triFalse tri = iota
	triTrue
	triUnknown
)

// cond compiles w. before >= 0 limits it to the items before that position
// (skip logic, which runs while items are read); before < 0 allows the total,
// subscales and the result too.
func (c *compiler) cond(path string, w Condition, before int) *cond {
	d := c.d
	forms := 0
	if w.Score != "" {
		forms++
	}
	if len(w.Items) > 0 || w.ItemGte != nil || w.AtLeast != nil {
		forms++
	}
	if w.Result != "" {
		forms++
	}
	if len(w.Any) > 0 {
		forms++
	}
	if len(w.All) > 0 {
		forms++
	}
	if forms != 1 {
		c.err.add(path, "must have exactly one of score, items, result, any, all")
		return &cond{kind: condAny}
	}
	cmps := 0
	for _, v := range []*float64{w.Gte, w.Gt, w.Lte, w.Lt, w.Eq} {
		if v != nil {
			cmps++
		}
	}
	if w.Score == "" && cmps > 0 {
		c.err.add(path, "gte, gt, lte, lt and eq go with score only")
	}
	itemRef := func(p, id string) int {
		k, ok := d.index[id]
		switch {
		case !ok:
			c.err.add(p, "no such item")
			return -1
		case before >= 0 && k >= before:
			c.err.add(p, "skip logic may refer to earlier items only")
			return -1
		}
		return k
	}
	switch {
	case w.Score != "":
		out := &cond{kind: condScore}
		switch _, isItem := d.index[w.Score]; {
		case w.Score == "total":
			if before >= 0 {
				c.err.add(path+".score", "skip logic may refer to earlier items only")
			} else if !d.hasTotal {
				c.err.add(path+".score", "the instrument has no total")
			}
			out.ref = refTotal
		case isItem:
			out.ref, out.idx = refItem, itemRef(path+".score", w.Score)
		default:
			out.ref, out.idx = refSubscale, -1
			for i, s := range d.subscales {
				if s.code == w.Score {
					out.idx = i
				}
			}
			switch {
			case before >= 0:
				c.err.add(path+".score", "skip logic may refer to earlier items only")
			case out.idx < 0:
				c.err.add(path+".score", "no such item or subscale")
			}
		}
		if cmps != 1 {
			c.err.add(path, "must have exactly one of gte, gt, lte, lt, eq")
			return out
		}
		var v float64
		switch {
		case w.Gte != nil:
			out.op, v = opGte, *w.Gte
		case w.Gt != nil:
			out.op, v = opGt, *w.Gt
		case w.Lte != nil:
			out.op, v = opLte, *w.Lte
		case w.Lt != nil:
			out.op, v = opLt, *w.Lt
		default:
			out.op, v = opEq, *w.Eq
		}
		h := math.Round(v * 100)
		if math.IsNaN(v) || math.Abs(h-v*100) > 1e-6 || math.Abs(h) > 1e12 {
			c.err.add(path, "threshold must be a number with at most two decimals")
		}
		out.val = int64(h)
		return out
	case w.Result != "":
		found := false
		for _, o := range c.spec.Scoring.Outcomes {
			if o.Code == w.Result {
				found = true
			}
		}
		if before >= 0 {
			c.err.add(path+".result", "skip logic may refer to earlier items only")
		} else if !found {
			c.err.add(path+".result", "no such outcome")
		}
		return &cond{kind: condResult, result: w.Result}
	case len(w.Any) > 0 || len(w.All) > 0:
		out := &cond{kind: condAny}
		subs, name := w.Any, "any"
		if len(w.All) > 0 {
			out.kind, subs, name = condAll, w.All, "all"
		}
		for i, sub := range subs {
			out.subs = append(out.subs, c.cond(fmt.Sprintf("%s.%s[%d]", path, name, i), sub, before))
		}
		return out
	default:
		out := &cond{kind: condCount}
		if len(w.Items) == 0 {
			c.err.add(path+".items", "must list at least one item")
		}
		for i, id := range w.Items {
			if k := itemRef(fmt.Sprintf("%s.items[%d]", path, i), id); k >= 0 {
				out.items = append(out.items, k)
			}
		}
		if w.ItemGte == nil {
			c.err.add(path+".item_gte", "missing")
		} else {
			out.itemGte = *w.ItemGte
		}
		switch {
		case w.AtLeast == nil:
			c.err.add(path+".at_least", "missing")
		case *w.AtLeast < 1 || *w.AtLeast > len(w.Items):
			c.err.add(path+".at_least", "must be between 1 and the number of items")
		default:
			out.atLeast = *w.AtLeast
		}
		return out
	}
}

// env is what conditions read while scoring.
type env struct {
	scores   []int  // item scores (after reversal)
	known    []bool // item has a score: answered, skipped with a score, or scored as missing
	subVals  []int64
	subKnown []bool
	total    int64 // hundredths
	hasTotal bool
	outcome  string
}

func (w *cond) eval(e *env) tri {
	switch w.kind {
	case condScore:
		var v int64
		switch w.ref {
		case refTotal:
			if !e.hasTotal {
				return triUnknown
			}
			v = e.total
		case refItem:
			if !e.known[w.idx] {
				return triUnknown
			}
			v = int64(e.scores[w.idx]) * 100
		case refSubscale:
			if !e.subKnown[w.idx] {
				return triUnknown
			}
			v = e.subVals[w.idx]
		}
		var ok bool
		switch w.op {
		case opGte:
			ok = v >= w.val
		case opGt:
			ok = v > w.val
		case opLte:
			ok = v <= w.val
		case opLt:
			ok = v < w.val
		case opEq:
			ok = v == w.val
		}
		if ok {
			return triTrue
		}
		return triFalse
	case condCount:
		n, unknown := 0, 0
		for _, k := range w.items {
			switch {
			case !e.known[k]:
				unknown++
			case e.scores[k] >= w.itemGte:
				n++
			}
		}
		switch {
		case n >= w.atLeast:
			return triTrue
		case n+unknown >= w.atLeast:
			return triUnknown
		}
		return triFalse
	case condResult:
		if e.outcome == "" {
			return triUnknown
		}
		if e.outcome == w.result {
			return triTrue
		}
		return triFalse
	case condAny:
		out := triFalse
		for _, s := range w.subs {
			switch s.eval(e) {
			case triTrue:
				return triTrue
			case triUnknown:
				out = triUnknown
			}
		}
		return out
	case condAll:
		out := triTrue
		for _, s := range w.subs {
			switch s.eval(e) {
			case triFalse:
				return triFalse
			case triUnknown:
				out = triUnknown
			}
		}
		return out
	}
	return triUnknown
}
