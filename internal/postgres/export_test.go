package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/casework"
)

// SealReadSQL is the sealer's read of its queue, for the plan test.
const SealReadSQL = sealReadSQL

// ExplainDue is EXPLAIN (ANALYZE, BUFFERS) of Tx.Due's query of the whole
// visible schedule, with the plan Due uses (prepared once), for the scale
// benchmark's SUNPATH_SCALE_EXPLAIN.
func ExplainDue(ctx context.Context, url string, p auth.Principal, s casework.Schedule, now time.Time, overdue bool, limit int) (string, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	sql := `SELECT ` + dueCols + ` FROM (` + dueStreamsSQL(p, "$11", "$12") + `) d ORDER BY due, external_id, instrument LIMIT $12`
	args := append(scheduleArgs(p, s, now), overdue, limit)
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		return "", err
	}
	if _, err := conn.Prepare(ctx, "due", sql); err != nil {
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
