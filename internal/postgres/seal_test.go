package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sunpath/sunpath/internal/audit"
	"github.com/sunpath/sunpath/internal/pgtest"
	"github.com/sunpath/sunpath/internal/postgres"
)

// The sealer reads only its queue's events, however long the trail behind
// them and however stale the queue's statistics (its rows are replaced
// every second, so they always are): the plan PostgreSQL caches for the
// read must not walk audit_events from its first row.
func TestSealReadDoesNotWalkTheTrail(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	const trail, queued = 20000, 10
	for _, sql := range []string{
		`ALTER TABLE audit_pending SET (autovacuum_enabled = false)`,
		`INSERT INTO audit_events (actor, role, action, resource_type, resource_id, subject, outcome, request_id)
		 SELECT 'user:x', 'admin', 'test.write', 'test', g::text, '', 'success', g::text FROM generate_series(1, ` + fmt.Sprint(trail) + `) g`,
		// The queue as its statistics remember it: the trail's first events.
		`INSERT INTO audit_pending (event_id) SELECT id FROM audit_events ORDER BY id LIMIT 500`,
		`ANALYZE audit_events`, `ANALYZE audit_pending`,
		// And as it is: the newest few.
		`DELETE FROM audit_pending`,
		`INSERT INTO audit_pending (event_id) SELECT id FROM audit_events ORDER BY id DESC LIMIT ` + fmt.Sprint(queued),
		`SET plan_cache_mode = force_generic_plan`,
		`PREPARE seal_read (int) AS ` + postgres.SealReadSQL,
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	var plan []byte
	if err := conn.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE seal_read (2000)`).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	var doc []struct{ Plan node }
	if err := json.Unmarshal(plan, &doc); err != nil || len(doc) != 1 {
		t.Fatalf("plan %s: %v", plan, err)
	}
	if read := doc[0].Plan.rowsOf("audit_events"); read > queued {
		t.Fatalf("the read took %.0f rows of audit_events for %d queued events (a trail of %d):\n%s", read, queued, trail, plan)
	}
	if doc[0].Plan.Rows != queued {
		t.Fatalf("read %.0f events, want %d", doc[0].Plan.Rows, queued)
	}
}

// node is a plan node of EXPLAIN (FORMAT JSON).
type node struct {
	Relation string  `json:"Relation Name"`
	Rows     float64 `json:"Actual Rows"`
	Loops    float64 `json:"Actual Loops"`
	Plans    []node
}

// rowsOf sums the rows the plan's scans of table returned.
func (n node) rowsOf(table string) float64 {
	sum := 0.0
	if n.Relation == table {
		sum += n.Rows * n.Loops
	}
	for _, c := range n.Plans {
		sum += c.rowsOf(table)
	}
	return sum
}

// A run without a signer seals the queue but signs nothing; the next run
// with one signs the head it left, once.
func TestSealSignsTheHeadLater(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	ctx := context.Background()
	st := postgres.NewAuditStore(db)
	s := signer(t, 2)
	if err := st.RegisterKey(ctx, s.Public()); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := st.Record(ctx, audit.Event{Actor: "user:a", Role: "admin", Action: "test.write", Outcome: audit.Success, RequestID: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := st.Seal(ctx, nil, 100); err != nil || n != 3 {
		t.Fatalf("seal without signer: %d, %v", n, err)
	}
	verify := func() audit.Report {
		t.Helper()
		tr, err := st.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(tr)
		if err != nil || rep.Events != 3 || rep.Pending != 0 {
			t.Fatalf("verify: %+v, %v", rep, err)
		}
		return rep
	}
	if rep := verify(); rep.Checkpoints != 0 {
		t.Fatalf("%d checkpoints after a run without a signer", rep.Checkpoints)
	}
	for range 2 {
		if n, err := st.Seal(ctx, s, 100); err != nil || n != 0 {
			t.Fatalf("seal with signer: %d, %v", n, err)
		}
	}
	if rep := verify(); rep.Checkpoints != 1 || rep.HeadSeq != 3 {
		t.Fatalf("%d checkpoints, head %d; want one, of the head, 3", rep.Checkpoints, rep.HeadSeq)
	}
}
