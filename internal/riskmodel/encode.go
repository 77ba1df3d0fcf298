package riskmodel

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Encoder turns one person's raw features into model columns. It is fitted
// on training data (bin edges, pooled levels, centring) and stored in the
// model file, so serving encodes exactly as training did.
//
// Every feature and interaction is a group of columns; for any input exactly
// the columns of one bucket of each group are set, which makes explanations
// exact per group.
type Encoder struct {
	Features     []FeatureEncoding     `json:"features"`
	Interactions []InteractionEncoding `json:"interactions,omitempty"`
	// Columns names every model column in order.
	Columns []Column `json:"columns"`

	byName map[string]int
}

// Column is one model column.
type Column struct {
	// Group is the feature or interaction the column belongs to.
	Group string `json:"group"`
	// Label is the bucket (level, bin, "missing", "linear") it encodes.
	Label string `json:"label"`
	// Count is how many training rows had the column set.
	Count int `json:"count"`
}

// FeatureEncoding is the fitted encoding of one feature.
type FeatureEncoding struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Missing string `json:"missing"`

	// Categorical: vocabulary, the column of each level (pooled rare
	// levels share the unknown column) and the unseen policy.
	Levels        []string `json:"levels,omitempty"`
	LevelColumn   []int    `json:"level_column,omitempty"`
	UnknownColumn int      `json:"unknown_column,omitempty"`
	Unseen        string   `json:"unseen,omitempty"`

	// Numeric: valid range, caps, upper bin edges with one column per bin
	// (len(Edges)+1), and the optional standardised linear column (for an
	// ordinal categorical feature: of the level index; unknown and missing
	// values sit at the centre).
	Range        []float64 `json:"range,omitempty"`
	Cap          []float64 `json:"cap,omitempty"`
	Edges        []float64 `json:"edges,omitempty"`
	BinColumn    []int     `json:"bin_column,omitempty"`
	LinearColumn int       `json:"linear_column"`
	Center       float64   `json:"center,omitempty"`
	Scale        float64   `json:"scale,omitempty"`

	// MissingColumn is -1 when missing values are rejected.
	MissingColumn int `json:"missing_column"`

	index      map[string]int
	numIndex   map[float64]int
	lowerIndex map[string]int
	labels     []string // BucketLabel of every bucket, precomputed
}

// InteractionEncoding is the fitted cross of two features' buckets.
type InteractionEncoding struct {
	Name     string `json:"name"`
	Features [2]int `json:"features"`
	Cells    []Cell `json:"cells"`
	// RestColumn takes every combination without its own cell.
	RestColumn int `json:"rest_column"`

	cells map[[2]int]int
}

// Cell is one combination of buckets with its own column.
type Cell struct {
	A      int `json:"a"`
	B      int `json:"b"`
	Column int `json:"column"`
}

// Input errors, as written in problem details. They never echo the value.
const (
	detailRequired   = "value is required"
	detailNotLevel   = "value is not one of the levels of this feature"
	detailNotNumber  = "value is not a number"
	detailOutOfRange = "value is outside the valid range of this feature"
	detailUnknown    = "not an input of this model"
)

// bucket positions beyond a categorical feature's levels.
func (f *FeatureEncoding) unknownBucket() int { return len(f.Levels) }
func (f *FeatureEncoding) missingBucket() int {
	if f.Type == Categorical {
		return len(f.Levels) + 1
	}
	return len(f.Edges) + 1
}

// BucketLabel names a bucket for explanations and reports.
func (f *FeatureEncoding) BucketLabel(b int) string {
	if b >= 0 && b < len(f.labels) {
		return f.labels[b]
	}
	return f.bucketLabel(b)
}

func (f *FeatureEncoding) bucketLabel(b int) string {
	switch {
	case b == f.missingBucket():
		return "missing"
	case f.Type == Categorical && b == f.unknownBucket():
		return "unknown"
	case f.Type == Categorical:
		return f.Levels[b]
	}
	return binLabel(f.Edges, b)
}

func binLabel(edges []float64, b int) string {
	g := func(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }
	switch {
	case len(edges) == 0:
		return "all"
	case b == 0:
		return "≤ " + g(edges[0])
	case b == len(edges):
		return "> " + g(edges[b-1])
	}
	return "(" + g(edges[b-1]) + ", " + g(edges[b]) + "]"
}

// init builds the lookup tables after decoding or fitting and checks that
// every column index is in range.
func (e *Encoder) init() error {
	if err := e.buildIndex(); err != nil {
		return err
	}
	return e.check()
}

// buildIndex builds the lookup tables only.
func (e *Encoder) buildIndex() error {
	e.byName = make(map[string]int, len(e.Features))
	for i := range e.Features {
		f := &e.Features[i]
		if _, dup := e.byName[f.Name]; dup {
			return fmt.Errorf("encoder: feature %s twice: %w", f.Name, ErrInvalid)
		}
		e.byName[f.Name] = i
		f.labels = make([]string, f.missingBucket()+1)
		for b := range f.labels {
			f.labels[b] = f.bucketLabel(b)
		}
		if f.Type != Categorical {
			continue
		}
		f.index = make(map[string]int, len(f.Levels))
		f.numIndex = map[float64]int{}
		f.lowerIndex = map[string]int{}
		lowerDup := map[string]bool{}
		for j, l := range f.Levels {
			f.index[l] = j
			if v, err := strconv.ParseFloat(l, 64); err == nil {
				f.numIndex[v] = j
			}
			k := strings.ToLower(l)
			if _, ok := f.lowerIndex[k]; ok {
				lowerDup[k] = true
			}
			f.lowerIndex[k] = j
		}
		for k := range lowerDup {
			delete(f.lowerIndex, k)
		}
	}
	for i := range e.Interactions {
		it := &e.Interactions[i]
		it.cells = make(map[[2]int]int, len(it.Cells))
		for _, c := range it.Cells {
			it.cells[[2]int{c.A, c.B}] = c.Column
		}
	}
	return nil
}

func (e *Encoder) check() error {
	width := len(e.Columns)
	okCol := func(c int, allowNone bool) bool {
		return (allowNone && c == -1) || (c >= 0 && c < width)
	}
	for i := range e.Features {
		f := &e.Features[i]
		if !okCol(f.MissingColumn, true) || !okCol(f.LinearColumn, true) {
			return fmt.Errorf("encoder: feature %s: bad column: %w", f.Name, ErrInvalid)
		}
		switch f.Type {
		case Categorical:
			if len(f.LevelColumn) != len(f.Levels) || !okCol(f.UnknownColumn, false) {
				return fmt.Errorf("encoder: feature %s: bad level columns: %w", f.Name, ErrInvalid)
			}
			for j := range f.Levels {
				if !okCol(f.LevelColumn[j], false) {
					return fmt.Errorf("encoder: feature %s: bad level columns: %w", f.Name, ErrInvalid)
				}
			}
		case Numeric:
			if len(f.BinColumn) != len(f.Edges)+1 && !(len(f.BinColumn) == 0 && f.LinearColumn >= 0) {
				return fmt.Errorf("encoder: feature %s: bad bin columns: %w", f.Name, ErrInvalid)
			}
			for _, c := range f.BinColumn {
				if !okCol(c, false) {
					return fmt.Errorf("encoder: feature %s: bad bin columns: %w", f.Name, ErrInvalid)
				}
			}
			if f.LinearColumn >= 0 && !(f.Scale > 0) {
				return fmt.Errorf("encoder: feature %s: scale must be positive: %w", f.Name, ErrInvalid)
			}
		default:
			return fmt.Errorf("encoder: feature %s: type %q: %w", f.Name, f.Type, ErrInvalid)
		}
	}
	for i := range e.Interactions {
		it := &e.Interactions[i]
		for _, fi := range it.Features {
			if fi < 0 || fi >= len(e.Features) {
				return fmt.Errorf("encoder: interaction %s: bad feature: %w", it.Name, ErrInvalid)
			}
		}
		if !okCol(it.RestColumn, false) {
			return fmt.Errorf("encoder: interaction %s: bad rest column: %w", it.Name, ErrInvalid)
		}
		for _, c := range it.Cells {
			if !okCol(c.Column, false) {
				return fmt.Errorf("encoder: interaction %s: bad cell column: %w", it.Name, ErrInvalid)
			}
		}
	}
	return nil
}

// Width is the number of model columns.
func (e *Encoder) Width() int { return len(e.Columns) }

// Groups is the number of explanation groups: features then interactions.
func (e *Encoder) Groups() int { return len(e.Features) + len(e.Interactions) }

// GroupName names group g.
func (e *Encoder) GroupName(g int) string {
	if g < len(e.Features) {
		return e.Features[g].Name
	}
	return e.Interactions[g-len(e.Features)].Name
}

// Entry is one set column of an encoded row.
type Entry struct {
	Col int32
	Val float64
}

// Encoded is one encoded row: the set columns of each group, in group order,
// and the bucket of each feature. Reuse it across calls to avoid allocations.
type Encoded struct {
	Entries []Entry
	// Start[g] is the index in Entries of the first entry of group g;
	// Start has Groups()+1 elements.
	Start   []int
	Buckets []int
}

// Encode encodes features (raw values keyed by column name: strings,
// numbers, booleans or nil). It returns a *problem.Invalid-compatible list of
// field errors through inv; the row is usable only when inv stays empty.
func (e *Encoder) Encode(features map[string]any, out *Encoded, inv *fieldErrors) {
	known := 0
	e.encode(func(name string) (any, bool) {
		v, ok := features[name]
		if ok {
			known++
		}
		return v, ok
	}, out, inv)
	// Only when some key matched no feature is the map walked to name it.
	if known < len(features) {
		for name := range features {
			if _, ok := e.byName[name]; !ok {
				inv.add(name, detailUnknown)
			}
		}
	}
}

// EncodeStrings encodes a row given as strings (as read from a CSV file).
func (e *Encoder) EncodeStrings(get func(name string) string, out *Encoded, inv *fieldErrors) {
	e.encode(func(name string) (any, bool) { return get(name), true }, out, inv)
}

func (e *Encoder) encode(get func(string) (any, bool), out *Encoded, inv *fieldErrors) {
	out.Entries = out.Entries[:0]
	out.Start = out.Start[:0]
	out.Buckets = out.Buckets[:0]
	for i := range e.Features {
		f := &e.Features[i]
		out.Start = append(out.Start, len(out.Entries))
		v, _ := get(f.Name)
		b, detail := f.bucket(v)
		if detail != "" {
			inv.add(f.Name, detail)
			out.Buckets = append(out.Buckets, -1)
			continue
		}
		out.Buckets = append(out.Buckets, b)
		f.appendEntries(b, v, &out.Entries)
	}
	for i := range e.Interactions {
		it := &e.Interactions[i]
		out.Start = append(out.Start, len(out.Entries))
		a, b := out.Buckets[it.Features[0]], out.Buckets[it.Features[1]]
		if a < 0 || b < 0 {
			continue
		}
		c, ok := it.cells[[2]int{a, b}]
		if !ok {
			c = it.RestColumn
		}
		out.Entries = append(out.Entries, Entry{int32(c), 1})
	}
	out.Start = append(out.Start, len(out.Entries))
}

// bucket validates v and returns its bucket, or a problem detail.
func (f *FeatureEncoding) bucket(v any) (int, string) {
	s, num, kind := classify(v)
	if kind == kindMissing {
		if f.MissingColumn < 0 {
			return 0, detailRequired
		}
		return f.missingBucket(), ""
	}
	if f.Type == Categorical {
		j, ok := -1, false
		switch kind {
		case kindString:
			if j, ok = f.index[s]; !ok {
				if x, err := strconv.ParseFloat(s, 64); err == nil {
					j, ok = f.numIndex[x]
				}
			}
			if !ok {
				j, ok = f.lowerIndex[strings.ToLower(s)]
			}
		case kindNumber:
			j, ok = f.numIndex[num]
		case kindBool:
			j, ok = f.lowerIndex[s]
		}
		if ok {
			return j, ""
		}
		if kind != kindInvalid && f.Unseen == UnseenUnknown {
			return f.unknownBucket(), ""
		}
		return 0, detailNotLevel
	}
	x, ok := f.number(s, num, kind)
	if !ok {
		return 0, detailNotNumber
	}
	if f.Range != nil && (x < f.Range[0] || x > f.Range[1]) {
		return 0, detailOutOfRange
	}
	x = f.capped(x)
	b, _ := slices.BinarySearch(f.Edges, x)
	return b, ""
}

func (f *FeatureEncoding) number(s string, num float64, kind int) (float64, bool) {
	switch kind {
	case kindNumber:
		return num, true
	case kindString:
		x, err := strconv.ParseFloat(s, 64)
		return x, err == nil && finite(x)
	}
	return 0, false
}

func (f *FeatureEncoding) capped(x float64) float64 {
	if f.Cap != nil {
		x = min(max(x, f.Cap[0]), f.Cap[1])
	}
	return x
}

func (f *FeatureEncoding) appendEntries(b int, v any, dst *[]Entry) {
	if b == f.missingBucket() {
		*dst = append(*dst, Entry{int32(f.MissingColumn), 1})
		return
	}
	if f.Type == Categorical {
		c := f.UnknownColumn
		if b < len(f.Levels) {
			c = f.LevelColumn[b]
		}
		*dst = append(*dst, Entry{int32(c), 1})
		if f.LinearColumn >= 0 && b < len(f.Levels) && c != f.UnknownColumn {
			if z := (float64(b) - f.Center) / f.Scale; z != 0 {
				*dst = append(*dst, Entry{int32(f.LinearColumn), z})
			}
		}
		return
	}
	if len(f.BinColumn) > 0 {
		*dst = append(*dst, Entry{int32(f.BinColumn[b]), 1})
	}
	if f.LinearColumn >= 0 {
		s, num, kind := classify(v)
		x, _ := f.number(s, num, kind)
		z := (f.capped(x) - f.Center) / f.Scale
		if z != 0 {
			*dst = append(*dst, Entry{int32(f.LinearColumn), z})
		}
	}
}

const (
	kindMissing = iota
	kindString
	kindNumber
	kindBool
	kindInvalid
)

// classify normalises a raw value. Empty strings and nil are missing.
func classify(v any) (string, float64, int) {
	switch x := v.(type) {
	case nil:
		return "", 0, kindMissing
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return "", 0, kindMissing
		}
		return s, 0, kindString
	case float64:
		if !finite(x) {
			return "", 0, kindInvalid
		}
		return "", x, kindNumber
	case float32:
		return classify(float64(x))
	case int:
		return "", float64(x), kindNumber
	case int64:
		return "", float64(x), kindNumber
	case int32:
		return "", float64(x), kindNumber
	case json.Number:
		f, err := x.Float64()
		if err != nil || !finite(f) {
			return "", 0, kindInvalid
		}
		return "", f, kindNumber
	case bool:
		return strconv.FormatBool(x), 0, kindBool
	}
	return "", 0, kindInvalid
}

// fieldErrors collects field errors without allocating when there are none.
type fieldErrors struct {
	fields  []string
	details []string
}

func (fe *fieldErrors) add(field, detail string) {
	fe.fields = append(fe.fields, field)
	fe.details = append(fe.details, detail)
}

func (fe *fieldErrors) empty() bool { return len(fe.fields) == 0 }

func (fe *fieldErrors) reset() {
	fe.fields = fe.fields[:0]
	fe.details = fe.details[:0]
}

// FitEncoder fits the encoder of spec on training rows: get(row, column)
// returns the raw cell. Rows whose values cannot be encoded under the spec's
// policies are an error naming the first offending row and column.
func FitEncoder(s *Spec, n int, get func(row int, col string) string) (*Encoder, error) {
	e := &Encoder{}
	addCol := func(group, label string) int {
		e.Columns = append(e.Columns, Column{Group: group, Label: label})
		return len(e.Columns) - 1
	}
	for _, fs := range s.Features {
		f := FeatureEncoding{
			Name: fs.Name, Type: fs.Type, Missing: fs.Missing,
			LinearColumn: -1, MissingColumn: -1,
		}
		switch fs.Type {
		case Categorical:
			f.Levels = slices.Clone(fs.Levels)
			f.Unseen = fs.Unseen
			f.UnknownColumn = 0 // set below
		case Numeric:
			f.Range = slices.Clone(fs.Range)
			f.Cap = slices.Clone(fs.Cap)
			if fs.Bins != nil {
				f.Edges = slices.Clone(fs.Bins.Edges)
			}
		}
		e.Features = append(e.Features, f)
	}
	// A first pass with provisional columns checks every value and gathers
	// level counts and numeric values.
	counts := make([][]int, len(e.Features))
	values := make([][]float64, len(e.Features))
	for i := range e.Features {
		f := &e.Features[i]
		if f.Missing == MissingIndicator {
			f.MissingColumn = 0
		}
		if f.Type == Categorical {
			f.LevelColumn = make([]int, len(f.Levels))
			counts[i] = make([]int, len(f.Levels)+2)
		}
	}
	if err := e.buildIndex(); err != nil {
		return nil, err
	}
	for r := range n {
		for i := range e.Features {
			f := &e.Features[i]
			raw := get(r, f.Name)
			b, detail := f.bucket(raw)
			if detail != "" {
				return nil, fmt.Errorf("row %d: %s: %s: %w", r+1, f.Name, detail, ErrInvalid)
			}
			if f.Type == Categorical {
				counts[i][b]++
			} else if b != f.missingBucket() {
				x, _ := strconv.ParseFloat(strings.TrimSpace(raw), 64)
				values[i] = append(values[i], f.capped(x))
			}
		}
	}
	e.Columns = nil
	for i := range e.Features {
		f := &e.Features[i]
		fs := s.Features[i]
		switch f.Type {
		case Categorical:
			var pooled []int
			for j := range f.Levels {
				if counts[i][j] < fs.MinCount {
					pooled = append(pooled, j)
					continue
				}
				f.LevelColumn[j] = addCol(f.Name, f.Levels[j])
			}
			f.UnknownColumn = addCol(f.Name, "unknown")
			for _, j := range pooled {
				f.LevelColumn[j] = f.UnknownColumn
			}
			if fs.Ordinal {
				var idx []float64
				for j := range f.Levels {
					if f.LevelColumn[j] == f.UnknownColumn {
						continue
					}
					for range counts[i][j] {
						idx = append(idx, float64(j))
					}
				}
				f.Center, f.Scale = meanSD(idx)
				f.LinearColumn = addCol(f.Name, "ordinal trend")
			}
		case Numeric:
			vals := values[i]
			slices.Sort(vals)
			if fs.Bins != nil && fs.Bins.Quantiles > 0 {
				f.Edges = quantileEdges(vals, fs.Bins.Quantiles)
			}
			if fs.Bins != nil {
				f.BinColumn = make([]int, len(f.Edges)+1)
				for b := range f.BinColumn {
					f.BinColumn[b] = addCol(f.Name, binLabel(f.Edges, b))
				}
			}
			if fs.Linear {
				f.Center, f.Scale = meanSD(vals)
				f.LinearColumn = addCol(f.Name, "linear")
			}
		}
		if f.Missing == MissingIndicator {
			f.MissingColumn = addCol(f.Name, "missing")
		}
	}
	byName := map[string]int{}
	for i, f := range e.Features {
		byName[f.Name] = i
	}
	for _, is := range s.Interactions {
		a, b := byName[is.Features[0]], byName[is.Features[1]]
		e.Interactions = append(e.Interactions, InteractionEncoding{
			Name:     is.Features[0] + " × " + is.Features[1],
			Features: [2]int{a, b},
		})
	}
	if len(e.Interactions) > 0 {
		if err := e.fitInteractions(s, n, get, addCol); err != nil {
			return nil, err
		}
	}
	if err := e.init(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Encoder) fitInteractions(s *Spec, n int, get func(int, string) string, addCol func(string, string) int) error {
	// Bin edges are final now: rebuild the bucket labels.
	if err := e.buildIndex(); err != nil {
		return err
	}
	cellCounts := make([]map[[2]int]int, len(e.Interactions))
	for i := range cellCounts {
		cellCounts[i] = map[[2]int]int{}
	}
	buckets := make([]int, len(e.Features))
	for r := range n {
		for i := range e.Features {
			buckets[i], _ = e.Features[i].bucket(get(r, e.Features[i].Name))
		}
		for i, it := range e.Interactions {
			cellCounts[i][[2]int{buckets[it.Features[0]], buckets[it.Features[1]]}]++
		}
	}
	for i := range e.Interactions {
		it := &e.Interactions[i]
		fa, fb := &e.Features[it.Features[0]], &e.Features[it.Features[1]]
		keys := make([][2]int, 0, len(cellCounts[i]))
		for k, c := range cellCounts[i] {
			if c >= s.Interactions[i].MinCount {
				keys = append(keys, k)
			}
		}
		slices.SortFunc(keys, func(x, y [2]int) int {
			if x[0] != y[0] {
				return x[0] - y[0]
			}
			return x[1] - y[1]
		})
		for _, k := range keys {
			label := fa.BucketLabel(k[0]) + " & " + fb.BucketLabel(k[1])
			it.Cells = append(it.Cells, Cell{A: k[0], B: k[1], Column: addCol(it.Name, label)})
		}
		it.RestColumn = addCol(it.Name, "other combinations")
	}
	return nil
}

// quantileEdges returns distinct upper bin edges at the q-quantiles of the
// sorted values, without an edge at or above the maximum (which would leave
// the last bin empty).
func quantileEdges(sorted []float64, q int) []float64 {
	if len(sorted) == 0 {
		return nil
	}
	var edges []float64
	top := sorted[len(sorted)-1]
	for k := 1; k < q; k++ {
		v := sorted[(k*len(sorted))/q]
		if v >= top || (len(edges) > 0 && v <= edges[len(edges)-1]) {
			continue
		}
		edges = append(edges, v)
	}
	return edges
}

func meanSD(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 1
	}
	var s float64
	for _, x := range v {
		s += x
	}
	m := s / float64(len(v))
	var ss float64
	for _, x := range v {
		ss += (x - m) * (x - m)
	}
	sd := math.Sqrt(ss / float64(len(v)))
	if !(sd > 0) {
		sd = 1
	}
	return m, sd
}

// EncodeRow encodes a row given as strings (as read from a CSV file) and
// reports each field error to bad; the row is usable when bad was not called.
func EncodeRow(e *Encoder, get func(col string) string, out *Encoded, bad func(field, detail string)) {
	var fe fieldErrors
	e.EncodeStrings(get, out, &fe)
	for i := range fe.fields {
		bad(fe.fields[i], fe.details[i])
	}
}
