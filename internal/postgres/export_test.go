package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
)

// SealReadSQL is the sealer's read of its queue, for the plan test.
const SealReadSQL = sealReadSQL

// ExplainDue is EXPLAIN (ANALYZE, BUFFERS) of Tx.Due's query of the whole
// visible schedule, with the plan Due uses (the generic plan of a prepared
// statement), for the scale benchmark's SUNPATH_SCALE_EXPLAIN.
func ExplainDue(ctx context.Context, url string, p auth.Principal, s casework.Schedule, now time.Time, overdue bool, limit int) (string, error) {
	sql := `SELECT ` + dueCols + ` FROM (` + dueStreamsSQL(p, "$11", "$12") + `) d ORDER BY due, external_id, instrument LIMIT $12`
	args := append(scheduleArgs(p, s, now), overdue, limit)
	// EXECUTE takes no bound parameters: its arguments are written out.
	lits := make([]string, len(args))
	for i, a := range args {
		switch a := a.(type) {
		case string:
			lits[i] = literal(a)
		case []string:
			q := make([]string, len(a))
			for j, v := range a {
				q[j] = literal(v)
			}
			lits[i] = "ARRAY[" + strings.Join(q, ", ") + "]::text[]"
		case time.Time:
			lits[i] = literal(a.Format(time.RFC3339Nano))
		default: // numbers and booleans
			lits[i] = fmt.Sprint(a)
		}
	}
	return explain(ctx, url, `SET plan_cache_mode = force_generic_plan; PREPARE due AS `+sql, `EXECUTE due (`+strings.Join(lits, ", ")+`)`)
}

// literal is s as an SQL string literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ExplainSubjects is ExplainDue for Tx.Subjects.
func ExplainSubjects(ctx context.Context, url string, p auth.Principal, f casework.SubjectFilter) (string, error) {
	args := append(scheduleArgs(p, f.Schedule, f.Now), f.Unit, f.Counselor, f.Tier, f.After, f.OverdueOnly, f.Limit)
	return explain(ctx, url, `SET enable_sort = off`, subjectsSQL(p, f), args...)
}

// explain runs set, then EXPLAIN (ANALYZE, BUFFERS) of sql three times,
// and returns the last plan.
func explain(ctx context.Context, url, set, sql string, args ...any) (string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, set); err != nil {
		return "", err
	}
	var out []string
	for range 3 { // the last of three runs: warm
		out = out[:0]
		rows, err := conn.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS) `+sql, args...)
		if err != nil {
			return "", err
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return "", err
			}
			out = append(out, line)
		}
		if err := rows.Err(); err != nil {
			return "", err
		}
	}
	return strings.Join(out, "\n"), nil
}
