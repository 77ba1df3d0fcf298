package postgres

import (
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Multi-row inserts. A group transaction (WriteGrouped) holds the same few
// one-row INSERTs for every unit: its assessment, flags, notifications,
// audit event and idempotency record. Sent one by one, each pays
// PostgreSQL's per-statement work (bind, executor start, locks on the table
// and each of its indexes) for a single row. coalesce sends each such
// INSERT once for the whole group, with one VALUES row per unit in the
// units' order: the same rows, the same row triggers, the same identity
// order, a fraction of the statements.

// multiRow is a one-row INSERT … VALUES (…) statement that may be sent for
// several rows at once.
type multiRow struct {
	head, row, tail string // the SQL before, of and after the VALUES row
	params          int    // parameters of one row: $1…$params
	mu              sync.Mutex
	sql             map[int]string // the statement for n rows
}

// multiRows are the statements coalesce combines, by their SQL.
var multiRows = map[string]*multiRow{}

// coalescable registers a one-row INSERT as one coalesce may combine and
// returns its SQL. The row must hold every parameter, numbered from $1.
func coalescable(sql string) string {
	i := strings.Index(sql, "VALUES (")
	if i < 0 {
		panic("coalescable: no VALUES row in " + sql)
	}
	start := i + len("VALUES ")
	depth, end := 0, -1
	for j := start; j < len(sql) && end < 0; j++ {
		switch sql[j] {
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				end = j + 1
			}
		}
	}
	m := &multiRow{head: sql[:start], row: sql[start:end], tail: sql[end:], sql: map[int]string{}}
	renumber(m.row, func(p int) int { m.params = max(m.params, p); return p })
	outside := false
	renumber(m.head+m.tail, func(p int) int { outside = true; return p })
	if m.params == 0 || outside {
		panic("coalescable: parameters outside the VALUES row in " + sql)
	}
	multiRows[sql] = m
	return sql
}

// renumber returns s with each parameter $n written as $f(n).
func renumber(s string, f func(int) int) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		j := i + 1
		for s[i] == '$' && j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i+1 {
			b.WriteByte(s[i])
			continue
		}
		n, _ := strconv.Atoi(s[i+1 : j])
		b.WriteString("$" + strconv.Itoa(f(n)))
		i = j - 1
	}
	return b.String()
}

// forRows returns the statement inserting n rows.
func (m *multiRow) forRows(n int) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s, ok := m.sql[n]; ok {
		return s
	}
	rows := make([]string, n)
	for r := range rows {
		rows[r] = renumber(m.row, func(p int) int { return p + r*m.params })
	}
	m.sql[n] = m.head + strings.Join(rows, ", ") + m.tail
	return m.sql[n]
}

// maxParams bounds one statement's parameters (PostgreSQL's limit is 65,535).
const maxParams = 60000

// coalesce returns b with each registered INSERT sent once for all its rows,
// statements in the order of their first row, when every statement of b is
// a registered INSERT or a final COMMIT (a group of submissions); otherwise
// b as it is. A unit's statements keep their relative order only across
// tables, which is all they need: a flag follows its assessment because
// every assessment is inserted before any flag.
func coalesce(b *pgx.Batch) *pgx.Batch {
	qs := b.QueuedQueries
	n := len(qs)
	if n > 0 && qs[n-1].SQL == "COMMIT" {
		n--
	}
	type run struct {
		m    *multiRow
		args []any
		rows int
	}
	var order []*run
	runs := map[*multiRow]*run{}
	for _, q := range qs[:n] {
		m := multiRows[q.SQL]
		if m == nil || len(q.Arguments) != m.params {
			return b
		}
		r := runs[m]
		if r == nil {
			r = &run{m: m}
			runs[m] = r
			order = append(order, r)
		}
		r.args = append(r.args, q.Arguments...)
		r.rows++
	}
	if len(order) == n {
		return b // nothing to combine
	}
	out := &pgx.Batch{}
	for _, r := range order {
		per := max(1, maxParams/r.m.params)
		for i := 0; i < r.rows; i += per {
			k := min(per, r.rows-i)
			out.Queue(r.m.forRows(k), r.args[i*r.m.params:(i+k)*r.m.params]...)
		}
	}
	for _, q := range qs[n:] {
		out.Queue(q.SQL, q.Arguments...)
	}
	return out
}
