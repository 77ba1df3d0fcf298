package riskmodel

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// Table is a CSV file read as strings, with its digest. Cells are never
// type-sniffed: the spec says how each column is read.
type Table struct {
	Path   string
	SHA256 string
	Header []string
	Rows   [][]string
	col    map[string]int
}

// ReadTable reads a CSV file with a header row.
func ReadTable(path string) (*Table, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t, err := ParseTable(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t.Path = path
	return t, nil
}

// ParseTable parses CSV bytes with a header row.
func ParseTable(b []byte) (*Table, error) {
	r := csv.NewReader(bytes.NewReader(b))
	r.ReuseRecord = false
	recs, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read csv: %v: %w", err, ErrInvalid)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("read csv: no header: %w", ErrInvalid)
	}
	t := &Table{SHA256: SHA256(b), Header: recs[0], Rows: recs[1:], col: map[string]int{}}
	for i, h := range t.Header {
		h = strings.TrimPrefix(h, "\ufeff")
		t.Header[i] = h
		if _, dup := t.col[h]; dup {
			return nil, fmt.Errorf("read csv: column %s twice: %w", h, ErrInvalid)
		}
		t.col[h] = i
	}
	return t, nil
}

// Has reports whether the table has column c.
func (t *Table) Has(c string) bool { _, ok := t.col[c]; return ok }

// Require returns an error naming every column the table lacks.
func (t *Table) Require(cols ...string) error {
	var missing []string
	for _, c := range cols {
		if !t.Has(c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("data lacks columns %s: %w", strings.Join(missing, ", "), ErrInvalid)
	}
	return nil
}

// Get returns the cell of row r in column c ("" when the column is absent).
func (t *Table) Get(r int, c string) string {
	i, ok := t.col[c]
	if !ok {
		return ""
	}
	return t.Rows[r][i]
}

// Labels parses the label column: 1 for positive, 0 for negative and -1
// for anything else.
func (t *Table) Labels(d DataSpec) []float64 {
	y := make([]float64, len(t.Rows))
	for r := range t.Rows {
		switch strings.TrimSpace(t.Get(r, d.Label)) {
		case d.Positive:
			y[r] = 1
		case d.Negative:
			y[r] = 0
		default:
			y[r] = -1
		}
	}
	return y
}

// Numbers parses column c as numbers; blank or invalid cells are NaN.
func (t *Table) Numbers(c string) []float64 {
	out := make([]float64, len(t.Rows))
	for r := range t.Rows {
		v, err := strconv.ParseFloat(strings.TrimSpace(t.Get(r, c)), 64)
		if err != nil {
			v = math.NaN()
		}
		out[r] = v
	}
	return out
}
