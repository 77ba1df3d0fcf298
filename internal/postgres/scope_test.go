package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/pgtest"
)

// subject_visible must stay a function PostgreSQL inlines: called as a
// function it is planned per query and evaluated per row, and it hides
// the caseload and unit conditions from the planner's indexes.
func TestSubjectVisibleIsInlined(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.NewURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `EXPLAIN (VERBOSE) SELECT s.id FROM subjects s
		WHERE subject_visible(s.unit, s.counselor, s.agency, $1, $2, $3)`, "counselor", "carol", "")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	plan := strings.Join(lines, "\n")
	if strings.Contains(plan, "subject_visible") || !strings.Contains(plan, "counselor") {
		t.Fatalf("subject_visible was not inlined:\n%s", plan)
	}
}
