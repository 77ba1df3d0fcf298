package postgres

import (
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// coalesce sends each registered insert once for all its rows, in the order
// of their first row, with the parameters renumbered row by row; a batch
// with any other statement is sent as it is. Broken once: rows numbered
// from $1 each (the statement for 3 rows repeated $1…$6).
func TestCoalesce(t *testing.T) {
	b := &pgx.Batch{}
	for u := range 3 {
		b.Queue(insertAssessmentSQL, make([]any, 16)...)
		if u != 1 {
			b.Queue(insertFlagSQL, make([]any, 9)...)
		}
		b.Queue(insertAuditSQL, fmt.Sprint("actor", u), "", "", "", "", "", "", "", nil)
		b.Queue(insertIdemSQL, make([]any, 6)...)
	}
	b.Queue("COMMIT")
	out := coalesce(b)
	var got []string
	for _, q := range out.QueuedQueries {
		got = append(got, fmt.Sprintf("%d args", len(q.Arguments)))
	}
	if fmt.Sprint(got) != "[48 args 18 args 27 args 18 args 0 args]" {
		t.Fatalf("coalesced statements: %v; want assessments, flags, audit, idempotency, COMMIT", got)
	}
	if q := out.QueuedQueries[2]; q.Arguments[0] != "actor0" || q.Arguments[9] != "actor1" || q.Arguments[18] != "actor2" {
		t.Errorf("audit rows out of the units' order: %v", q.Arguments)
	}
	want := "INSERT INTO idempotency_keys (client, key, request_hash, status, body, expires_at)\n\tVALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)), " +
		"($7, $8, $9, $10, $11, now() + make_interval(secs => $12)), ($13, $14, $15, $16, $17, now() + make_interval(secs => $18))"
	if got := out.QueuedQueries[3].SQL; got != want {
		t.Errorf("three idempotency rows:\n%s\nwant\n%s", got, want)
	}
	if q := out.QueuedQueries[4]; q.SQL != "COMMIT" {
		t.Errorf("last statement %q, want COMMIT", q.SQL)
	}
	audit := multiRows[insertAuditSQL].forRows(2)
	if wantAudit := "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9::jsonb, '{}'::jsonb)), ($10, $11, $12, $13, $14, $15, $16, $17, coalesce($18::jsonb, '{}'::jsonb)) RETURNING id)"; !strings.Contains(audit, wantAudit) {
		t.Errorf("two audit rows:\n%s", audit)
	}

	other := &pgx.Batch{}
	other.Queue(insertAuditSQL, make([]any, 9)...)
	other.Queue("UPDATE flags SET status = 'acknowledged'")
	other.Queue(insertAuditSQL, make([]any, 9)...)
	if out := coalesce(other); out != other {
		t.Error("a batch with another statement was changed")
	}
}
